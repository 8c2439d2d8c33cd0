"""What the sequential and the batched trainer share: the precision setting, device synchronisation, the result."""

from __future__ import annotations

import math
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
