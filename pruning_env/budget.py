"""Budget projection: requested per-layer sparsities -> pruned counts that meet a global target exactly.

A controller asks for a sparsity per layer; the environment prunes exactly ``target_count(N, target)`` of the N
prunable weights. ``project_to_budget`` maps the request to integer pruned counts per layer such that

- the total equals the target count, to the weight;
- every layer stays within its bounds ``[n_l - max_kept_l, n_l - min_kept_l]`` pruned weights (by default every
  layer keeps at least one weight);
- order is preserved *exactly* on applied sparsity ``c_l / n_l``: if layer i asked for more than layer j, then
  ``c_i / n_i >= c_j / n_j`` unless a bound stops it (i already prunes its maximum, or j already prunes its
  minimum). Equal requests are not ordered against each other;
- equal requests give the same applied sparsity up to integer rounding: if no bound binds at the target,
  ``|c_l / n_l - target| < 1 / n_l``;
- a request that already meets the budget in counts (``requested[l] == c_l / n_l`` in float64 for integers
  ``c_l`` within bounds summing to the target count, as ``counts_to_sparsities`` gives) comes back unchanged.

Method. Requests clamped to ``[EPS, 1 - EPS]`` are shifted by one common offset ``t`` in logit space,
``s_l(t) = sigmoid(logit(r_l) + t)``, and clipped to each layer's bounds; ``t`` is found by bisection so that the
continuous pruned total ``sum n_l s_l(t)`` equals ``target * N`` (the unrounded target, so that uniform requests
land on the target itself). Integer counts: floors, then the remaining units to the largest fractional parts
(Hamilton's method), then order repair: while some layer i that asked for more has a lower applied sparsity than
a layer j that asked for less (neither at the blocking bound), one weight moves from j's pruned set to i's. Each
move raises ``sum_l c_l * rank(r_l)``, so the repair ends, with the total and the bounds unchanged.

Cost of exact order: a layer with few weights has a coarse grid of sparsities (multiples of ``1 / n_l``), and a
tiny layer whose request lies between two large layers' can force them apart by up to about ``1 / n_l`` in
sparsity. With the layer sizes of real networks (hundreds of weights and up) this is below one percent. In 20,000
random cases (1-12 layers of 1-5000 weights) every applied sparsity stayed within ``1.71 / min_l n_l`` of the
continuous shift; the property tests check ``2 / min_l n_l``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import expit, logit

EPS = 1e-12
"""Requests are clamped to ``[EPS, 1 - EPS]`` before the logit; the order repair still sees the raw requests."""

_BISECTION_STEPS = 200


def target_count(total_weights: int, target_sparsity: float) -> int:
    """Number of weights to prune: ``floor(target_sparsity * total_weights + 0.5)`` (halves round up).

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
) -> np.ndarray:
    """Pruned weights per layer, meeting the global target exactly and keeping the requested order.

    Args:
        requested: requested sparsity per layer, shape (L,), each in [0, 1] (callers clip first).
        sizes: weights per layer ``n_l``, shape (L,), each >= 1.
        target_sparsity: global fraction of all ``N = sum(sizes)`` weights to prune, in [0, 1].
        min_kept: weights each layer keeps at least (one int for all layers or one per layer), in [0, n_l].
        max_kept: weights each layer keeps at most, in [min_kept_l, n_l]; None means n_l (no lower bound on
            pruning).

    Returns:
        int64 array (L,) of pruned counts ``c_l``; applied sparsity is ``counts_to_sparsities(c, sizes)``.

    Raises:
        ValueError: on NaN or out-of-range requests, bad sizes or bounds, or an infeasible target (the message
            gives the feasible range).
    """
    n = _validate_sizes(sizes)
    r = _validate_requests(requested, len(n))
    lo, hi = _pruned_bounds(n, min_kept, max_kept)
    total = int(n.sum())
    k = target_count(total, target_sparsity)
    if not int(lo.sum()) <= k <= int(hi.sum()):
        raise ValueError(
            f"target_sparsity={target_sparsity} asks to prune {k} of {total} weights, but the per-layer bounds "
            f"allow pruning only {lo.sum()} to {hi.sum()} weights "
            f"(target_sparsity in [{lo.sum() / total:.6g}, {hi.sum() / total:.6g}])"
        )
    exact = np.rint(r * n).astype(np.int64)
    if np.array_equal(exact / n, r) and np.all((lo <= exact) & (exact <= hi)) and int(exact.sum()) == k:
        return exact
    continuous = _continuous_counts(r, n, lo, hi, float(target_sparsity) * total)
    counts = _largest_remainder(continuous, k, hi, r)
    return _restore_order(counts, n, r, lo, hi)


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
    r: np.ndarray, n: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: float
) -> np.ndarray:
    """Real pruned counts ``clip(n * sigmoid(logit(r) + t), lo, hi)`` with the common shift t that sums to
    ``total`` (clipped into the reachable range ``[sum(lo), sum(hi)]``)."""
    z = logit(np.clip(r, EPS, 1.0 - EPS))
    goal = min(max(total, float(lo.sum())), float(hi.sum()))

    def counts(t: float) -> np.ndarray:
        return np.clip(n * expit(z + t), lo, hi)

    # |logit(EPS)| < 28, so at t = -56 (56) every sigmoid is within 5e-13 of 0 (1): the bracket holds the root.
    low, high = -56.0, 56.0
    for _ in range(_BISECTION_STEPS):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if counts(middle).sum() < goal:
            low = middle
        else:
            high = middle
    return counts(high)


def _largest_remainder(continuous: np.ndarray, k: int, hi: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Floors plus one unit each for the ``k - sum(floors)`` largest fractional parts (ties: larger request,
    then lower layer index). The continuous total is within 0.5 of k, so 0 <= units <= layers with a part."""
    counts = np.floor(continuous).astype(np.int64)
    remainder = continuous - counts
    units = k - int(counts.sum())
    eligible = counts < hi
    order = np.lexsort((np.arange(len(counts)), -r, -remainder))
    order = order[eligible[order]]
    counts[order[:units]] += 1
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
