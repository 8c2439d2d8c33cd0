"""B masked copies of one network trained side by side: the batched path behind ``MaskedTrainer.run_many``.

Every copy starts from the same initialization and sees the same minibatches (the reward's order comes from the
instance's seed); each has its own mask, weights, optimizer state and BatchNorm running statistics. The copies'
parameters are stacked into tensors ``(B, *shape)`` and the network runs once per step over all of them with
``torch.func.functional_call`` under ``torch.func.vmap`` (linear layers become batched matmuls, convolutions
grouped convolutions). The loss is the sum of the copies' mean losses, so each copy's gradient is its own; the
optimizers (Adam, SGD with momentum, weight decay, cosine schedule) act elementwise, so one optimizer over the
stacked tensors is B independent optimizers.

Numerically the copies equal B sequential runs up to float32 rounding (the kernels sum in another order):
measured on CPU, |Δ loss| < 1e-6 after 30 steps. Long trainings at a high learning rate amplify that rounding
like any change of kernel does (a CNN with BatchNorm at K = 100, Adam lr 1e-2: up to 0.2 nats on single plans),
so a reward computed batched equals the sequential one to rounding only for short or stable trainings; on one
device the batched result of a copy does not depend on the other copies in its batch when B >= 2 (tested).

No host synchronisation happens inside the loop: divergence is read once, after the last step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from pruning_env.compute import EVAL_CHUNK, TrainResult, autocast, synchronize
from pruning_env.layers import PrunableLayer


def weight_key(layer: PrunableLayer) -> str:
    """The state-dict key of a prunable layer's weight."""
    return f"{layer.name}.weight" if layer.name else "weight"


def stack_copies(
    init_state: Mapping[str, torch.Tensor], copies: int, names: Sequence[str]
) -> dict[str, torch.Tensor]:
    """``copies`` copies of each tensor of ``init_state`` named in ``names``, stacked ``(B, *shape)``."""
    return {name: init_state[name].detach().unsqueeze(0).repeat(copies, *[1] * init_state[name].dim())
            for name in names}


def train_copies(
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    init_state: Mapping[str, torch.Tensor],
    masks: Sequence[Mapping[str, torch.Tensor]],
    optimizer_of: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    scheduler_of: Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler | None],
    batches: torch.Tensor,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_eval: torch.Tensor,
    y_eval: torch.Tensor,
    precision: str = "fp32",
    second_eval: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> list[TrainResult]:
    """Train ``len(masks)`` masked copies of ``model`` from ``init_state`` together and evaluate each.

    Args:
        model: the network whose structure is run (its own weights are not read or changed).
        layers: its prunable layers; ``masks[b][layer.name]`` is copy b's bool mask of that layer.
        init_state: θ0 as a state dict (parameters and buffers).
        masks: one mask dict per copy, B >= 1.
        optimizer_of: ``params -> torch.optim.Optimizer`` (the schedule's optimizer over the stacked tensors).
        scheduler_of: ``optimizer -> LRScheduler | None``.
        batches: minibatch indices ``(steps, batch)`` into the training split, on the device.
        x_train: the training inputs, on the device.
        y_train: their labels.
        x_eval: the evaluation inputs.
        y_eval: their labels.
        precision: ``"fp32"`` or ``"bf16"`` (autocast of the forward passes).
        second_eval: another split ``(x, y)`` every copy is also evaluated on (``TrainResult.second_accuracy``).

    Returns:
        One ``TrainResult`` per copy, in order; its seconds are the batch's wall times divided by B. A diverged copy (non-finite last training loss or evaluation loss) gets accuracy 0
        and loss ``inf`` and does not disturb the others.
    """
    copies = len(masks)
    device = x_train.device
    param_names = [name for name, _ in model.named_parameters()]
    buffer_names = [name for name, _ in model.named_buffers()]
    params = stack_copies(init_state, copies, param_names)
    buffers = stack_copies(init_state, copies, buffer_names)
    masked = [params[weight_key(layer)] for layer in layers]
    float_masks = [
        torch.stack([copy_masks[layer.name] for copy_masks in masks]).to(device=device, dtype=weight.dtype)
        for layer, weight in zip(layers, masked, strict=True)
    ]
    torch._foreach_mul_(masked, float_masks)
    leaves = list(params.values())
    for leaf in leaves:
        leaf.requires_grad_(True)
    optimizer = optimizer_of(leaves)
    scheduler = scheduler_of(optimizer)

    def forward(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, (p, b), (x,))

    run = vmap(forward, in_dims=(0, 0, None), randomness="different")  # dropout: its own masks per copy
    model.train()
    synchronize(device)
    start = time.perf_counter()
    losses = torch.zeros(copies, device=device)
    with torch.enable_grad():
        for indices in batches:
            targets = y_train[indices]
            with autocast(device, precision):
                logits = run(params, buffers, x_train[indices])  # (B, batch, C)
            losses = F.cross_entropy(
                logits.float().flatten(0, 1), targets.repeat(copies), reduction="none"
            ).view(copies, -1).mean(dim=1)
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            with torch.no_grad():
                torch._foreach_mul_(masked, float_masks)
            if scheduler is not None:
                scheduler.step()
    train_finite = torch.isfinite(losses.detach()).tolist()  # the one synchronisation of the training
    train_seconds = (time.perf_counter() - start) / copies
    start = time.perf_counter()
    model.eval()
    accuracies, eval_losses = _evaluate_copies(run, params, buffers, x_eval, y_eval, device, precision)
    nans = [math.nan] * copies
    second_accuracies, second_losses = (nans, nans) if second_eval is None else _evaluate_copies(
        run, params, buffers, *second_eval, device, precision)
    model.train()
    eval_seconds = (time.perf_counter() - start) / copies
    results = []
    for b in range(copies):
        diverged = not train_finite[b] or not math.isfinite(eval_losses[b])
        accuracy, loss = (0.0, math.inf) if diverged else (accuracies[b], eval_losses[b])
        second = (second_accuracies[b], second_losses[b])
        if diverged and second_eval is not None:
            second = (0.0, math.inf)
        results.append(TrainResult(accuracy, loss, diverged, train_seconds, eval_seconds, (), *second))
    return results


@torch.no_grad()
def _evaluate_copies(
    run: Callable, params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor, device: torch.device, precision: str
) -> tuple[list[float], list[float]]:
    """Top-1 accuracy in [0, 1] and mean cross-entropy (nats) of every copy on ``(x, y)``, in eval mode."""
    copies = next(iter(params.values())).shape[0]
    correct = torch.zeros(copies, device=device)
    loss_sum = torch.zeros(copies, device=device, dtype=torch.float64)
    for start in range(0, len(x), EVAL_CHUNK):
        targets = y[start : start + EVAL_CHUNK]
        with autocast(device, precision):
            logits = run(params, buffers, x[start : start + EVAL_CHUNK]).float()  # (B, chunk, C)
        correct += (logits.argmax(dim=-1) == targets).sum(dim=1)
        loss_sum += F.cross_entropy(
            logits.flatten(0, 1), targets.repeat(copies), reduction="none"
        ).view(copies, -1).sum(dim=1).double()
    return (correct / len(x)).tolist(), (loss_sum / len(x)).tolist()
