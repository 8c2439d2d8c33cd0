"""Layer-wise sparsity allocations of the pruning literature, as pure functions.

Each allocation takes the prunable layers (forward order) and a global target sparsity and returns a float64
array of per-layer sparsities whose pruned counts ``sparsity * num_weights`` are integers summing to exactly
``budget.target_count(N, target)``. The continuous allocations (uniform, ER, ERK) are rounded to counts by
``budget.project_to_budget`` (every layer keeps at least one weight); the global rankings (LAMP, any scorer)
count what a global top-k keeps in each layer and, as in the literature, may empty a layer.

| name    | per-layer density                                                                              |
|---------|------------------------------------------------------------------------------------------------|
| uniform | ``1 - target`` in every layer                                                                  |
| er      | Erdős-Rényi (Mocanu et al. 2018): ``eps * (d0 + d1) / (d0 * d1)`` over the first two weight dims |
| erk     | ERK (Evci et al. 2020, RigL): ``eps * sum(shape) / prod(shape)`` over all weight dims          |
| lamp    | global top-k of LAMP scores (Lee et al. 2021)                                                  |

For ER and ERK, ``eps`` is solved so that the kept weights total ``(1 - target) * N``; a layer whose density
would exceed 1 is made dense and ``eps`` re-solved, as RigL's ``sparse_utils.get_sparsities`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from pruning_env.budget import check_target_sparsity, counts_to_sparsities, project_to_budget, target_count
from pruning_env.layers import PrunableLayer, layer_weights
from pruning_env.masking import importance_order
from pruning_env.scorers import compute_scores, lamp_scores

Allocation = Callable[[Sequence[PrunableLayer], float], np.ndarray]


def _sizes(layers: Sequence[PrunableLayer]) -> np.ndarray:
    return np.array([layer.num_weights for layer in layers], dtype=np.int64)


def _rounded(requested: np.ndarray, layers: Sequence[PrunableLayer], target_sparsity: float) -> np.ndarray:
    """Continuous per-layer sparsities -> sparsities of integer counts meeting the budget exactly."""
    sizes = _sizes(layers)
    return counts_to_sparsities(project_to_budget(requested, sizes, target_sparsity), sizes)


def uniform(layers: Sequence[PrunableLayer], target_sparsity: float) -> np.ndarray:
    """The same sparsity in every layer (up to integer rounding: ``|s_l - target| < 1 / n_l``)."""
    return _rounded(np.full(len(layers), check_target_sparsity(target_sparsity)), layers, target_sparsity)


def erk_densities(raw: np.ndarray, sizes: np.ndarray, target_sparsity: float) -> np.ndarray:
    """Continuous densities ``min(1, eps * raw_l)`` that keep ``(1 - target) * sum(sizes)`` weights.

    RigL's loop: solve ``eps`` over the non-dense layers, make the layers with the largest ``raw`` dense while
    their density would exceed 1, re-solve. ``raw`` is the per-layer density shape factor (ER or ERK).
    """
    dense = np.zeros(len(sizes), dtype=bool)
    kept = (1.0 - check_target_sparsity(target_sparsity)) * float(sizes.sum())
    while not dense.all():
        eps = (kept - sizes[dense].sum()) / float((raw[~dense] * sizes[~dense]).sum())
        if eps * raw[~dense].max() <= 1.0:
            return np.where(dense, 1.0, eps * raw)
        dense |= ~dense & (raw == raw[~dense].max())
    return np.ones(len(sizes))


def erdos_renyi(layers: Sequence[PrunableLayer], target_sparsity: float) -> np.ndarray:
    """ER: density proportional to ``(d0 + d1) / (d0 * d1)`` with ``(d0, d1)`` the weight's first two dims
    (output and input channels; the kernel is ignored)."""
    raw = np.array([(s[0] + s[1]) / (s[0] * s[1]) for s in (layer.weight_shape for layer in layers)])
    return _rounded(1.0 - erk_densities(raw, _sizes(layers), target_sparsity), layers, target_sparsity)


def erdos_renyi_kernel(layers: Sequence[PrunableLayer], target_sparsity: float) -> np.ndarray:
    """ERK: density proportional to ``sum(shape) / prod(shape)`` over all weight dims (kernel included)."""
    raw = np.array([sum(layer.weight_shape) / layer.num_weights for layer in layers])
    return _rounded(1.0 - erk_densities(raw, _sizes(layers), target_sparsity), layers, target_sparsity)


def global_ranking(scores: Mapping[str, Tensor]) -> Tensor:
    """Position (in mapping order) of the layer of every weight, from most to least important over ALL layers.

    Ties: the weight that comes earlier in the concatenation (layers in mapping order, each flattened row-major)
    ranks higher. Returns int16 of shape (total weights,) when there are fewer than 2**15 layers, else int64.

    Raises:
        ValueError: if a score is NaN.
    """
    sizes = [layer_scores.numel() for layer_scores in scores.values()]
    flat = torch.cat([layer_scores.detach().flatten().double() for layer_scores in scores.values()])
    dtype = torch.int16 if len(sizes) < 2**15 else torch.int64
    layer_of = torch.repeat_interleave(
        torch.arange(len(sizes), device=flat.device, dtype=dtype), torch.tensor(sizes, device=flat.device)
    )
    return layer_of[importance_order(flat)]


def ranking_counts(ranking: Tensor, num_layers: int, target_count: int) -> list[int]:
    """Pruned weights per layer when the ``target_count`` least important weights of ``global_ranking`` go."""
    if not 0 <= target_count <= ranking.numel():
        raise ValueError(f"target_count must be in [0, {ranking.numel()}], got {target_count}")
    pruned = ranking[ranking.numel() - target_count :].long()
    return torch.bincount(pruned, minlength=num_layers).tolist()


def global_topk_counts(scores: Mapping[str, Tensor], target_count: int) -> dict[str, int]:
    """Pruned weights per layer when the ``target_count`` lowest scores over ALL layers are pruned.

    Ties as in ``global_ranking``: the later weight is pruned first, so ``masking.topk_masks`` with these counts
    gives exactly the global selection.

    Raises:
        ValueError: if ``target_count`` is not in [0, total weights] or a score is NaN.
    """
    total = sum(layer_scores.numel() for layer_scores in scores.values())
    if not 0 <= target_count <= total:
        raise ValueError(f"target_count must be in [0, {total}], got {target_count}")
    counts = ranking_counts(global_ranking(scores), len(scores), target_count)
    return dict(zip(scores, counts, strict=True))


def global_score(
    scores: Mapping[str, Tensor], layers: Sequence[PrunableLayer], target_sparsity: float
) -> np.ndarray:
    """Sparsities a global top-k on ``scores`` (higher = kept) gives each layer at ``target_sparsity``.

    The literature's behaviour is kept: a layer whose scores are all low may be emptied (sparsity 1).

    Raises:
        ValueError: if a layer has no score or a score's shape differs from its weight's.
    """
    for layer in layers:
        if layer.name not in scores or tuple(scores[layer.name].shape) != layer.weight_shape:
            found = tuple(scores[layer.name].shape) if layer.name in scores else "none"
            raise ValueError(
                f"scores[{layer.name!r}] must have the weight's shape {layer.weight_shape}, got {found}"
            )
    sizes = _sizes(layers)
    ordered = {layer.name: scores[layer.name] for layer in layers}
    counts = global_topk_counts(ordered, target_count(int(sizes.sum()), target_sparsity))
    return counts_to_sparsities(list(counts.values()), sizes)


def lamp(layers: Sequence[PrunableLayer], target_sparsity: float) -> np.ndarray:
    """LAMP: global top-k of ``scorers.lamp_scores`` of the layers' current weights."""
    return global_score(lamp_scores(layer_weights(layers)), layers, target_sparsity)


ALLOCATIONS: dict[str, Allocation] = {
    "uniform": uniform,
    "er": erdos_renyi,
    "erk": erdos_renyi_kernel,
    "lamp": lamp,
}


def get_allocation(name: str) -> Allocation:
    """The allocation registered under ``name``.

    Raises:
        ValueError: if ``name`` is not registered; the message lists the known names.
    """
    if name not in ALLOCATIONS:
        raise ValueError(f"unknown allocation {name!r}; known allocations: {', '.join(ALLOCATIONS)}")
    return ALLOCATIONS[name]


def global_score_allocation(
    scorer: str,
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    batch: tuple[Tensor, Tensor],
    target_sparsity: float,
    **options: object,
) -> np.ndarray:
    """``global_score`` of the scorer ``scorer`` (e.g. "snip", "synflow") run on ``model`` with ``batch``.

    ``options`` go to ``pruning_env.scorers.compute_scores`` (e.g. ``generator``).
    """
    return global_score(compute_scores(scorer, model, layers, batch, **options), layers, target_sparsity)
