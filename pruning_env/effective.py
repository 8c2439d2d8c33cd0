"""Effective sparsity (Vysogorets & Kempe 2021, "Connectivity matters: neural network pruning through the lens of
effective sparsity"): the fraction of prunable weights that are removed or dead.

A kept weight is *dead* when it lies on no path from the network's input to its output through kept weights: its
input unit cannot be reached from the input, or its output unit cannot reach the output. Such a weight never
changes what the network computes (beyond a constant a bias can absorb), so the network is effectively sparser
than its masks say; at high sparsity whole units, and then layers, disconnect.

Method (the literature's, as SynFlow's R): a float64 eval-mode copy of the network whose prunable weights are their
0/1 masks, whose biases are 0, whose other parameters are 1 where they are nonzero (BatchNorm scales: 1), and whose
BatchNorm statistics are reset (mean 0, variance 1). All of its activations are then non-negative, and on an
all-ones input of batch 1 a unit's activation is positive iff the input reaches it through kept weights, and the
gradient of R (the sum of the outputs) at a reachable unit is positive iff it reaches the output. The gradient of R
with respect to a weight is (input activation) x (gradient at the output unit), summed over positions, so a kept
weight is effective iff that gradient is positive. One forward and one backward pass; every prunable layer's output
and the gradient arriving at it are divided by their maximum (positive factors, which keep every zero a zero), so
deep networks neither overflow nor underflow.

Handled exactly: Linear and Conv1d/2d/3d layers (a conv weight connects input channel i to output channel o; grouped
and depthwise convs map channels by group, as their weight's gradient does), ReLU-like activations (0 -> 0,
positive -> positive), sums (residual connections), concatenation, reshapes, average pooling, BatchNorm with running
statistics, dropout (eval mode), layers the forward pass never calls (all their weights are dead).

Approximated:
- a conv connection is live at the channel level: every kept kernel entry of a live (input channel, output channel)
  pair counts as effective, even one that only ever meets padding;
- max pooling sends the gradient to one position per window (the ones input makes many ties), so the flow through
  one kernel entry depends on that pick; the channel-level rule above makes the count independent of it;
- normalizations that use the sample's own statistics (LayerNorm, GroupNorm, LocalResponseNorm, and any norm
  without running statistics) are replaced by identity: their mixing of units through the statistics is ignored;
- activations with f(0) != 0 (sigmoid) make unreachable units look reachable: the count is then a lower bound.

The network's output must be its class scores before any softmax (every ``pruning_env`` model's is): the sum of a
softmax is constant and would make every weight look dead.

    probe = ConnectivityProbe(model, list(masks), input_shape=(1, 28, 28))
    probe.effective_sparsity(masks)     # >= the masks' own sparsity
    effective_sparsity(model, masks, (1, 28, 28))   # the same, building the probe once
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase

SAMPLE_NORMALIZATIONS: tuple[type[nn.Module], ...] = (nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)
"""Normalizations by the sample's own statistics, replaced by identity in the probe."""
_TINY = torch.finfo(torch.float64).tiny


