"""Budget projection: requested per-layer sparsities -> pruned counts that meet a global target.

A controller asks for a sparsity per layer; the environment prunes a global fraction of a cost. Every weight of
layer l costs ``w_l`` (``costs``), and a budget is met when the pruned cost ``sum_l w_l c_l`` equals
``K = target_count(W, target)`` of the total cost ``W = sum_l w_l n_l``. Two budgets (``BUDGETS``):

- ``"weights"``: ``w_l = 1``, the target is the fraction of the N prunable weights removed (K = pruned weights);
- ``"flops"``: ``w_l`` = the layer's multiply-accumulates per sample per weight (``layer.flops / n_l``, an integer:
  a weight is used once per output position), the target is the fraction of the prunable layers' MACs per sample
  removed. With unstructured masks a layer's MACs are proportional to its kept weights.

``project_to_budget`` maps the request to integer pruned counts per layer such that

- the pruned cost is within ``max_l w_l / 2`` of K (``cost_tolerance``): under the weight budget it equals K, to
  the weight; under a FLOPs budget it misses K by at most half the MACs of one weight of the most expensive
  layer, since whole weights of unequal cost cannot reach every total;
- every layer stays within its bounds ``[n_l - max_kept_l, n_l - min_kept_l]`` pruned weights (by default every
  layer keeps at least one weight);
- order is preserved *exactly* on applied sparsity ``c_l / n_l``: if layer i asked for more than layer j, then
  ``c_i / n_i >= c_j / n_j`` unless a bound stops it (i already prunes its maximum, or j already prunes its
  minimum). Equal requests are not ordered against each other;
- under the weight budget, equal requests give the same applied sparsity up to integer rounding: if no bound
  binds at the target, ``|c_l / n_l - target| < 1 / n_l``;
- a request that already meets the budget in counts (``requested[l] == c_l / n_l`` in float64 for integers
  ``c_l`` within bounds whose cost is within the tolerance of K, as ``counts_to_sparsities`` gives) comes back
  unchanged; so a projected plan projects onto itself.

Method. Requests clamped to ``[EPS, 1 - EPS]`` are shifted by one common offset ``t`` in logit space,
``s_l(t) = sigmoid(logit(r_l) + t)``, and clipped to each layer's bounds; ``t`` is found by bisection so that the
continuous pruned cost ``sum w_l n_l s_l(t)`` equals ``target * W`` (the unrounded target, so that uniform requests
land on the target itself). Integer counts: floors, then one more weight each to the layers with the largest
fractional parts while the cost is below K (Hamilton's method), then order repair: while some layer i that asked
for more has a lower applied sparsity than a layer j that asked for less (neither at the blocking bound), one
weight moves from j's pruned set to i's. Each move raises ``sum_l c_l * rank(r_l)``, so the repair ends, with the
count and the bounds unchanged. With unit costs the cost is then K and the projection ends there. With unequal
costs the rounding and the moves leave the cost off K; cost settling then steps one weight at a time toward K
(pruning one more weight where the cost is short, one fewer where it is over), each time in a layer whose step
keeps the order (the highest-request layer below its upper bound always can, resp. the lowest-request one above
its lower bound), in the layer furthest behind its continuous count, until K is reached or passed, and keeps the
closer of the last two plans (on a tie the one that prunes at least K). The step that passes K costs ``w``, so
the gap before it was at most ``w`` and the closer plan is within ``w / 2`` of K: ``|cost - K| <= max_l w_l / 2``.
It picks the layer furthest behind rather than the step that would land nearest K, so that no small layer is
bent far from its share to make up for a large layer's coarse cost steps: the bound is one weight's MACs out of
millions in the convolutional tasks (e.g. ResNet-20: 512 of 40.8 M).

Cost of exact order: a layer with few weights has a coarse grid of sparsities (multiples of ``1 / n_l``), and a
tiny layer whose request lies between two large layers' can force them apart by up to about ``1 / n_l`` in
sparsity. With the layer sizes of real networks (hundreds of weights and up) this is below one percent. In 20,000
random cases (1-12 layers of 1-5000 weights) every applied sparsity stayed within ``1.71 / min_l n_l`` of the
continuous shift; the property tests check ``2 / min_l n_l``. Under a FLOPs budget cost settling adds to this: in
20,000 random cases (1-12 layers of 1-5000 weights, 0-1024 MACs per weight) the largest deviation was
``5.0 / min_l n_l``, and 99.9% of the cases stayed within ``0.9 / min_l n_l``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from pruning_env.layers import PrunableLayer, macs_per_weight

Budget = Literal["weights", "flops"]
BUDGETS: tuple[str, ...] = ("weights", "flops")
"""What a target is a fraction of: the prunable weights, or the prunable layers' multiply-accumulates per sample."""

