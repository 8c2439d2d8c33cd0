"""Layer-wise sparsity allocations of the pruning literature, as pure functions.

Each allocation takes the prunable layers (forward order), a global target sparsity and a budget
(``budget.BUDGETS``) and returns a float64 array of per-layer sparsities whose pruned counts
``sparsity * num_weights`` are integers meeting the budget: summing to exactly ``budget.target_count(N, target)``
under ``"weights"``; under ``"flops"`` pruning MACs within ``budget.cost_tolerance`` of
``target_count(total MACs, target)``. The continuous allocations (uniform, ER, ERK) are rounded to counts by
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

Under ``budget="flops"`` the same allocations are compute-aware: uniform prunes the target fraction of every
layer's MACs (the same sparsity everywhere); ER and ERK keep their density shapes with ``eps`` solved so that the
kept MACs total ``(1 - target) x`` the total MACs; a global ranking ranks each weight's score per MAC (score /
MACs per weight of its layer, ``scores_per_cost``) and prunes the lowest until the pruned MACs are closest to the
target count: the greedy knapsack that gives up the least score per MAC saved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from pruning_env.budget import (
    Budget,
    check_target_sparsity,
    counts_to_sparsities,
    project_to_budget,
    target_count,
    weight_costs,
)
from pruning_env.layers import PrunableLayer, layer_weights
from pruning_env.masking import importance_order
from pruning_env.scorers import compute_scores, lamp_scores


class Allocation(Protocol):
    """An allocation: per-layer sparsities ``(L,)`` of ``layers`` at a global target under a budget."""

    def __call__(
        self, layers: Sequence[PrunableLayer], target_sparsity: float, budget: Budget = "weights"
    ) -> np.ndarray: ...


def _sizes(layers: Sequence[PrunableLayer]) -> np.ndarray:
    return np.array([layer.num_weights for layer in layers], dtype=np.int64)


def layer_costs(layers: Sequence[PrunableLayer], budget: Budget) -> np.ndarray:
    """Each layer's total cost ``(L,)`` int64 under ``budget``: its weights, or its MACs per sample."""
    costs = weight_costs(layers, budget)
    return _sizes(layers) if costs is None else _sizes(layers) * costs


def _rounded(
    requested: np.ndarray, layers: Sequence[PrunableLayer], target_sparsity: float, budget: Budget
) -> np.ndarray:
    """Continuous per-layer sparsities -> sparsities of integer counts meeting the budget."""
    sizes = _sizes(layers)
    counts = project_to_budget(requested, sizes, target_sparsity, costs=weight_costs(layers, budget))
    return counts_to_sparsities(counts, sizes)


def uniform(layers: Sequence[PrunableLayer], target_sparsity: float, budget: Budget = "weights") -> np.ndarray:
    """The same sparsity in every layer (under the weight budget up to integer rounding:
    ``|s_l - target| < 1 / n_l``); under ``"flops"`` every layer loses the target fraction of its MACs."""
    requested = np.full(len(layers), check_target_sparsity(target_sparsity))
    return _rounded(requested, layers, target_sparsity, budget)


def erk_densities(raw: np.ndarray, sizes: np.ndarray, target_sparsity: float) -> np.ndarray:
    """Continuous densities ``min(1, eps * raw_l)`` that keep ``(1 - target) * sum(sizes)`` of the cost.

    RigL's loop: solve ``eps`` over the non-dense layers, make the layers with the largest ``raw`` dense while
    their density would exceed 1, re-solve. ``raw`` is the per-layer density shape factor (ER or ERK); ``sizes``
    is each layer's cost: its weights (RigL), or its MACs for a FLOPs budget (``layer_costs``).
    """
    dense = np.zeros(len(sizes), dtype=bool)
    kept = (1.0 - check_target_sparsity(target_sparsity)) * float(sizes.sum())
    while not dense.all():
        eps = (kept - sizes[dense].sum()) / float((raw[~dense] * sizes[~dense]).sum())
        if eps * raw[~dense].max() <= 1.0:
            return np.where(dense, 1.0, eps * raw)
        dense |= ~dense & (raw == raw[~dense].max())
    return np.ones(len(sizes))


def erdos_renyi(
    layers: Sequence[PrunableLayer], target_sparsity: float, budget: Budget = "weights"
) -> np.ndarray:
    """ER: density proportional to ``(d0 + d1) / (d0 * d1)`` with ``(d0, d1)`` the weight's first two dims
    (output and input channels; the kernel is ignored)."""
    raw = np.array([(s[0] + s[1]) / (s[0] * s[1]) for s in (layer.weight_shape for layer in layers)])
    return _shaped(raw, layers, target_sparsity, budget)


def erdos_renyi_kernel(
    layers: Sequence[PrunableLayer], target_sparsity: float, budget: Budget = "weights"
) -> np.ndarray:
    """ERK: density proportional to ``sum(shape) / prod(shape)`` over all weight dims (kernel included)."""
    raw = np.array([sum(layer.weight_shape) / layer.num_weights for layer in layers])
    return _shaped(raw, layers, target_sparsity, budget)


