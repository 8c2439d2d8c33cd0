"""Training and evaluation of a masked network: the hot loop behind every reward and the final evaluation.

One ``MaskedTrainer`` owns one model and the training tensors on one device. Each ``run`` restores the
initialization in place (no deepcopy), zeroes the pruned weights, trains ``steps`` optimizer steps on shuffled
minibatches (the pruned weights re-zeroed after every step, so masks are held), then evaluates without gradients.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pruning_env.layers import PrunableLayer
from pruning_env.masking import MaskedWeights

EVAL_CHUNK = 2048  # samples per forward pass in evaluation, bounds activation memory


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

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@dataclass(frozen=True)
class TrainResult:
    """Outcome of one run: metrics on the evaluation tensors and the run's cost."""

    accuracy: float
    """Top-1 accuracy in [0, 1]; 0 when diverged."""
    loss: float
    """Mean cross-entropy in nats; ``inf`` when diverged."""
    diverged: bool
    """True when the training loss or the evaluation loss was not finite."""
    train_seconds: float
    """Wall time of the optimizer steps (device synchronized)."""
    eval_seconds: float
    """Wall time of the evaluation."""


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class MaskedTrainer:
    """Trains one reusable network under masks on tensors that stay on its device.

    Args:
        model: the network; it is trained in place, so pass a model this trainer owns.
        layers: its prunable layers (from ``prunable_layers``), whose weights the masks cover.
        x_train: training inputs ``(N, *input_shape)``, float32, on the model's device.
        y_train: training labels ``(N,)``, int64, same device.
    """

    def __init__(
        self, model: nn.Module, layers: Sequence[PrunableLayer], x_train: torch.Tensor, y_train: torch.Tensor
    ) -> None:
        if len(x_train) != len(y_train) or len(x_train) == 0:
            raise ValueError(f"x_train and y_train must be non-empty and equally long, got {len(x_train)}, {len(y_train)}")
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

    def _optimizer(self, config: TrainConfig) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if config.optimizer == "adam":
            optimizer: torch.optim.Optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
        else:
            optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps) if config.cosine else None
        return optimizer, scheduler

    def run(
        self,
        init_state: Mapping[str, torch.Tensor],
        masks: Mapping[str, torch.Tensor],
        config: TrainConfig,
        seed: int,
        x_eval: torch.Tensor,
        y_eval: torch.Tensor,
    ) -> TrainResult:
        """Restore ``init_state``, prune with ``masks``, train with ``config``, evaluate on ``(x_eval, y_eval)``.

        ``seed`` fixes the minibatch order; the same arguments give the same result on the same device.
        """
        self.model.load_state_dict(init_state)
        masked = MaskedWeights.from_layers(self.layers, masks)
        masked.reapply()
        optimizer, scheduler = self._optimizer(config)
        batches = self.minibatch_indices(config.steps, config.batch_size, seed)
        self.model.train()
        _synchronize(self.device)
        start = time.perf_counter()
        loss = torch.zeros((), device=self.device)
        with torch.enable_grad():  # callers may step the env under no_grad (TorchRL's collectors do)
            for indices in batches:
                loss = F.cross_entropy(self.model(self.x_train[indices]), self.y_train[indices])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                masked.reapply()
                if scheduler is not None:
                    scheduler.step()
        train_diverged = not math.isfinite(loss.item())  # .item() synchronizes the device
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        accuracy, eval_loss = evaluate(self.model, x_eval, y_eval)
        eval_seconds = time.perf_counter() - start
        diverged = train_diverged or not math.isfinite(eval_loss)
        if diverged:
            accuracy, eval_loss = 0.0, math.inf
        return TrainResult(accuracy, eval_loss, diverged, train_seconds, eval_seconds)


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