EPS = 1e-12
"""Requests are clamped to ``[EPS, 1 - EPS]`` before the logit; the order repair still sees the raw requests."""

_BISECTION_STEPS = 200


def target_count(total_weights: int, target_sparsity: float) -> int:
    """Number of weights to prune: ``floor(target_sparsity * total_weights + 0.5)`` (halves round up); of cost
    units (MACs) when ``total_weights`` is a total cost.

    This is the only place the global target is rounded to a count.

    Raises:
        ValueError: if ``target_sparsity`` is not a finite number in [0, 1] or ``total_weights`` < 0.
    """
    if total_weights < 0:
        raise ValueError(f"total_weights must be >= 0, got {total_weights}")
    return math.floor(check_target_sparsity(target_sparsity) * int(total_weights) + 0.5)


def check_target_sparsity(target_sparsity: float) -> float:
    """``target_sparsity`` as a float, or ValueError if it is not a number in [0, 1] (NaN included)."""
    if not (
        isinstance(target_sparsity, (int, float, np.floating, np.integer)) and 0.0 <= target_sparsity <= 1.0
    ):
        raise ValueError(f"target_sparsity must be a number in [0, 1], got {target_sparsity!r}")
    return float(target_sparsity)


def check_budget(budget: str) -> Budget:
    """``budget`` itself, or ValueError if it is not one of ``BUDGETS``."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {list(BUDGETS)} (what the target is a fraction of), got {budget!r}")
    return budget  # type: ignore[return-value]


def weight_costs(layers: Sequence[PrunableLayer], budget: Budget) -> np.ndarray | None:
    """The per-weight costs ``(L,)`` of ``budget`` for ``project_to_budget``: None (one per weight) for
    ``"weights"``, ``macs_per_weight`` for ``"flops"``.

    Raises:
        ValueError: for an unknown budget.
    """
    return None if check_budget(budget) == "weights" else macs_per_weight(layers)


def cost_tolerance(costs: Sequence[int] | np.ndarray | None) -> float:
    """How far (in cost units) a projected plan's pruned cost may be from the target count: ``max_l w_l / 2``;
    0.5 for unit costs (None), so there the pruned count is the target count exactly."""
    return 0.5 if costs is None else float(np.max(costs)) / 2


def counts_to_sparsities(counts: Sequence[int] | np.ndarray, sizes: Sequence[int] | np.ndarray) -> np.ndarray:
    """Applied sparsity per layer, ``counts / sizes`` as float64 (pruned weights over weights)."""
    return np.asarray(counts, dtype=np.int64) / np.asarray(sizes, dtype=np.int64)


def project_to_budget(
    requested: Sequence[float] | np.ndarray,
    sizes: Sequence[int] | np.ndarray,
    target_sparsity: float,
    *,
    min_kept: int | Sequence[int] = 1,
    max_kept: int | Sequence[int] | None = None,
    costs: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Pruned weights per layer, meeting the global target (see the module docstring) and keeping the order.

    Args:
        requested: requested sparsity per layer, shape (L,), each in [0, 1] (callers clip first).
        sizes: weights per layer ``n_l``, shape (L,), each >= 1.
        target_sparsity: global fraction of the total cost ``W = sum(costs * sizes)`` to prune, in [0, 1]: of all
            ``N = sum(sizes)`` weights when ``costs`` is None.
        min_kept: weights each layer keeps at least (one int for all layers or one per layer), in [0, n_l].
        max_kept: weights each layer keeps at most, in [min_kept_l, n_l]; None means n_l (no lower bound on
            pruning).
        costs: cost of one weight of each layer ``w_l``, shape (L,), integers >= 0 with ``W >= 1`` (e.g.
            ``macs_per_weight``: MACs per sample); None is 1 per weight, the weight budget.

    Returns:
        int64 array (L,) of pruned counts ``c_l``; applied sparsity is ``counts_to_sparsities(c, sizes)``. The
        pruned cost ``sum(costs * c)`` is within ``cost_tolerance(costs)`` of ``target_count(W, target)``.

    Raises:
        ValueError: on NaN or out-of-range requests, bad sizes, costs or bounds, or an infeasible target (the
            message gives the feasible range).
    """
    n = _validate_sizes(sizes)
    r = _validate_requests(requested, len(n))
    lo, hi = _pruned_bounds(n, min_kept, max_kept)
    w = np.ones_like(n) if costs is None else _validate_costs(costs, n)
    total = int(w @ n)
    k = target_count(total, target_sparsity)
    low_cost, high_cost = int(w @ lo), int(w @ hi)
    if not low_cost <= k <= high_cost:
        unit = "weights" if costs is None else "cost units (sum of costs x weights; MACs under a FLOPs budget)"
        raise ValueError(
            f"target_sparsity={target_sparsity} asks to prune {k} of {total} {unit}, but the per-layer bounds "
            f"allow pruning only {low_cost} to {high_cost} {unit} "
            f"(target_sparsity in [{low_cost / total:.6g}, {high_cost / total:.6g}])"
        )
    exact = np.rint(r * n).astype(np.int64)
    if np.array_equal(exact / n, r) and np.all((lo <= exact) & (exact <= hi)) and abs(int(w @ exact) - k) <= cost_tolerance(w):
        return exact
    continuous = _continuous_counts(r, n, lo, hi, float(target_sparsity) * total, w)
    counts = _restore_order(_largest_remainder(continuous, k, hi, r, w), n, r, lo, hi)
    return _settle_cost(counts, n, r, lo, hi, w, k, continuous)


