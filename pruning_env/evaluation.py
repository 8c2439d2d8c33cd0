"""The one plan evaluator: pruned masks of one initialization trained with a schedule and read on a split.

It serves the env's reward and the benchmark's final evaluation; the caller passes the schedule and the split:

| caller                                       | schedule                       | split             | second split |
|----------------------------------------------|--------------------------------|-------------------|--------------|
| ``pruning_env.rewards.RewardEvaluator``      | the reward's (K steps or full) | validation subset | none         |
| ``benchmarks.final_accuracy.FinalEvaluator`` | the task's ``final_train``     | test              | validation   |

The masks of one initialization train with one minibatch order, side by side when the trainer's ``copies`` > 1
(``MaskedTrainer.run_many``); with ``orders`` = n > 1 every plan trains once on each of n orders (``order_seeds``).
With no schedule (``train_config=None``, the env's ``reward_steps=0``) nothing trains: each pruned network is read
on the split as it is, one forward pass (no optimizer), and the orders do not matter (one run per plan).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from typing import Self

import torch

from pruning_env.batched_training import evaluate_copies
from pruning_env.compute import autocast, train_result
from pruning_env.masking import MaskedWeights
from pruning_env.training import MaskedTrainer, TrainConfig, TrainResult, evaluate, split_on_oom

Split = tuple[torch.Tensor, torch.Tensor]
"""An evaluation split: inputs ``(N, *input_shape)`` and labels ``(N,)`` int64, on the trainer's device."""


class PlanEvaluator:
    """Trains masks of an initialization with one schedule and evaluates them on one split (and a second one).

    Args:
        trainer: the masked trainer; it owns the model that is trained in place.
        train_config: the schedule every plan trains with; None: no training (``evaluate_masked``).
        x_eval: the inputs of the evaluation split, on the trainer's device.
        y_eval: its labels.
        second_eval: another split ``(x, y)`` read after the same training (``TrainResult.second_accuracy``).
        orders: minibatch orders every plan trains on (``order_seeds``), >= 1.
    """

    def __init__(
        self,
        trainer: MaskedTrainer,
        train_config: TrainConfig | None,
        x_eval: torch.Tensor,
        y_eval: torch.Tensor,
        second_eval: Split | None = None,
        orders: int = 1,
    ) -> None:
        if not (isinstance(orders, int) and orders >= 1):
            raise ValueError(f"orders must be an integer >= 1, got {orders!r}")
        self.trainer = trainer
        self.train_config = train_config
        self.x_eval = x_eval
        self.y_eval = y_eval
        self.second_eval = second_eval
        self.orders = orders

    def at(self, train_config: TrainConfig | None, orders: int) -> Self:
        """This evaluator (same trainer and splits) with another schedule and number of orders: another
        fidelity (``pruning_env.fidelity``)."""
        if not (isinstance(orders, int) and orders >= 1):
            raise ValueError(f"orders must be an integer >= 1, got {orders!r}")
        evaluator = copy.copy(self)
        evaluator.train_config, evaluator.orders = train_config, orders
        return evaluator

    def runs(
        self, init_state: Mapping[str, torch.Tensor], masks: Sequence[Mapping[str, torch.Tensor]], seed: int,
        eval_at: Sequence[int] = (),
    ) -> list[tuple[TrainResult, ...]]:
        """Every mask dict (layer name -> bool mask, True = kept) applied to ``init_state`` and trained: per mask
        dict, in order, its runs on the minibatch orders ``order_seeds(seed, orders)``.

        ``eval_at``: steps (1..``train_config.steps``) after which the accuracy on the split is also read
        (``TrainResult.accuracy_at``). Raises ValueError for no masks or an ``eval_at`` step out of range.

        Without a schedule every mask dict has one run, ``evaluate_masked``'s (``eval_at`` must be empty); with the
        trainer's ``copies`` > 1 (the env's ``reward_batch``: 64 on CUDA by default) up to that many are read in one
        batched forward pass (``pruning_env.batched_training.evaluate_copies``), equal to rounding.
        """
        if self.train_config is None:
            if eval_at:
                raise ValueError(f"eval_at needs training steps; this evaluator trains none, got {list(eval_at)}")
            if not masks:
                raise ValueError("runs needs at least one mask dict, got none")
            if self.trainer.copies > 1:
                return [(run,) for run in split_on_oom(masks, self.trainer.copies, lambda chunk: evaluate_copies(
                    self.trainer.model, self.trainer.layers, init_state, chunk, self.x_eval, self.y_eval,
                    self.trainer.precision, self.second_eval))]
            return [(self.evaluate_masked(init_state, m),) for m in masks]
        per_order = [
            self.trainer.run_many(init_state, masks, self.train_config, order, self.x_eval, self.y_eval, eval_at,
                                  self.second_eval)
            for order in order_seeds(seed, self.orders)
        ]
        return list(zip(*per_order, strict=True))

    def evaluate_masked(self, init_state: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]) -> TrainResult:
        """``init_state`` pruned with ``masks`` and read on the split (and the second split) with no training: one
        forward pass in eval mode on the trainer's model, under its precision; ``train_seconds`` is 0, a
        non-finite loss makes the run diverged."""
        start = time.perf_counter()
        model = self.trainer.model
        model.load_state_dict(init_state)
        MaskedWeights.from_layers(self.trainer.layers, masks).reapply()
        with autocast(self.trainer.device, self.trainer.precision):
            evaluation = evaluate(model, self.x_eval, self.y_eval)
            second = evaluate(model, *self.second_eval) if self.second_eval is not None else None
        return train_result(True, evaluation, second, 0.0, time.perf_counter() - start)


def order_seeds(seed: int, count: int) -> list[int]:
    """``count`` minibatch-order seeds derived from ``seed``; the first is ``seed`` itself (one order = today's)."""
    return [seed] + [(seed * 1_000_003 + k) % (2**31 - 1) for k in range(1, count)]

