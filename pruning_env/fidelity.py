"""Fidelity: how much compute one reward evaluation spends, as an explicit, costed choice.

A fidelity is the reward's training schedule (``schedule``: the task's short reward schedule, or its final one cut
to ``steps``), its length ``steps`` (0: no training, the pruned network is read as it is) and the minibatch
``orders`` it averages over. The env's own fidelity comes from its options (``reward_steps``, ``reward_orders``,
``reward="full"``); an episode may ask for another one:

    env.reset(seed=0, options={"fidelity": {"steps": 25}})            # a cheap look
    env.evaluate_plans(episodes, fidelity=Fidelity(steps=400, orders=2))   # an expensive one

Every result reports its cost in sample-steps (``EpisodeResult.cost``): one sample through one training step
(forward and backward) or through one evaluation forward pass counts 1, so

    cost = orders x (steps x batch_size + eval_size)       (steps = 0: eval_size, one forward pass)

and the zero-cost reward (two forward passes of one all-ones input) costs 2. A compute budget
(``PruningEnv(compute_limit=...)``) is a number of sample-steps: the env refuses (``ComputeLimitReached``) an
evaluation that would take it past the limit.

    mlp-digits, default reward (K = 100, batch 128, 144 validation images): 100 x 128 + 144 = 12,944 per plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from pruning_env.training import TrainConfig

Schedule = Literal["reward", "final"]
SCHEDULES: tuple[str, ...] = ("reward", "final")
MAX_ORDERS = 16
"""Most minibatch orders one evaluation may average over."""
ZERO_COST_COST = 2
"""Sample-steps of the zero-cost reward: SynFlow's objective on the dense and the pruned network, one input each."""


class ComputeLimitReached(RuntimeError):
    """An evaluation would take the env's spent compute past its ``compute_limit`` (sample-steps)."""


@dataclass(frozen=True)
class Fidelity:
    """One reward evaluation's schedule, length and minibatch orders."""

    steps: int
    """Training steps, 0 (no training) to the final schedule's steps."""
    orders: int = 1
    """Minibatch orders averaged over, 1 to ``MAX_ORDERS``."""
    schedule: Schedule = "reward"
    """``"reward"``: the task's reward schedule (optimizer, learning rate) run for ``steps``; ``"final"``: the task's
    final schedule (its optimizer and learning-rate decay) cut to ``steps``."""


def parse_fidelity(value: Fidelity | Mapping[str, Any]) -> Fidelity:
    """A ``Fidelity`` from itself or a dict of its fields (``{"steps": 25}``).

    Raises:
        ValueError: for another type or an unknown field, naming the fields.
    """
    if isinstance(value, Fidelity):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"a fidelity is a Fidelity or a dict with steps, orders, schedule; got {value!r}")
    unknown = sorted(set(value) - {"steps", "orders", "schedule"})
    if unknown or "steps" not in value:
        raise ValueError(f"a fidelity dict needs 'steps' and may have 'orders' and 'schedule'; got {dict(value)!r}")
    return Fidelity(**value)


def check_fidelity(fidelity: Fidelity, max_steps: int) -> Fidelity:
    """``fidelity`` if it is in range: 0 <= steps <= ``max_steps`` (the task's final schedule), 1 <= orders <=
    ``MAX_ORDERS``, a known schedule.

    Raises:
        ValueError: naming the field, its value and the allowed range.
    """
    if not (isinstance(fidelity.steps, int) and 0 <= fidelity.steps <= max_steps):
        raise ValueError(f"fidelity steps must be an integer in [0, {max_steps}] (the final schedule's steps), "
                         f"got {fidelity.steps!r}")
    if not (isinstance(fidelity.orders, int) and 1 <= fidelity.orders <= MAX_ORDERS):
        raise ValueError(f"fidelity orders must be an integer in [1, {MAX_ORDERS}], got {fidelity.orders!r}")
    if fidelity.schedule not in SCHEDULES:
        raise ValueError(f"fidelity schedule must be one of {list(SCHEDULES)}, got {fidelity.schedule!r}")
    return fidelity


def schedule_of(fidelity: Fidelity, reward_train: TrainConfig, final_train: TrainConfig) -> TrainConfig | None:
    """The training schedule of ``fidelity``: the reward's or the final schedule with ``steps`` (None for 0)."""
    if fidelity.steps == 0:
        return None
    base = reward_train if fidelity.schedule == "reward" else final_train
    return replace(base, steps=fidelity.steps)


def evaluation_cost(train_config: TrainConfig | None, orders: int, eval_size: int) -> int:
    """Sample-steps of one evaluation: ``orders x (steps x batch_size + eval_size)``; with no training
    (``train_config`` None) ``eval_size``: one forward pass, whatever the orders (the env evaluates it once)."""
    if train_config is None:
        return eval_size
    return orders * (train_config.steps * train_config.batch_size + eval_size)
