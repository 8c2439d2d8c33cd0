"""Reward kinds: what number a pruned network is worth.

| kind       | value                                                                 | cost                     |
|------------|-----------------------------------------------------------------------|--------------------------|
| neg_loss   | minus the validation cross-entropy (nats) after K masked training steps, in [-3 log C, 0] (the tasks' default) | K steps + one evaluation |
| accuracy   | validation accuracy in [0, 1] after K masked training steps | as neg_loss |
| zero_cost  | log10 of the fraction of SynFlow's objective R that survives the masks, in [-50, 0] | two float64 forward passes, no training |
| full       | validation accuracy in [0, 1] after the task's full training schedule | the full schedule        |

``neg_loss`` is the default: on mlp-digits at 0.98 it ranks plans like their final test accuracy better than
``accuracy`` at every K (``benchmarks/results/reference/fidelity_mlp-digits_0.98/fidelity_mlp-digits_0.98.md``), and it still tells plans
apart when most of them sit at chance accuracy after K steps. C is the number of classes; a network that only
guesses has a loss of log C (2.30 nats for 10 classes), so a reward near -2.30 means "no better than chance".

The zero-cost reward is log10(R(θ0 ⊙ m) / R(θ0)), R = SynFlow's objective on the absolute-valued network
(``scorers.synaptic_flow``, the path norm of a bias-free ReLU network). Zeroing weights never raises R, so the
value is at most 0 (the dense network); a disconnected network (R = 0) and anything below 10^-50 of the flow
earn the floor -50. Measured at seed 0 (uniform / global-SNIP plans): mlp-digits at 0.99 about -6.3, ResNet-20 at
0.9 -14.2 / -8.9 and at 0.99 -18.3 / -17.3, VGG-19 at 0.99 -22.2: the flow shrinks geometrically with depth.

With ``reward_steps=0`` (``train_config=None``) the accuracy, neg_loss and full kinds train nothing: they read the
pruned network as it is on the validation subset, one forward pass (AMC's reward after training, ``prune_at=
"trained"``; at initialization it is near chance for every plan).

The test split is never used by a reward. A diverged training (non-finite loss) earns the kind's lowest value and
``diverged = 1`` in infos.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence

import torch

from pruning_env.evaluation import PlanEvaluator
from pruning_env.masking import MaskedWeights
from pruning_env.scorers import synaptic_flow
from pruning_env.training import MaskedTrainer, TrainConfig, TrainResult

REWARDS: tuple[str, ...] = ("neg_loss", "accuracy", "zero_cost", "full")
ZERO_COST_FLOOR = -50.0  # log10 of the surviving fraction of SynFlow's R below which a plan counts as disconnected


def reward_bounds(kind: str, num_classes: int) -> tuple[float, float]:
    """Lowest and highest value a reward kind can take (the lowest is a diverged training's reward)."""
    check_reward_kind(kind)
    if kind == "neg_loss":
        return -3.0 * math.log(num_classes), 0.0
    if kind == "zero_cost":
        return ZERO_COST_FLOOR, 0.0
    return 0.0, 1.0


def check_reward_kind(kind: str) -> None:
    """Raise ValueError for an unknown reward kind, listing the known ones."""
    if kind not in REWARDS:
        raise ValueError(f"unknown reward {kind!r}; known rewards: {', '.join(REWARDS)}")


class RewardEvaluator(PlanEvaluator):
    """Computes one reward kind for masks applied to a fixed initialization: the plan evaluator
    (``pruning_env.evaluation``) on the reward's schedule and validation subset, its runs valued by the kind.

    Args:
        kind: one of ``REWARDS``.
        trainer: the masked trainer; it owns the model that is trained (or, for ``zero_cost``, masked) in place.
        train_config: the schedule for ``accuracy`` / ``neg_loss`` (K steps) or ``full``; None: no training.
        x_eval: the inputs of the fixed validation subset, on the trainer's device.
        y_eval: its labels.
        num_classes: number of classes (sets the ``neg_loss`` floor).
        orders: minibatch orders each plan's reward averages over (``order_seeds``).
    """

    def __init__(
        self,
        kind: str,
        trainer: MaskedTrainer,
        train_config: TrainConfig | None,
        x_eval: torch.Tensor,
        y_eval: torch.Tensor,
        num_classes: int,
        orders: int = 1,
    ) -> None:
        check_reward_kind(kind)
        super().__init__(trainer, train_config, x_eval, y_eval, orders=orders)
        self.kind = kind
        self.low, self.high = reward_bounds(kind, num_classes)

    def __call__(
        self, init_state: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor], seed: int
    ) -> tuple[float, TrainResult]:
        """The reward of pruning ``init_state`` with ``masks`` and the training run behind it (for ``zero_cost``:
        accuracy and loss NaN, no training). ``seed`` fixes the minibatch order."""
        return self.evaluate_many(init_state, [masks], seed)[0]

    def evaluate_many(
        self, init_state: Mapping[str, torch.Tensor], masks: Sequence[Mapping[str, torch.Tensor]], seed: int
    ) -> list[tuple[float, TrainResult]]:
        """``__call__`` for every mask dict of one initialization, in order: the trainer trains them with one
        minibatch order, side by side when its ``copies`` > 1 (``MaskedTrainer.run_many``).

        With ``orders`` = n > 1 every plan trains n times, on the orders of ``order_seeds(seed, n)``; its reward is
        the mean of the n values, its run the mean accuracy and loss (diverged if any run diverged, seconds
        summed)."""
        if self.kind == "zero_cost":
            return [self._zero_cost(init_state, m) for m in masks]
        return [
            (sum(self.value(run) for run in runs) / len(runs), runs[0] if len(runs) == 1 else mean_run(runs))
            for runs in self.runs(init_state, masks, seed)
        ]

    def value(self, run: TrainResult) -> float:
        """The reward a training run earns: its kind's value, floored at the kind's lowest (also when diverged)."""
        if run.diverged:
            return self.low
        value = -run.loss if self.kind == "neg_loss" else run.accuracy
        return max(value, self.low)

    def _zero_cost(
        self, init_state: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]
    ) -> tuple[float, TrainResult]:
        start = time.perf_counter()
        model, layers, input_shape = self.trainer.model, self.trainer.layers, self.x_eval.shape[1:]
        model.load_state_dict(init_state)
        dense = synaptic_flow(model, layers, input_shape)
        MaskedWeights.from_layers(layers, masks).reapply()
        pruned = synaptic_flow(model, layers, input_shape)
        value = zero_cost_value(pruned, dense)
        return value, TrainResult(math.nan, math.nan, False, 0.0, time.perf_counter() - start)


def mean_run(runs: Sequence[TrainResult]) -> TrainResult:
    """One run standing for several: mean accuracy and loss, diverged if any diverged, seconds summed."""
    count = len(runs)
    return TrainResult(
        sum(r.accuracy for r in runs) / count, sum(r.loss for r in runs) / count, any(r.diverged for r in runs),
        sum(r.train_seconds for r in runs), sum(r.eval_seconds for r in runs),
    )


def zero_cost_value(pruned_flow: float, dense_flow: float) -> float:
    """``log10(pruned_flow / dense_flow)`` floored at ``ZERO_COST_FLOOR``; the floor when either flow is 0."""
    if pruned_flow <= 0.0 or dense_flow <= 0.0:
        return ZERO_COST_FLOOR
    return max(math.log10(pruned_flow) - math.log10(dense_flow), ZERO_COST_FLOOR)
