"""The options of a ``PruningEnv``, defaulted from its task and validated once.

``EnvConfig.build(task, **options)`` is the one place where the env's options get their defaults (the task
supplies target, scorer, proxies, reward and schedules) and are checked; the env only reads the result. Before it,
``PruningEnv`` (which every entry point builds: ``parallel_env``, ``env``, ``raw_env``, ``gymnasium.make``) rejects
an unknown keyword with ``check_option_names``, naming the closest valid ones.

    config = EnvConfig.build("mlp-digits", target_sparsity=0.99, reward="neg_loss")
    config.reward_train.steps          # 100: the task's K
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from pruning_env.budget import Budget, check_budget
from pruning_env.compute import PRECISIONS, Precision
from pruning_env.device import default_reward_batch, resolve_device
from pruning_env.fidelity import SCHEDULES, Fidelity, Schedule, schedule_of
from pruning_env.registry import get_task
from pruning_env.rewards import check_reward_kind
from pruning_env.scorers import SCORERS, is_target_dependent
from pruning_env.tasks import PRUNE_AT, TRAINED_SCORER, PruneAt, Task
from pruning_env.training import TrainConfig

ActionType = Literal["continuous", "discrete"]
Init = Literal["fixed", "per_episode"] | int
RENDER_MODES: tuple[str, ...] = ("ansi", "human")
RewardOrder = Literal["instance", "episode"]
REWARD_ORDERS: tuple[str, ...] = ("instance", "episode")


@dataclass(frozen=True)
class EnvConfig:
    """Every option of a ``PruningEnv``, resolved (no field is left to a default elsewhere)."""

    task: Task
    """The task: network, dataset, default target and schedules."""
    target_range: tuple[float, float]
    """(low, high) of the global target, 0 <= low <= high < 1; low == high for a fixed target. A fraction of the
    budget's cost (``budget``)."""
    scorer: str
    """Within-layer mask criterion, a name from ``pruning_env.scorers.SCORERS``."""
    proxies: tuple[str, ...]
    """Scorers whose statistics feed the observation (target-free ones only)."""
    reward: str
    """Reward kind, one of ``pruning_env.rewards.REWARDS``."""
    reward_train: TrainConfig | None
    """Schedule of the reward's training: the task's K-step proxy (``reward_steps`` applied), or its full
    schedule for ``reward="full"``; None for ``reward_steps=0`` (the pruned network is evaluated as it is)."""
    action_type: ActionType
    """``"continuous"`` sparsities or ``"discrete"`` bins."""
    action_bins: int
    """Number of discrete sparsity levels (bin i requests i / (action_bins - 1))."""
    init: Init
    """``"fixed"``: θ0 from the reset seed; ``"per_episode"``: a new θ0 every episode; an int s: θ0 of seed s."""
    device: torch.device
    """Where the network, the data and the training live."""
    seed: int | None
    """Seed of the first reset when ``reset`` is called without one."""
    render_mode: str | None
    """None, ``"ansi"`` or ``"human"``."""
    cache_size: int
    """Instances (scored initializations) kept in memory."""
    reward_batch: int = 1
    """Most masked copies one reward pass trains side by side (``evaluate_plans``); 1 is the sequential path."""
    reward_precision: Precision = "fp32"
    """``"fp32"`` or ``"bf16"`` (autocast of the reward's forward passes)."""
    reward_orders: int = 1
    """Minibatch orders the reward averages over (n trainings per plan); 1 is one order."""
    reward_order: RewardOrder = "instance"
    """Where the orders come from: ``"instance"`` (the init seed: one plan, one reward) or ``"episode"`` (drawn
    from the episode's RNG at each reset, so a search cannot fit one order)."""
    budget: Budget = "weights"
    """What the target is a fraction of: ``"weights"`` (the prunable weights) or ``"flops"`` (the prunable layers'
    multiply-accumulates per sample); see ``pruning_env.budget``."""
    prune_at: PruneAt = "init"
    """What a plan prunes: ``"init"``, the seeded initialization θ0; ``"trained"``, the network trained from θ0
    with the task's ``final_train`` schedule (``pruning_env.trained``). The task's own by default; under
    ``"trained"`` ``reward_steps`` defaults to 0 (not for ``reward="full"``), and a task made for ``"init"`` masks
    with ``TRAINED_SCORER`` (magnitude) unless ``scorer`` is given."""
    reward_schedule: Schedule = "reward"
    """The schedule the reward trains with: ``"reward"``, the task's reward schedule; ``"final"``, its final
    schedule's optimizer and learning-rate decay cut to ``reward_steps`` (always so for ``reward="full"``)."""
    compute_limit: int | None = None
    """Most sample-steps the env's evaluations may spend (``pruning_env.fidelity``); None: no limit."""

    @classmethod
    def build(
        cls,
        task: str | Task = "mlp-digits",
        *,
        target_sparsity: float | tuple[float, float] | None = None,
        scorer: str | None = None,
        proxies: tuple[str, ...] | list[str] | None = None,
        reward: str | None = None,
        reward_steps: int | None = None,
        action_type: ActionType = "continuous",
        action_bins: int = 21,
        init: Init = "fixed",
        device: str | torch.device = "auto",
        seed: int | None = None,
        render_mode: str | None = None,
        cache_size: int = 8,
        reward_batch: int | str = "auto",
        reward_precision: Precision = "fp32",
        reward_orders: int = 1,
        reward_order: RewardOrder = "instance",
        prune_at: PruneAt | None = None,
        budget: Budget | None = None,
        reward_schedule: Schedule = "reward",
        compute_limit: int | None = None,
    ) -> EnvConfig:
        """The resolved config: ``None`` options take the task's value. See ``PruningEnv`` for their meaning.

        Raises:
            ValueError: for any option out of its range, naming the option, the value and what is allowed.
        """
        task = task if isinstance(task, Task) else get_task(task)
        reward = task.reward if reward is None else reward
        check_reward_kind(reward)
        prune_at = task.prune_at if prune_at is None else prune_at
        if prune_at not in PRUNE_AT:
            raise ValueError(f"prune_at must be one of {list(PRUNE_AT)}, got {prune_at!r}")
        if scorer is None:  # a task made for initialization pruned after training: that mode's criterion
            scorer = TRAINED_SCORER if prune_at == "trained" and task.prune_at == "init" else task.scorer
        proxies = tuple(task.proxies if proxies is None else proxies)
        for name in (scorer, *proxies):
            if name not in SCORERS:
                raise ValueError(f"unknown scorer or proxy {name!r}; known: {', '.join(SCORERS)}")
        dependent = sorted(name for name in proxies if is_target_dependent(name))
        if dependent:
            raise ValueError(f"proxies cannot be target-dependent scorers, got {dependent}")
        if action_type not in ("continuous", "discrete"):
            raise ValueError(f"action_type must be 'continuous' or 'discrete', got {action_type!r}")
        if action_bins < 2:
            raise ValueError(f"action_bins must be >= 2, got {action_bins}")
        if not (init in ("fixed", "per_episode") or (isinstance(init, int) and init >= 0)):
            raise ValueError(f"init must be 'fixed', 'per_episode' or a seed (int >= 0), got {init!r}")
        if render_mode not in (None, *RENDER_MODES):
            raise ValueError(f"render_mode must be None or one of {list(RENDER_MODES)}, got {render_mode!r}")
        if cache_size < 1:
            raise ValueError(f"cache_size must be >= 1, got {cache_size}")
        if not (reward_batch == "auto" or (isinstance(reward_batch, int) and reward_batch >= 1)):
            raise ValueError(f"reward_batch must be 'auto' or an integer >= 1, got {reward_batch!r}")
        if reward_precision not in PRECISIONS:
            raise ValueError(f"reward_precision must be one of {list(PRECISIONS)}, got {reward_precision!r}")
        if not (isinstance(reward_orders, int) and reward_orders >= 1):
            raise ValueError(f"reward_orders must be an integer >= 1, got {reward_orders!r}")
        if reward_order not in REWARD_ORDERS:
            raise ValueError(f"reward_order must be one of {list(REWARD_ORDERS)}, got {reward_order!r}")
        budget = check_budget(task.budget if budget is None else budget)
        if reward_steps is not None and reward_steps < 0:
            raise ValueError(f"reward_steps must be an integer >= 0 (0: no training), got {reward_steps!r}")
        if reward_steps is None and prune_at == "trained" and reward != "full":
            reward_steps = 0  # after training, the K-step rewards read the pruned network as it is unless asked
        if reward_schedule not in SCHEDULES:
            raise ValueError(f"reward_schedule must be one of {list(SCHEDULES)}, got {reward_schedule!r}")
        if reward == "full":
            reward_schedule = "final"
        if reward_steps is None:  # the full reward's whole schedule, else the task's K (also cutting the final one)
            reward_steps = (task.final_train if reward == "full" else task.reward_train).steps
        reward_train = schedule_of(Fidelity(reward_steps, reward_orders, reward_schedule), task.reward_train,
                                   task.final_train)
        if compute_limit is not None and not (isinstance(compute_limit, int) and compute_limit > 0):
            raise ValueError(f"compute_limit must be None or a positive integer (sample-steps), got {compute_limit!r}")
        device = resolve_device(device)
        return cls(
            task, target_range(task.target_sparsity if target_sparsity is None else target_sparsity), scorer,
            proxies, reward, reward_train, action_type, action_bins, init, device, seed, render_mode,
            cache_size, default_reward_batch(device) if reward_batch == "auto" else reward_batch, reward_precision,
            reward_orders, reward_order, budget, prune_at, reward_schedule, compute_limit,
        )

    @property
    def reward_steps(self) -> int:
        """Training steps of the reward (0: none, the pruned network is evaluated as it is)."""
        return 0 if self.reward_train is None else self.reward_train.steps

    @property
    def fidelity(self) -> Fidelity:
        """The reward's own fidelity: its steps, orders and schedule."""
        return Fidelity(self.reward_steps, self.reward_orders, self.reward_schedule)

    @property
    def draws_per_episode(self) -> bool:
        """Every reset draws a new initialization or target."""
        low, high = self.target_range
        return self.init == "per_episode" or high > low


