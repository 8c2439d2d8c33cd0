"""Training and evaluation of a masked network: the hot loop behind every reward and the final evaluation.

One ``MaskedTrainer`` owns one model and the training tensors on one device. Each ``run`` restores the
initialization in place (no deepcopy), zeroes the pruned weights, trains ``steps`` optimizer steps on shuffled
minibatches (the pruned weights re-zeroed after every step, so masks are held), then evaluates without gradients.

``run_many`` trains many masks of one initialization with one minibatch order: one at a time (``copies=1``) or in
chunks of up to ``copies`` masked copies trained side by side (``pruning_env.batched_training``). A chunk that
does not fit in device memory is split in halves and retried, down to single copies; every mask's result comes
back exactly once, in order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from pruning_env.batched_training import train_copies
from pruning_env.compute import (
    EVAL_CHUNK,
    PRECISIONS,
    Precision,
    TrainResult,
    autocast,
    train_result,
    train_steps,
)
from pruning_env.layers import PrunableLayer
from pruning_env.masking import MaskedWeights

__all__ = ["MaskedTrainer", "TrainConfig", "TrainResult", "evaluate", "split_on_oom"]
Item = TypeVar("Item")
Out = TypeVar("Out")


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer schedule of one training run of a masked network."""

    steps: int = 100
    """Optimizer steps (minibatches), > 0."""
    batch_size: int = 128
    """Samples per minibatch, drawn from epoch-wise permutations of the training split."""
    optimizer: Literal["adam", "sgd"] = "adam"
    """Adam, or SGD with Nesterov-free momentum."""
    lr: float = 1e-3
    """Initial learning rate."""
    momentum: float = 0.9
    """SGD momentum (ignored by Adam)."""
    weight_decay: float = 0.0
    """L2 penalty coefficient of the optimizer."""
    cosine: bool = True
    """Cosine decay of the learning rate to 0 over ``steps``; constant when False."""
    decay_every: int = 0
    """When > 0, a step schedule instead of the cosine: the rate is multiplied by 0.1 every ``decay_every`` steps
    (SNIP's MNIST schedule: lr 0.1, x0.1 every 25k iterations)."""

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.decay_every < 0:
            raise ValueError(f"decay_every must be >= 0 (0: no step decay), got {self.decay_every}")


