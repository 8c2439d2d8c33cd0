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

The steps themselves are the sequential trainer's (``pruning_env.compute.train_steps``); only the forward pass, the
loss of B copies and the mask hold differ. No host synchronisation happens inside the loop (except the accuracy
read-outs of ``eval_at``): divergence is read once, after the last step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from pruning_env.compute import EVAL_CHUNK, TrainResult, autocast, train_result, train_steps
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
    eval_at: Sequence[int] = (),
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
        eval_at: steps (1..steps) after which every copy's accuracy on ``(x_eval, y_eval)`` is also read
            (``TrainResult.accuracy_at``); those evaluations change nothing in the training.

    Returns:
        One ``TrainResult`` per copy, in order; its seconds are the batch's wall times divided by B. A diverged copy
        (non-finite last training loss or evaluation loss) gets accuracy 0 and loss ``inf`` and does not disturb the
        others.
    """
    copies = len(masks)
    device = x_train.device
    params, buffers, masked, float_masks = masked_copies(model, layers, init_state, masks)
    leaves = list(params.values())
    for leaf in leaves:
        leaf.requires_grad_(True)
    optimizer = optimizer_of(leaves)
    scheduler = scheduler_of(optimizer)
    run = vmapped(model)

    def losses_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with autocast(device, precision):
            logits = run(params, buffers, x)  # (B, batch, C)
        return F.cross_entropy(
            logits.float().flatten(0, 1), y.repeat(copies), reduction="none"
        ).view(copies, -1).mean(dim=1)

    def hold_masks() -> None:
        with torch.no_grad():
            torch._foreach_mul_(masked, float_masks)

    def evaluate_copies(x: torch.Tensor, y: torch.Tensor) -> tuple[list[float], list[float]]:
        return _evaluate_copies(model, run, params, buffers, x, y, precision)

    model.train()
    steps = train_steps(losses_of, hold_masks, lambda: evaluate_copies(x_eval, y_eval)[0], optimizer, scheduler,
                        batches, x_train, y_train, eval_at)
    start = time.perf_counter()
    accuracies, eval_losses = evaluate_copies(x_eval, y_eval)
    second = None if second_eval is None else list(zip(*evaluate_copies(*second_eval), strict=True))
    eval_seconds = (time.perf_counter() - start) / copies
    return [
        train_result(steps.finite[b], (accuracies[b], eval_losses[b]), None if second is None else second[b],
                     steps.seconds / copies, eval_seconds, steps.accuracy_at[b])
        for b in range(copies)
    ]


def evaluate_copies(
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    init_state: Mapping[str, torch.Tensor],
    masks: Sequence[Mapping[str, torch.Tensor]],
    x_eval: torch.Tensor,
    y_eval: torch.Tensor,
    precision: str = "fp32",
    second_eval: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> list[TrainResult]:
    """``len(masks)`` masked copies of ``model`` at ``init_state`` read on ``(x_eval, y_eval)`` (and
    ``second_eval``) with no training, in one batched forward pass per chunk: the zero-step reward of many plans
    (arguments as ``train_copies``'). One ``TrainResult`` per copy, in order, ``train_seconds`` 0; a non-finite
    evaluation loss makes a copy diverged. Equal to reading each copy alone up to float32 rounding."""
    params, buffers, _, _ = masked_copies(model, layers, init_state, masks)
    run = vmapped(model)
    start = time.perf_counter()
    accuracies, losses = _evaluate_copies(model, run, params, buffers, x_eval, y_eval, precision)
    second = None if second_eval is None else list(zip(*_evaluate_copies(model, run, params, buffers, *second_eval,
                                                                          precision), strict=True))
    seconds = (time.perf_counter() - start) / len(masks)
    return [train_result(True, (accuracies[b], losses[b]), None if second is None else second[b], 0.0, seconds)
            for b in range(len(masks))]


def masked_copies(
    model: nn.Module, layers: Sequence[PrunableLayer], init_state: Mapping[str, torch.Tensor],
    masks: Sequence[Mapping[str, torch.Tensor]],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """The copies' stacked parameters and buffers ``(B, *shape)`` (``init_state`` with each copy's masks applied),
    the stacked prunable weights and their float masks (for holding the masks after each step)."""
    params = stack_copies(init_state, len(masks), [name for name, _ in model.named_parameters()])
    buffers = stack_copies(init_state, len(masks), [name for name, _ in model.named_buffers()])
    masked = [params[weight_key(layer)] for layer in layers]
    float_masks = [
        torch.stack([copy_masks[layer.name] for copy_masks in masks]).to(device=weight.device, dtype=weight.dtype)
        for layer, weight in zip(layers, masked, strict=True)
    ]
    torch._foreach_mul_(masked, float_masks)
    return params, buffers, masked, float_masks


def vmapped(model: nn.Module) -> Callable:
    """``model`` as a function of stacked parameters and buffers over one shared input: ``run(params, buffers, x)``
    gives ``(B, batch, classes)``."""

    def forward(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, (p, b), (x,))

    return vmap(forward, in_dims=(0, 0, None), randomness="different")  # dropout: its own masks per copy


@torch.no_grad()
def _evaluate_copies(
    model: nn.Module, run: Callable, params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor, precision: str
) -> tuple[list[float], list[float]]:
    """Top-1 accuracy in [0, 1] and mean cross-entropy (nats) of every copy on ``(x, y)``, with ``model`` (the
    structure ``run`` calls) in eval mode, then back in train mode."""
    copies = next(iter(params.values())).shape[0]
    model.eval()
    correct = torch.zeros(copies, device=x.device)
    loss_sum = torch.zeros(copies, device=x.device, dtype=torch.float64)
    for start in range(0, len(x), EVAL_CHUNK):
        targets = y[start : start + EVAL_CHUNK]
        with autocast(x.device, precision):
            logits = run(params, buffers, x[start : start + EVAL_CHUNK]).float()  # (B, chunk, C)
        correct += (logits.argmax(dim=-1) == targets).sum(dim=1)
        loss_sum += F.cross_entropy(
            logits.flatten(0, 1), targets.repeat(copies), reduction="none"
        ).view(copies, -1).sum(dim=1).double()
    model.train()
    return [count / len(x) for count in correct.tolist()], (loss_sum / len(x)).tolist()  # as ``evaluate`` divides