OPTIONS: tuple[str, ...] = tuple(inspect.signature(EnvConfig.build).parameters)[1:]
"""The keyword options of ``EnvConfig.build`` (every ``PruningEnv`` argument but ``task``, ``model`` and ``data``)."""


def check_option_names(given: Iterable[str], valid: Sequence[str]) -> None:
    """Reject a keyword argument of ``PruningEnv`` that is not one of ``valid``.

    Raises:
        ValueError: naming ``PruningEnv``, the unknown option, the closest valid names and every valid name.
    """
    for name in given:
        if name not in valid:
            close = difflib.get_close_matches(name, valid)
            hint = f"; did you mean {' or '.join(repr(option) for option in close)}?" if close else "."
            raise ValueError(f"PruningEnv got an unknown option {name!r}{hint} Valid options: {', '.join(valid)}")


def target_range(target: float | tuple[float, float]) -> tuple[float, float]:
    """``(low, high)`` of a target given as one float or a range.

    Raises:
        ValueError: unless 0 <= low <= high < 1, both finite.
    """
    low, high = (target, target) if isinstance(target, int | float) else tuple(target)
    if not all(np.isfinite([low, high])) or not (0.0 <= low <= high < 1.0):
        raise ValueError(
            f"target_sparsity must be a float in [0, 1) or a range (low, high) with 0 <= low <= high < 1, got {target!r}"
        )
    return float(low), float(high)