def make_optimizer(params: Sequence[torch.Tensor], config: TrainConfig) -> torch.optim.Optimizer:
    """The schedule's optimizer (Adam, or SGD with momentum; weight decay) over ``params``."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler | None:
    """x0.1 every ``config.decay_every`` steps when that is set, else cosine decay to 0 over ``config.steps`` when
    ``config.cosine``, else None (a constant rate)."""
    if config.decay_every:
        return torch.optim.lr_scheduler.StepLR(optimizer, config.decay_every, gamma=0.1)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps) if config.cosine else None


def is_out_of_memory(error: BaseException) -> bool:
    """The error is a device (or host) allocation failure that a smaller batch may avoid."""
    return isinstance(error, torch.OutOfMemoryError | MemoryError) or "out of memory" in str(error).lower()


def split_on_oom(items: Sequence[Item], chunk: int, run: Callable[[Sequence[Item]], list[Out]]) -> list[Out]:
    """``run`` over consecutive chunks of up to ``chunk`` items; the outputs concatenated, in input order.

    A chunk whose ``run`` runs out of memory is split in halves and each half retried (the CUDA cache emptied
    first); a single item that still does not fit raises the error.
    """
    outputs: list[Out] = []
    pending = [list(items[start : start + chunk]) for start in range(0, len(items), chunk)]
    while pending:
        part = pending.pop(0)
        try:
            outputs.extend(run(part))
        except (RuntimeError, MemoryError) as error:
            if len(part) == 1 or not is_out_of_memory(error):
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            half = len(part) // 2
            pending[:0] = [part[:half], part[half:]]
    return outputs


class MaskedTrainer:
    """Trains one reusable network under masks on tensors that stay on its device.

    Args:
        model: the network; it is trained in place, so pass a model this trainer owns.
        layers: its prunable layers (from ``prunable_layers``), whose weights the masks cover.
        x_train: training inputs ``(N, *input_shape)``, float32, on the model's device.
        y_train: training labels ``(N,)``, int64, same device.
        copies: most masked copies ``run_many`` trains side by side (1: one at a time, the sequential path).
        precision: ``"fp32"``, or ``"bf16"`` for bf16 autocast of the forward passes (optimizer state stays fp32).
    """

    def __init__(
        self, model: nn.Module, layers: Sequence[PrunableLayer], x_train: torch.Tensor, y_train: torch.Tensor,
        *, copies: int = 1, precision: Precision = "fp32",
    ) -> None:
        if len(x_train) != len(y_train) or len(x_train) == 0:
            raise ValueError(f"x_train and y_train must be non-empty and equally long, got {len(x_train)}, {len(y_train)}")
        if not (isinstance(copies, int) and copies >= 1):
            raise ValueError(f"copies must be an integer >= 1, got {copies!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        self.copies = copies
        self.precision = precision
        self.model = model
        self.layers = list(layers)
        self.x_train = x_train
        self.y_train = y_train
        self.device = x_train.device

    def minibatch_indices(self, steps: int, batch_size: int, seed: int) -> torch.Tensor:
        """Indices ``(steps, batch)`` into the training split: consecutive seeded permutations, cut into batches."""
        num_samples = len(self.x_train)
        batch = min(batch_size, num_samples)
        epochs = math.ceil(steps * batch / num_samples)
        generator = torch.Generator().manual_seed(seed)
        order = torch.cat([torch.randperm(num_samples, generator=generator) for _ in range(epochs)])
        return order[: steps * batch].view(steps, batch).to(self.device)

    def run(
        self,
        init_state: Mapping[str, torch.Tensor],
        masks: Mapping[str, torch.Tensor],
        config: TrainConfig,
        seed: int,
        x_eval: torch.Tensor,
        y_eval: torch.Tensor,
        eval_at: Sequence[int] = (),
        second_eval: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> TrainResult:
        """Restore ``init_state``, prune with ``masks``, train with ``config``, evaluate on ``(x_eval, y_eval)``
        (and on ``second_eval``, another split ``(x, y)``, when given: ``TrainResult.second_accuracy``).

        ``seed`` fixes the minibatch order; the same arguments give the same result on the same kind of machine.
        ``eval_at``: steps (1..``config.steps``) after which the accuracy on ``(x_eval, y_eval)`` is also taken
        (``TrainResult.accuracy_at``, in order); those evaluations change nothing in the training.
        """
        self.model.load_state_dict(init_state)
        masked = MaskedWeights.from_layers(self.layers, masks)
        masked.reapply()
        optimizer = make_optimizer([p for p in self.model.parameters() if p.requires_grad], config)
        scheduler = make_scheduler(optimizer, config)
        batches = self.minibatch_indices(config.steps, config.batch_size, seed)

        def losses_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            with autocast(self.device, self.precision):
                logits = self.model(x)
            return F.cross_entropy(logits.float(), y)

        def accuracies() -> list[float]:
            with autocast(self.device, self.precision):
                return [evaluate(self.model, x_eval, y_eval)[0]]

        self.model.train()
        steps = train_steps(losses_of, masked.reapply, accuracies, optimizer, scheduler, batches, self.x_train,
                            self.y_train, eval_at)
        start = time.perf_counter()
        with autocast(self.device, self.precision):
            evaluation = evaluate(self.model, x_eval, y_eval)
            second = evaluate(self.model, *second_eval) if second_eval is not None else None
        return train_result(steps.finite[0], evaluation, second, steps.seconds, time.perf_counter() - start,
                            steps.accuracy_at[0])

    def run_many(
        self,
        init_state: Mapping[str, torch.Tensor],
        masks: Sequence[Mapping[str, torch.Tensor]],
        config: TrainConfig,
        seed: int,
        x_eval: torch.Tensor,
        y_eval: torch.Tensor,
        eval_at: Sequence[int] = (),
        second_eval: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> list[TrainResult]:
        """``run`` for every mask dict in ``masks`` (one shared minibatch order from ``seed``), in order.

        With ``copies > 1`` they train in chunks of up to ``copies`` side by side, split on out-of-memory errors;
        ``eval_at`` reads every copy's accuracy at those steps on either path. Raises ValueError for an empty
        ``masks``.
        """
        if not masks:
            raise ValueError("run_many needs at least one mask dict, got none")
        if self.copies == 1:
            return [self.run(init_state, m, config, seed, x_eval, y_eval, eval_at, second_eval) for m in masks]
        batches = self.minibatch_indices(config.steps, config.batch_size, seed)

        def run_chunk(chunk: Sequence[Mapping[str, torch.Tensor]]) -> list[TrainResult]:
            return train_copies(
                self.model, self.layers, init_state, chunk, lambda params: make_optimizer(params, config),
                lambda optimizer: make_scheduler(optimizer, config), batches, self.x_train, self.y_train,
                x_eval, y_eval, self.precision, second_eval, eval_at,
            )

        return split_on_oom(masks, self.copies, run_chunk)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Top-1 accuracy in [0, 1] and mean cross-entropy (nats) of ``model`` in eval mode; restores its mode."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), device=x.device)
    loss_sum = torch.zeros((), device=x.device, dtype=torch.float64)
    for start in range(0, len(x), EVAL_CHUNK):
        logits = model(x[start : start + EVAL_CHUNK])
        targets = y[start : start + EVAL_CHUNK]
        correct += (logits.argmax(dim=1) == targets).sum()
        loss_sum += F.cross_entropy(logits, targets, reduction="sum").double()
    model.train(was_training)
    return correct.item() / len(x), loss_sum.item() / len(x)