def _shaped(raw: np.ndarray, layers: Sequence[PrunableLayer], target_sparsity: float, budget: Budget) -> np.ndarray:
    """Sparsities of the densities ``min(1, eps * raw_l)`` that keep ``1 - target`` of the budget's cost."""
    densities = erk_densities(raw, layer_costs(layers, budget), target_sparsity)
    return _rounded(1.0 - densities, layers, target_sparsity, budget)


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


def scores_per_cost(scores: Mapping[str, Tensor], costs: np.ndarray | None) -> dict[str, Tensor]:
    """Each layer's scores over the cost of one of its weights (``costs`` ``(L,)`` in mapping order; None: the
    scores themselves). A layer of cost 0 gets +inf: pruning it saves nothing, so it ranks above every weight."""
    if costs is None:
        return dict(scores)
    return {
        name: layer_scores.double() / float(cost) if cost > 0 else torch.full_like(layer_scores, torch.inf)
        for (name, layer_scores), cost in zip(scores.items(), costs, strict=True)
    }


def ranking_counts(
    ranking: Tensor, num_layers: int, target_count: int, costs: np.ndarray | None = None
) -> list[int]:
    """Pruned weights per layer when the least important weights of ``global_ranking`` go: the last
    ``target_count`` of them, or, with per-weight ``costs`` ``(L,)``, the shortest tail whose total cost is
    closest to ``target_count`` (on a tie the one that reaches it), so within ``max(costs) / 2`` of it.

    Raises:
        ValueError: if ``target_count`` is not in [0, total weights] (with costs: [0, total cost]).
    """
    if costs is None:
        total, length = ranking.numel(), target_count
    else:
        # tail[m - 1]: the cost of the last m weights of the ranking
        tail = torch.as_tensor(costs, dtype=torch.int64, device=ranking.device)[ranking.flip(0).long()].cumsum(0)
        total = int(tail[-1])
    if not 0 <= target_count <= total:
        raise ValueError(f"target_count must be in [0, {total}], got {target_count}")
    if costs is not None:
        length = _closest_tail(tail, target_count)
    pruned = ranking[ranking.numel() - length :].long()
    return torch.bincount(pruned, minlength=num_layers).tolist()


def _closest_tail(tail: Tensor, target_count: int) -> int:
    """The length m whose cost ``tail[m - 1]`` (0 for m = 0) is closest to ``target_count`` in
    [0, tail[-1]], the shortest that reaches it on a tie."""
    if target_count == 0:
        return 0
    reach = int(torch.searchsorted(tail, torch.tensor([target_count], device=tail.device))[0])  # tail[reach] >= k
    below = int(tail[reach - 1]) if reach > 0 else 0
    return reach + 1 if int(tail[reach]) - target_count <= target_count - below else reach


def global_topk_counts(
    scores: Mapping[str, Tensor], target_count: int, costs: np.ndarray | None = None
) -> dict[str, int]:
    """Pruned weights per layer when the ``target_count`` lowest scores over ALL layers are pruned; with
    per-weight ``costs`` ``(L,)`` (in mapping order), the lowest scores per cost until the pruned cost is closest
    to ``target_count`` (``ranking_counts``).

    Ties as in ``global_ranking``: the later weight is pruned first, so ``masking.topk_masks`` with these counts
    gives exactly the global selection (dividing a layer's scores by one cost keeps their order).

    Raises:
        ValueError: if ``target_count`` is not in [0, total weights] (with costs: [0, total cost]) or a score is
            NaN.
    """
    counts = ranking_counts(global_ranking(scores_per_cost(scores, costs)), len(scores), target_count, costs)
    return dict(zip(scores, counts, strict=True))


def global_score(
    scores: Mapping[str, Tensor], layers: Sequence[PrunableLayer], target_sparsity: float, budget: Budget = "weights"
) -> np.ndarray:
    """Sparsities a global top-k on ``scores`` (higher = kept) gives each layer at ``target_sparsity``; under
    ``budget="flops"`` a global ranking of score per MAC, pruned until the pruned MACs meet the target.

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
    ordered = {layer.name: scores[layer.name] for layer in layers}
    goal = target_count(int(layer_costs(layers, budget).sum()), target_sparsity)
    counts = global_topk_counts(ordered, goal, weight_costs(layers, budget))
    return counts_to_sparsities(list(counts.values()), _sizes(layers))


def lamp(layers: Sequence[PrunableLayer], target_sparsity: float, budget: Budget = "weights") -> np.ndarray:
    """LAMP: global top-k of ``scorers.lamp_scores`` of the layers' current weights (per MAC under "flops")."""
    return global_score(lamp_scores(layer_weights(layers)), layers, target_sparsity, budget)


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
    budget: Budget = "weights",
    **options: object,
) -> np.ndarray:
    """``global_score`` of the scorer ``scorer`` (e.g. "snip", "synflow") run on ``model`` with ``batch``.

    ``options`` go to ``pruning_env.scorers.compute_scores`` (e.g. ``generator``).
    """
    scores = compute_scores(scorer, model, layers, batch, **options)
    return global_score(scores, layers, target_sparsity, budget)
