"""Masks from scores, applied in place and kept through training, exported to ``torch.nn.utils.prune``.

Masks are ``dict[str, Tensor]`` keyed by layer name, dtype bool, shaped like the weight, True = weight kept.
Within a layer the kept weights are the highest-scoring ones; among equal scores the lower flat index (row-major
position in the weight) is kept first. ``importance_order`` is that ranking, and the global rankings in
``pruning_env.allocation`` use it too, so a global selection and the per-layer masks built from its counts agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import prune

from pruning_env.layers import PrunableLayer, layer_weights


def importance_order(scores: Tensor) -> Tensor:
    """Flat indices of ``scores`` from most to least important (highest score first, ties: lower index first).

    Raises:
        ValueError: if a score is NaN.
    """
    flat = scores.flatten()
    if torch.isnan(flat).any():
        raise ValueError("scores must not contain NaN")
    return torch.sort(flat, descending=True, stable=True).indices


def importance_orders(scores: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``importance_order`` of every layer's scores: rank once, then cut masks at any count with ``masks_from_orders``."""
    return {name: importance_order(layer_scores) for name, layer_scores in scores.items()}


def masks_from_orders(
    orders: Mapping[str, Tensor], shapes: Mapping[str, tuple[int, ...]], pruned_counts: Mapping[str, int]
) -> dict[str, Tensor]:
    """Per-layer top-k masks from importance orders: layer ``name`` keeps the first ``numel - k`` of its order.

    Args:
        orders: layer name -> flat indices from most to least important (``importance_order``).
        shapes: layer name -> weight shape of the mask.
        pruned_counts: layer name -> weights to prune in that layer, in [0, numel]; same names as ``orders``.

    Returns:
        layer name -> bool mask on the order's device, exactly ``numel - k`` True values (k = numel empties it).

    Raises:
        ValueError: if the names differ or a count is out of range.
    """
    if set(orders) != set(pruned_counts):
        raise ValueError(
            f"scores and pruned_counts must name the same layers; only in scores: {sorted(set(orders) - set(pruned_counts))}, "
            f"only in pruned_counts: {sorted(set(pruned_counts) - set(orders))}"
        )
    masks = {}
    for name, order in orders.items():
        k, n = int(pruned_counts[name]), order.numel()
        if not 0 <= k <= n:
            raise ValueError(f"pruned_counts[{name!r}] must be in [0, {n}], got {k}")
        mask = torch.zeros(n, dtype=torch.bool, device=order.device)
        mask[order[: n - k]] = True
        masks[name] = mask.view(shapes[name])
    return masks


def topk_masks(scores: Mapping[str, Tensor], pruned_counts: Mapping[str, int]) -> dict[str, Tensor]:
    """Per-layer top-k masks: layer ``name`` keeps its ``numel - pruned_counts[name]`` highest-scoring weights.

    Args:
        scores: layer name -> scores shaped like the weight (higher = kept first).
        pruned_counts: layer name -> weights to prune in that layer, in [0, numel]; same names as ``scores``.

    Returns:
        layer name -> bool mask on the scores' device, exactly ``numel - k`` True values.

    Raises:
        ValueError: if the names differ, a count is out of range, or a score is NaN.
    """
    shapes = {name: tuple(layer_scores.shape) for name, layer_scores in scores.items()}
    return masks_from_orders(importance_orders(scores), shapes, pruned_counts)


class MaskedWeights:
    """Weights held at zero where their masks are False, for training a pruned net in place.

    Call ``reapply()`` once after pruning and after every optimizer step: it multiplies all weights by their
    float masks with one ``torch._foreach_mul_`` (the reward's hot loop). Pruned weights are then exactly 0
    (``-0.0`` for negative originals, which compares equal).
    """

    def __init__(self, weights: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> None:
        """Args:
        weights: layer name -> live weight tensor (e.g. ``layer_weights(layers)``); changed only by ``reapply``.
        masks: layer name -> bool mask of the same shape; same names as ``weights``.

        Raises:
            ValueError: if the names differ, or a mask is not bool or not shaped like its weight.
        """
        if set(weights) != set(masks):
            raise ValueError(
                f"weights and masks must name the same layers; only in weights: {sorted(set(weights) - set(masks))}, "
                f"only in masks: {sorted(set(masks) - set(weights))}"
            )
        for name, weight in weights.items():
            if masks[name].dtype != torch.bool or masks[name].shape != weight.shape:
                raise ValueError(
                    f"mask {name!r} must be bool with the weight's shape {tuple(weight.shape)}, "
                    f"got {masks[name].dtype} {tuple(masks[name].shape)}"
                )
        self.names = list(weights)
        self.weights = [weights[name] for name in self.names]
        self.float_masks = [
            masks[name].to(device=w.device, dtype=w.dtype)
            for name, w in zip(self.names, self.weights, strict=True)
        ]

    @classmethod
    def from_layers(cls, layers: Sequence[PrunableLayer], masks: Mapping[str, Tensor]) -> MaskedWeights:
        """Masks over the live weights of ``layers`` (keyed by layer name)."""
        return cls(layer_weights(list(layers)), masks)

    def reapply(self) -> None:
        """Zero every pruned weight in place (no autograd record)."""
        with torch.no_grad():
            torch._foreach_mul_(self.weights, self.float_masks)


def apply_masks(weights: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> MaskedWeights:
    """Zero the pruned weights in place now; returns the ``MaskedWeights`` to ``reapply()`` after each step."""
    masked = MaskedWeights(weights, masks)
    masked.reapply()
    return masked


def export_masks(
    model: nn.Module, layers: Sequence[PrunableLayer], masks: Mapping[str, Tensor]
) -> list[tuple[nn.Module, str, Tensor]]:
    """``(module, "weight", mask)`` triples for ``torch.nn.utils.prune.custom_from_mask``.

    Modules are found in ``model`` by layer name, so ``model`` may be a copy of the one ``layers`` came from.
    Masks are float (1 = kept) with the weight's dtype and device, as ``torch.nn.utils.prune`` stores them.
    """
    missing = [layer.name for layer in layers if layer.name not in masks]
    if missing:
        raise ValueError(f"masks has no entry for layers {missing}")
    exported = []
    for layer in layers:
        module = model.get_submodule(layer.name)
        exported.append(
            (module, "weight", masks[layer.name].to(device=module.weight.device, dtype=module.weight.dtype))
        )
    return exported


def prune_with_torch(exported: Sequence[tuple[nn.Module, str, Tensor]]) -> None:
    """Apply ``export_masks`` output with ``torch.nn.utils.prune.custom_from_mask`` (adds ``weight_orig`` and
    ``weight_mask`` and a forward pre-hook to each module; ``prune.remove`` makes it permanent)."""
    for module, name, mask in exported:
        prune.custom_from_mask(module, name, mask)