class ConnectivityProbe:
    """A float64 copy of a network with neutral parameters, on which the effective weights of any masks are one
    forward and one backward pass on one all-ones sample. Build once per network; call for every set of masks.

    Args:
        model: the network; it is not changed. Its non-prunable parameters count as connections where nonzero.
        names: the prunable layers' module names in ``model`` (the keys of the masks), each with a ``weight``.
        input_shape: one sample's shape, e.g. ``(1, 28, 28)``.
    """

    def __init__(self, model: nn.Module, names: Sequence[str], input_shape: Sequence[int]) -> None:
        self.network = neutral_copy(model, names)
        self.names = list(names)
        self.weights = {name: self.network.get_submodule(name).weight for name in self.names}
        for name in self.names:
            self.network.get_submodule(name).register_forward_hook(_peak_normalized)
        device = next(iter(self.weights.values())).device
        self.ones = torch.ones((1, *input_shape), dtype=torch.float64, device=device)

    def effective_masks(self, masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Layer name -> bool ``(*weight_shape)``: True where the weight is kept AND on an input-output path.

        Raises:
            ValueError: if ``masks`` does not name exactly the probe's layers, or a mask is not shaped like its weight.
        """
        return {name: mask.to(live.device, torch.bool) & live for name, mask, live in self._live_pairs(masks)}

    def effective_sparsity(self, masks: Mapping[str, Tensor]) -> float:
        """Fraction in [0, 1] of all prunable weights that are removed or dead (>= the masks' own sparsity)."""
        kept, total = 0, 0
        for _, mask, live in self._live_pairs(masks):
            kept += int(torch.count_nonzero(mask.to(live.device, torch.bool) & live))
            total += mask.numel()
        return 1.0 - kept / total

    def _live_pairs(self, masks: Mapping[str, Tensor]) -> list[tuple[str, Tensor, Tensor]]:
        """Per layer, in the probe's order: its name, its mask, and bool shaped like its weight ``(out, in /
        groups, *kernel)``: True for every entry of an (output, input) channel pair whose flow, summed over its
        kernel, is positive (one forward and one backward pass)."""
        if set(masks) != set(self.names):
            raise ValueError(f"masks must name the probe's layers {self.names}, got {sorted(masks)}")
        with torch.no_grad():
            for name, weight in self.weights.items():
                if masks[name].shape != weight.shape:
                    raise ValueError(f"mask {name!r} must have shape {tuple(weight.shape)}, got {tuple(masks[name].shape)}")
                weight.copy_(masks[name])
        with torch.enable_grad():
            flow = self.network(self.ones).sum()
            grads = torch.autograd.grad(flow, list(self.weights.values()), materialize_grads=True)
        return [(name, masks[name], _live_channel_pairs(grad)) for name, grad in zip(self.names, grads, strict=True)]


def effective_sparsity(model: nn.Module, masks: Mapping[str, Tensor], input_shape: Sequence[int]) -> float:
    """Fraction of the prunable weights of ``model`` that ``masks`` (layer name -> bool, True = kept) remove or
    leave dead; ``input_shape`` is one sample's. Builds a ``ConnectivityProbe``: keep one to score many masks."""
    return ConnectivityProbe(model, list(masks), input_shape).effective_sparsity(masks)


def neutral_copy(model: nn.Module, names: Sequence[str]) -> nn.Module:
    """A float64 eval-mode copy of ``model`` whose parameters carry only connectivity: the weights of the modules
    ``names`` ready to take 0/1 masks (requiring grad), biases 0, every other parameter 1 where it is nonzero and 0
    elsewhere, running statistics reset (mean 0, variance 1), sample normalizations replaced by identity."""
    network = copy.deepcopy(model).double().eval()
    prunable = [network.get_submodule(name).weight for name in names]
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            if name.rsplit(".", 1)[-1] == "bias":
                parameter.zero_()
            elif not any(parameter is weight for weight in prunable):
                parameter.copy_(parameter != 0)
    for name, module in list(network.named_modules()):
        if isinstance(module, _NormBase) and module.track_running_stats:
            module.reset_running_stats()
        elif isinstance(module, SAMPLE_NORMALIZATIONS + (_NormBase,)):
            parent, _, child = name.rpartition(".")
            setattr(network.get_submodule(parent), child, nn.Identity())
    for weight in prunable:
        weight.requires_grad_(True)
    return network


def _peak_normalized(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
    """Forward hook: the (non-negative) output divided by its maximum, its incoming gradient likewise."""
    scaled = output / output.detach().max().clamp_min(_TINY)
    if scaled.requires_grad:
        scaled.register_hook(lambda grad: grad / grad.max().clamp_min(_TINY))
    return scaled


def _live_channel_pairs(grad: Tensor) -> Tensor:
    """Bool, shaped like ``grad`` ``(out, in / groups, *kernel)``: True for every entry of an (output, input)
    channel pair whose flow, summed over its kernel, is positive."""
    pairs = grad.reshape(grad.shape[0], grad.shape[1], -1).sum(dim=2) > 0
    return pairs.view(*pairs.shape, *([1] * (grad.ndim - 2))).expand_as(grad)