def _validate_sizes(sizes: Sequence[int] | np.ndarray) -> np.ndarray:
    n = np.asarray(sizes)
    if n.ndim != 1 or len(n) == 0 or not np.issubdtype(n.dtype, np.integer) or np.any(n < 1):
        raise ValueError(f"sizes must be a non-empty 1-D sequence of integers >= 1, got {sizes!r}")
    return n.astype(np.int64)


def _validate_requests(requested: Sequence[float] | np.ndarray, num_layers: int) -> np.ndarray:
    r = np.asarray(requested, dtype=np.float64)
    if r.shape != (num_layers,):
        raise ValueError(f"requested must have shape ({num_layers},) (one sparsity per layer), got {r.shape}")
    if np.any(np.isnan(r)):
        raise ValueError(
            f"requested sparsities must not be NaN, got NaN at layers {np.flatnonzero(np.isnan(r))}"
        )
    if np.any((r < 0.0) | (r > 1.0)):
        raise ValueError(f"requested sparsities must lie in [0, 1], got {r[(r < 0.0) | (r > 1.0)]}")
    return r


def _validate_costs(costs: Sequence[int] | np.ndarray, n: np.ndarray) -> np.ndarray:
    w = np.asarray(costs)
    if w.shape != n.shape or not np.issubdtype(w.dtype, np.integer) or np.any(w < 0):
        raise ValueError(f"costs must be one integer >= 0 per layer ({len(n)}), got {costs!r}")
    if int(w.astype(np.int64) @ n) == 0:
        raise ValueError(
            "costs x sizes sum to 0, so no fraction of the cost can be pruned; under a FLOPs budget at least one "
            "prunable layer must be called by the forward pass (layers never called have 0 MACs)"
        )
    return w.astype(np.int64)


def _per_layer(value: int | Sequence[int], n: np.ndarray, field: str) -> np.ndarray:
    array = np.broadcast_to(np.asarray(value), n.shape) if np.ndim(value) == 0 else np.asarray(value)
    if array.shape != n.shape or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{field} must be one integer or one per layer ({len(n)}), got {value!r}")
    return array.astype(np.int64)


