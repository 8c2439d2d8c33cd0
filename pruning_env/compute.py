"""What the sequential and the batched trainer share: the precision setting, device synchronisation, the training
steps (``train_steps``, with accuracy read-outs at checkpoint steps) and the result of a run (``train_result``)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Literal

import torch

Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
EVAL_CHUNK = 2048  # samples per forward pass in evaluation, bounds activation memory


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """bf16 autocast of the forward passes on ``device`` for ``precision="bf16"``; nothing for ``"fp32"``."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued kernels (CUDA), so that wall times measure the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class TrainResult:
    """Outcome of one run: metrics on the evaluation tensors and the run's cost."""

    accuracy: float
    """Top-1 accuracy in [0, 1]; 0 when diverged."""
    loss: float
    """Mean cross-entropy in nats; ``inf`` when diverged."""
    diverged: bool
    """True when the last training loss or the evaluation loss was not finite."""
    train_seconds: float
    """Wall time of the optimizer steps (device synchronized); a batched run's time divided by its copies."""
    eval_seconds: float
    """Wall time of the evaluation (a batched run: divided by its copies)."""
    accuracy_at: tuple[float, ...] = ()
    """Top-1 accuracy on the evaluation tensors after each step of the run's ``eval_at`` (empty without)."""
    second_accuracy: float = math.nan
    """Top-1 accuracy in [0, 1] on the run's ``second_eval`` tensors after the same training (0 when diverged);
    NaN without a second evaluation."""
    second_loss: float = math.nan
    """Mean cross-entropy (nats) on ``second_eval`` (``inf`` when diverged); NaN without."""


@dataclass(frozen=True)
class Steps:
    """What the optimizer steps of one run of B copies (B = 1: the sequential path) leave behind."""

    finite: list[bool]
    """Per copy: its last training loss was finite."""
    seconds: float
    """Wall time of all the steps (device synchronized), not divided by B."""
    accuracy_at: list[tuple[float, ...]]
    """Per copy: the accuracy read after each step of ``eval_at``, in that order (empty tuples without)."""


def train_steps(
    losses_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    hold_masks: Callable[[], None],
    accuracies: Callable[[], list[float]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    batches: torch.Tensor,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    eval_at: Sequence[int] = (),
) -> Steps:
    """The training loop of the sequential and the batched trainer: one optimizer step per row of ``batches``.

    Each step: ``losses_of(inputs, labels)`` (the copies' mean cross-entropies, shape ``(B,)``, or ``()`` for one
    network), backward of their sum (each copy's gradient is its own), the optimizer's step, ``hold_masks()``
    (re-zero the pruned weights), the scheduler's step, and after each step in ``eval_at`` (1..steps)
    ``accuracies()``, the copies' accuracies in [0, 1] on the evaluation split (they change nothing in the
    training). Apart from those read-outs the device is synchronised once, after the last step, to read which
    losses are finite.

    Raises:
        ValueError: for a step of ``eval_at`` outside [1, steps].
    """
    if any(not 1 <= step <= len(batches) for step in eval_at):
        raise ValueError(f"eval_at steps must be in [1, {len(batches)}], got {list(eval_at)}")
    device = x_train.device
    synchronize(device)
    start = time.perf_counter()
    losses = torch.zeros((), device=device)
    wanted = set(eval_at)
    checkpoints: dict[int, list[float]] = {}
    with torch.enable_grad():  # callers may step the env under no_grad (TorchRL's collectors do)
        for step, indices in enumerate(batches, start=1):
            losses = losses_of(x_train[indices], y_train[indices])
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            hold_masks()
            if scheduler is not None:
                scheduler.step()
            if step in wanted:
                checkpoints[step] = accuracies()
    finite = torch.isfinite(losses.detach()).reshape(-1).tolist()  # the one synchronisation of the training
    seconds = time.perf_counter() - start
    return Steps(finite, seconds, [tuple(checkpoints[step][b] for step in eval_at) for b in range(len(finite))])


def train_result(
    train_finite: bool, evaluation: tuple[float, float], second: tuple[float, float] | None, train_seconds: float,
    eval_seconds: float, accuracy_at: tuple[float, ...] = (),
) -> TrainResult:
    """A run's result from whether its last training loss was finite, its ``(accuracy, loss)`` on the evaluation
    split and on a second split (None without): a non-finite training or evaluation loss makes it diverged, with
    accuracy 0 and loss ``inf`` on both splits."""
    diverged = not train_finite or not math.isfinite(evaluation[1])
    if diverged:
        evaluation = (0.0, math.inf)
        second = None if second is None else (0.0, math.inf)
    second_metrics = (math.nan, math.nan) if second is None else second
    return TrainResult(*evaluation, diverged, train_seconds, eval_seconds, accuracy_at, *second_metrics)
