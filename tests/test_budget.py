"""Budget projection: known answers, errors, and properties over random layer sizes, targets and requests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from shared import assert_order

from pruning_env.budget import (
    _continuous_counts,
    _pruned_bounds,
    counts_to_sparsities,
    project_to_budget,
    target_count,
)

# ---------------------------------------------------------------------------------------------- known answers


def test_target_count_rounds_half_up() -> None:
    assert target_count(10, 0.25) == 3  # 2.5 -> 3
    assert target_count(10, 0.24) == 2  # 2.4 -> 2
    assert target_count(266_200, 0.98) == 260_876
    assert target_count(7, 0.0) == 0
    assert target_count(7, 1.0) == 7


def test_counts_to_sparsities() -> None:
    np.testing.assert_array_equal(counts_to_sparsities([1, 3], [4, 4]), [0.25, 0.75])


def test_uniform_request_known_answer() -> None:
    # N = 13, target 0.5 -> K = floor(6.5 + 0.5) = 7. Continuous shares 0.5 * (10, 3) = (5, 1.5): floors (5, 1)
    # leave one weight, which goes to the larger fractional part (layer 1): (5, 2).
    np.testing.assert_array_equal(project_to_budget([0.5, 0.5], [10, 3], 0.5), [5, 2])


def test_order_beats_nearest_rounding() -> None:
    # Sizes (3, 2), target 0.4 -> K = 2; requests 0.41 > 0.40 give continuous counts about (1.2, 0.8). Nearest
    # rounding (1, 1) would give layer 1 sparsity 1/3 < 1/2: the order forces (2, 0).
    np.testing.assert_array_equal(project_to_budget([0.41, 0.40], [3, 2], 0.4), [2, 0])


def test_a_tiny_layer_between_two_large_ones() -> None:
    # Sizes (1000, 2, 1000), requests 0.45 > 0.40 > 0.35, target 0.4 -> K = floor(800.8 + 0.5) = 801.
    # The middle layer keeps >= 1 weight, so it prunes 0 (sparsity 0) or 1 (sparsity 1/2):
    #   0 -> the last layer may not exceed sparsity 0 (it is not at its lower bound otherwise): (801, 0, 0);
    #   1 -> the first layer needs sparsity >= 1/2, i.e. >= 500 pruned: closest is (500, 1, 300).
    np.testing.assert_array_equal(project_to_budget([0.45, 0.40, 0.35], [1000, 2, 1000], 0.4), [500, 1, 300])


def test_feasible_plan_is_returned_unchanged() -> None:
    sizes = np.array([72, 32, 16])
    counts = np.array([50, 10, 0])  # 60 of 120 weights = 0.5
    np.testing.assert_array_equal(project_to_budget(counts_to_sparsities(counts, sizes), sizes, 0.5), counts)


def test_float32_plan_comes_back_to_its_counts() -> None:
    sizes = np.array([1000, 333, 4097, 50])
    counts = np.array([900, 300, 2000, 7])
    requested = counts_to_sparsities(counts, sizes).astype(np.float32)
    target = counts.sum() / sizes.sum()
    np.testing.assert_array_equal(project_to_budget(requested, sizes, target), counts)


def test_per_layer_bounds() -> None:
    # Layer 0 must keep >= 5 of 10 (prune <= 5), layer 1 must keep <= 2 of 10 (prune >= 8); K = 10.
    counts = project_to_budget([0.9, 0.1], [10, 10], 0.5, min_kept=[5, 0], max_kept=[10, 2])
    np.testing.assert_array_equal(counts, [2, 8])


def test_requests_at_zero_and_one() -> None:
    # K = 15. The two equal requests of 1 share it (7.5 each, layer 0 asked for 0 and stays near 0); the leftover
    # weight of the tie goes to the lower index.
    np.testing.assert_array_equal(project_to_budget([0.0, 1.0, 1.0], [10, 10, 10], 0.5), [0, 8, 7])


# -------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("requested", "sizes", "target", "match"),
    [
        ([0.5, np.nan], [10, 10], 0.5, "NaN"),
        ([0.5, 1.1], [10, 10], 0.5, r"\[0, 1\]"),
        ([0.5, -0.1], [10, 10], 0.5, r"\[0, 1\]"),
        ([0.5], [10, 10], 0.5, "shape"),
        ([0.5, 0.5], [10, 0], 0.5, "sizes"),
        ([0.5, 0.5], [10, 10], 1.5, "target_sparsity"),
        ([0.5, 0.5], [10, 10], float("nan"), "target_sparsity"),
        ([0.5, 0.5], [10, 10], 1.0, "allow pruning only 0 to 18"),
    ],
)
def test_bad_arguments(requested: list[float], sizes: list[int], target: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        project_to_budget(requested, sizes, target)


def test_bad_bounds() -> None:
    with pytest.raises(ValueError, match="min_kept"):
        project_to_budget([0.5, 0.5], [10, 3], 0.5, min_kept=4)
    with pytest.raises(ValueError, match="min_kept"):
        project_to_budget([0.5, 0.5], [10, 10], 0.5, min_kept=[3, 3], max_kept=[2, 10])
    with pytest.raises(ValueError, match="one per layer"):
        project_to_budget([0.5, 0.5], [10, 10], 0.5, min_kept=[1, 1, 1])


def test_infeasible_low_target_with_forced_pruning() -> None:
    with pytest.raises(ValueError, match=r"target_sparsity in \[0.5, 1\]"):
        project_to_budget([0.5, 0.5], [10, 10], 0.2, min_kept=0, max_kept=5)


# ---------------------------------------------------------------------------------------------- properties


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, np.ndarray]:
    """Random sizes (1..5000, 1..12 layers), requests with ties, target, per-layer keep bounds."""
    sizes = np.array(draw(st.lists(st.integers(1, 5000), min_size=1, max_size=12)))
    pool = draw(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=len(sizes)))
    requested = np.array([draw(st.sampled_from(pool)) for _ in sizes])
    target = draw(st.floats(0.0, 1.0))
    if draw(st.booleans()):
        min_kept = np.ones_like(sizes)
        max_kept = sizes.copy()
    else:
        min_kept = np.array([draw(st.integers(0, int(n))) for n in sizes])
        max_kept = np.array(
            [draw(st.integers(int(lo), int(n))) for lo, n in zip(min_kept, sizes, strict=True)]
        )
    return sizes, requested, target, min_kept, max_kept


@settings(max_examples=300, deadline=None)
@given(problems())
def test_projection_properties(problem: tuple[np.ndarray, np.ndarray, float, np.ndarray, np.ndarray]) -> None:
    sizes, requested, target, min_kept, max_kept = problem
    lo, hi = sizes - max_kept, sizes - min_kept
    k = target_count(int(sizes.sum()), target)
    if not lo.sum() <= k <= hi.sum():
        with pytest.raises(ValueError, match="feasible|allow pruning only"):
            project_to_budget(requested, sizes, target, min_kept=min_kept, max_kept=max_kept)
        return
    counts = project_to_budget(requested, sizes, target, min_kept=min_kept, max_kept=max_kept)
    assert counts.dtype == np.int64 and counts.sum() == k
    assert np.all((lo <= counts) & (counts <= hi))
    assert_order(counts, sizes, requested, lo, hi)
    # Closeness to the continuous logit shift; the largest deviation seen in 20,000 random trials was 1.71/min(n).
    continuous = _continuous_counts(requested, sizes, lo, hi, target * sizes.sum())
    assert np.all(np.abs(counts - continuous) / sizes <= 2.0 / sizes.min() + 1e-9)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 5000), min_size=1, max_size=12), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_uniform_requests_give_uniform_sparsities(
    sizes_list: list[int], target: float, request: float
) -> None:
    sizes = np.array(sizes_list)
    lo, hi = _pruned_bounds(sizes, 1, None)
    assume(np.all((lo <= target * sizes) & (target * sizes <= hi)))  # no bound binds at the target
    counts = project_to_budget(np.full(len(sizes), request), sizes, target)
    assert counts.sum() == target_count(int(sizes.sum()), target)
    assert np.all(np.abs(counts_to_sparsities(counts, sizes) - target) < 1.0 / sizes)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 5000), min_size=1, max_size=12), st.data())
def test_feasible_plans_are_fixed_points(sizes_list: list[int], data: st.DataObject) -> None:
    sizes = np.array(sizes_list)
    counts = np.array([data.draw(st.integers(0, int(n) - 1)) for n in sizes])
    target = counts.sum() / sizes.sum()
    assume(target_count(int(sizes.sum()), target) == counts.sum())
    np.testing.assert_array_equal(
        project_to_budget(counts_to_sparsities(counts, sizes), sizes, target), counts
    )