def _pruned_bounds(
    n: np.ndarray, min_kept: int | Sequence[int], max_kept: int | Sequence[int] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer bounds on the pruned count: ``n - max_kept <= c <= n - min_kept``."""
    low_kept = _per_layer(min_kept, n, "min_kept")
    high_kept = n if max_kept is None else _per_layer(max_kept, n, "max_kept")
    bad = (low_kept < 0) | (low_kept > high_kept) | (high_kept > n)
    if np.any(bad):
        layer = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"layer {layer}: need 0 <= min_kept <= max_kept <= size, got min_kept={low_kept[layer]}, "
            f"max_kept={high_kept[layer]}, size={n[layer]}"
        )
    return n - high_kept, n - low_kept


def _continuous_counts(
    r: np.ndarray, n: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: float, w: np.ndarray | int = 1
) -> np.ndarray:
    """Real pruned counts ``clip(n * sigmoid(logit(r) + t), lo, hi)`` with the common shift t whose cost
    ``sum(w * counts)`` is ``total`` (clipped into the reachable range ``[sum(w * lo), sum(w * hi)]``); ``w`` is
    the cost of one weight per layer (1: the weight budget)."""
    # scipy.special takes ~0.4 s to import: imported at the first projection, not with ``import pruning_env``
    from scipy.special import expit, logit

    z = logit(np.clip(r, EPS, 1.0 - EPS))
    goal = min(max(total, float((w * lo).sum())), float((w * hi).sum()))

    def counts(t: float) -> np.ndarray:
        return np.clip(n * expit(z + t), lo, hi)

    # |logit(EPS)| < 28, so at t = -56 (56) every sigmoid is within 5e-13 of 0 (1): the bracket holds the root.
    low, high = -56.0, 56.0
    for _ in range(_BISECTION_STEPS):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if (counts(middle) * w).sum() < goal:
            low = middle
        else:
            high = middle
    return counts(high)


def _largest_remainder(
    continuous: np.ndarray, k: int, hi: np.ndarray, r: np.ndarray, w: np.ndarray
) -> np.ndarray:
    """Floors plus one unit each for the largest fractional parts (ties: larger request, then lower layer index)
    while the cost before the unit is below k. The continuous cost is within 0.5 of k, so with unit costs exactly
    the ``k - sum(floors)`` largest parts get one (0 <= units <= layers with a part) and the cost is k."""
    counts = np.floor(continuous).astype(np.int64)
    remainder = continuous - counts
    eligible = counts < hi
    order = np.lexsort((np.arange(len(counts)), -r, -remainder))
    order = order[eligible[order]]
    cost_before = int(w @ counts) + np.cumsum(w[order]) - w[order]
    counts[order[cost_before < k]] += 1
    return counts


def _restore_order(
    counts: np.ndarray, n: np.ndarray, r: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Move single pruned weights from a lower-request layer j to a higher-request layer i while
    ``c_i / n_i < c_j / n_j``, i can still prune more and j can still prune less (worst gap first)."""
    asked_more = r[:, None] > r[None, :]  # [i, j]: layer i asked for more than layer j
    while True:
        # c_i / n_i < c_j / n_j, exactly in integers
        lower_sparsity = counts[:, None] * n[None, :] < counts[None, :] * n[:, None]
        violated = asked_more & lower_sparsity & (counts < hi)[:, None] & (counts > lo)[None, :]
        if not violated.any():
            return counts
        sparsity = counts / n
        gap = np.where(violated, sparsity[None, :] - sparsity[:, None], -np.inf)
        i, j = np.unravel_index(int(np.argmax(gap)), gap.shape)
        counts[i] += 1
        counts[j] -= 1


def _settle_cost(
    counts: np.ndarray, n: np.ndarray, r: np.ndarray, lo: np.ndarray, hi: np.ndarray, w: np.ndarray, k: int,
    continuous: np.ndarray,
) -> np.ndarray:
    """Single-weight steps toward the pruned cost k that keep the order, until k is reached or passed; the closer
    of the last two plans (on a tie the one pruning >= k). A no-op when the cost is k (always with unit costs)."""
    gap = k - int(w @ counts)
    direction = int(np.sign(gap))
    while gap * direction > 0:
        layer = _order_keeping_step(counts, n, r, lo, hi, w, continuous, direction)
        counts[layer] += direction
        after = gap - direction * int(w[layer])
        if after * direction <= 0:
            closer_before = abs(gap) < abs(after) or (abs(gap) == abs(after) and direction < 0)
            if closer_before:
                counts[layer] -= direction  # the plan before passing k was closer (or as close, pruning >= k)
            return counts
        gap = after
    return counts


def _order_keeping_step(
    counts: np.ndarray, n: np.ndarray, r: np.ndarray, lo: np.ndarray, hi: np.ndarray, w: np.ndarray,
    continuous: np.ndarray, direction: int,
) -> int:
    """The layer where one more pruned weight (``direction`` 1) or one fewer (-1) keeps the order: a layer with a
    cost first, then the one furthest behind its continuous count in the step's direction, then the lowest index.

    One more pruned weight in layer i keeps the order unless a layer j that asked for more, below its upper
    bound, would then have a lower sparsity; one fewer in layer j unless a layer m that asked for less, above its
    lower bound, would then have a higher one. The highest- (lowest-) request layer that can move always can.
    """
    if direction > 0:
        stepped = counts + 1
        # [i, j]: j asked for more than i and would prune a smaller share than i after i's step
        blocked = (r[None, :] > r[:, None]) & (counts < hi)[None, :] & (counts[None, :] * n[:, None] < stepped[:, None] * n[None, :])
        movable = counts < hi
    else:
        stepped = counts - 1
        # [j, m]: m asked for less than j and would prune a larger share than j after j's step
        blocked = (r[:, None] > r[None, :]) & (counts > lo)[None, :] & (stepped[:, None] * n[None, :] < counts[None, :] * n[:, None])
        movable = counts > lo
    candidates = np.flatnonzero(movable & ~blocked.any(axis=1))
    behind = direction * (continuous - counts)[candidates]
    best = np.lexsort((candidates, -behind, w[candidates] == 0))
    return int(candidates[best[0]])
