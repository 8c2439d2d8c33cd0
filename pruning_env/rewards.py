"""Reward kinds: what number a pruned network is worth.

| kind       | value                                                                 | cost                     |
|------------|-----------------------------------------------------------------------|--------------------------|
| accuracy   | validation accuracy in [0, 1] after K masked training steps (default)  | K steps + one evaluation |
| neg_loss   | minus the validation cross-entropy (nats) after K steps, floored at -3 log C | as accuracy         |
| zero_cost  | log10 of the fraction of the total SynFlow saliency that survives the masks, floored at -10 | two float64 forward/backward passes, no training |
| full       | validation accuracy after the task's full training schedule          | the full schedule        |

The test split is never used by a reward. A diverged training (non-finite loss) earns the kind's lowest value and
``diverged = 1`` in infos.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pruning_env.layers import PrunableLayer
from pruning_env.masking import MaskedWeights
from pruning_env.scorers import compute_scores
from pruning_env.training import MaskedTrainer, TrainConfig

REWARDS: tuple[str, ...] = ("accuracy", "neg_loss", "zero_cost", "full")
ZERO_COST_FLOOR = -10.0  # log10 of the surviving path-norm fraction of a disconnected network


@dataclass(frozen=True)
class RewardOutcome:
    """A reward value with the facts infos report about it."""

    reward: float
    accuracy: float
    """Validation accuracy in [0, 1] (NaN for the zero-cost reward, which does not train)."""
    loss: float
    """Validation cross-entropy in nats (NaN for the zero-cost reward)."""
    diverged: bool
    seconds: float
    """Wall time of training plus evaluation (or of the zero-cost computation)."""


def reward_range(kind: str, num_classes: int) -> tuple[float, float]:
    """Lowest and highest value a reward kind can take."""
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


class RewardEvaluator:
    """Computes one reward kind for masks applied to a fixed initialization.

    Args:
        kind: one of ``REWARDS``.
        trainer: the reusable masked trainer (owns the model that is trained in place).
        train_config: the schedule for ``accuracy`` / ``neg_loss`` (K steps) or ``full``.
        x_eval, y_eval: the fixed validation subset, on the trainer's device.
        num_classes: number of classes (sets the ``neg_loss`` floor).
    """

    def __init__(
        self,
        kind: str,
        trainer: MaskedTrainer,
        train_config: TrainConfig,
        x_eval: torch.Tensor,
        y_eval: torch.Tensor,
        num_classes: int,
    ) -> None:
        check_reward_kind(kind)
        self.kind = kind
        self.trainer = trainer
        self.train_config = train_config
        self.x_eval = x_eval
        self.y_eval = y_eval
        self.low, self.high = reward_range(kind, num_classes)

    def __call__(self, init_state: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor], seed: int) -> RewardOutcome:
        """Reward of pruning ``init_state`` with ``masks``; ``seed`` fixes the minibatch order."""
        if self.kind == "zero_cost":
            return self._zero_cost(init_state, masks)
        result = self.trainer.run(init_state, masks, self.train_config, seed, self.x_eval, self.y_eval)
        seconds = result.train_seconds + result.eval_seconds
        if result.diverged:
            return RewardOutcome(self.low, result.accuracy, result.loss, True, seconds)
        value = -result.loss if self.kind == "neg_loss" else result.accuracy
        return RewardOutcome(max(value, self.low), result.accuracy, result.loss, False, seconds)

    def _zero_cost(self, init_state: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]) -> RewardOutcome:
        start = time.perf_counter()
        model, layers = self.trainer.model, self.trainer.layers
        model.load_state_dict(init_state)
        dense = synflow_total(model, layers, self.x_eval[:1])
        MaskedWeights.from_layers(layers, masks).reapply()
        pruned = synflow_total(model, layers, self.x_eval[:1])
        ratio = pruned / dense if dense > 0 else 0.0
        value = max(math.log10(ratio), ZERO_COST_FLOOR) if ratio > 0 else ZERO_COST_FLOOR
        return RewardOutcome(value, math.nan, math.nan, False, time.perf_counter() - start)


def synflow_total(model: nn.Module, layers: Sequence[PrunableLayer], example_input: torch.Tensor) -> float:
    """Sum over all prunable weights of the SynFlow saliency |θ ∂R/∂θ| (Tanaka et al. 2020) of ``model`` as it is.

    For a network homogeneous in its weights this is R times the number of layers on a path, so the ratio of a
    pruned to the dense network's total is the fraction of the path-norm that survives; 0 means disconnected.
    ``example_input`` (1, *input_shape) only gives the input shape.
    """
    scores = compute_scores("synflow", model, layers, (example_input, torch.zeros(1, dtype=torch.long)))
    return float(sum(score.double().sum() for score in scores.values()))
