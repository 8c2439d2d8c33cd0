"""Allocations against hand computations: uniform counts, ER/ERK densities with RigL's dense re-solve, LAMP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pruning_env.allocation import (
    ALLOCATIONS,
    Allocation,
    erdos_renyi,
    erdos_renyi_kernel,
    erk_densities,
    get_allocation,
    global_score,
    global_score_allocation,
    global_topk_counts,
    lamp,
    uniform,
)
from pruning_env.budget import target_count
from pruning_env.layers import PrunableLayer, layer_weights, prunable_layers
from pruning_env.masking import topk_masks
from pruning_env.scorers import lamp_scores


def _tiny_net() -> list[PrunableLayer]:
    """Conv 3->4 (3x3 kernel, 108 weights), Linear 4->8 (32), Linear 8->2 (16): N = 156."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    return prunable_layers(model, torch.zeros(1, 3, 3, 3))


def _hand_net() -> tuple[nn.Module, list[PrunableLayer]]:
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, -4.0]]))
        model[2].weight.copy_(torch.tensor([[0.2, 0.1]]))
    return model, prunable_layers(model, torch.zeros(1, 2))


def test_tiny_net_shapes() -> None:
    layers = _tiny_net()
    assert [layer.weight_shape for layer in layers] == [(4, 3, 3, 3), (8, 4), (2, 8)]


def test_uniform_known_counts() -> None:
    layers = _tiny_net()
    np.testing.assert_array_equal(uniform(layers, 0.5), [54 / 108, 16 / 32, 8 / 16])
    # 0.9: K = floor(140.4 + 0.5) = 140; shares (97.2, 28.8, 14.4) floor to 139, the extra weight goes to the
    # largest fractional part (28.8).
    np.testing.assert_array_equal(uniform(layers, 0.9), [97 / 108, 29 / 32, 14 / 16])


def test_erk_densities_by_hand() -> None:
    layers = _tiny_net()
    sizes = np.array([108, 32, 16])
    raw = np.array([13 / 108, 12 / 32, 10 / 16])  # sum(shape) / prod(shape)
    # Target 0.5 keeps 78. eps = 78 / (13 + 12 + 10) = 2.2286 puts Linear 8->2 at 5/8 * 2.2286 = 1.39 > 1: it is
    # made dense, eps = (78 - 16) / (13 + 12) = 2.48, Linear 4->8 at 3/8 * 2.48 = 0.93, conv at 13/108 * 2.48.
    eps = (78 - 16) / (13 + 12)
    expected = np.array([13 / 108 * eps, 12 / 32 * eps, 1.0])
    np.testing.assert_allclose(erk_densities(raw, sizes, 0.5), expected, rtol=1e-12)
    # Pruned counts: 108 - 32.24 = 75.76, 32 - 29.76 = 2.24, 0 -> floors (75, 2, 0), one more weight (K = 78) to
    # the conv's larger fractional part.
    np.testing.assert_array_equal(erdos_renyi_kernel(layers, 0.5), [76 / 108, 2 / 32, 0.0])


def test_er_ignores_the_kernel() -> None:
    layers = _tiny_net()
    # ER raw densities: conv (4 + 3) / (4 * 3) = 7/12, then 12/32 and 10/16. eps = 78 / (63 + 12 + 10) = 78/85,
    # all densities below 1. Pruned: 108 - 63 eps = 50.19, 32 - 12 eps = 20.99, 16 - 10 eps = 6.82 -> floors
    # (50, 20, 6) sum 76; the two extra weights go to 0.99 and 0.82.
    np.testing.assert_array_equal(erdos_renyi(layers, 0.5), [50 / 108, 21 / 32, 7 / 16])


def test_erk_all_dense_at_zero_target() -> None:
    np.testing.assert_array_equal(erk_densities(np.array([0.5, 0.25]), np.array([4, 8]), 0.0), [1.0, 1.0])
    np.testing.assert_array_equal(erdos_renyi_kernel(_tiny_net(), 0.0), [0.0, 0.0, 0.0])


def test_lamp_scores_by_hand() -> None:
    _, layers = _hand_net()
    scores = lamp_scores(layer_weights(layers))
    # Layer 0, w^2 ascending 1, 4, 9, 16: suffix sums 30, 29, 25, 16.
    torch.testing.assert_close(scores["0"], torch.tensor([[1 / 30, 4 / 29], [9 / 25, 1.0]]))
    # Layer 2, w^2 ascending 0.01, 0.04: suffix sums 0.05, 0.04.
    torch.testing.assert_close(scores["2"], torch.tensor([[1.0, 0.2]]))


def test_lamp_scores_ties_and_zeros() -> None:
    model = nn.Sequential(nn.Linear(3, 1), nn.Linear(1, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[2.0, -2.0, 1.0]]))
        model[1].weight.zero_()
    scores = lamp_scores(layer_weights(prunable_layers(model, torch.zeros(1, 3))))
    # Tie 4 = 4: the lower index counts as larger (sum 4 -> score 1), the other sees 4 + 4; then 1 / 9.
    torch.testing.assert_close(scores["0"], torch.tensor([[1.0, 0.5, 1 / 9]]))
    assert torch.equal(scores["1"], torch.zeros(2, 1))


def test_lamp_and_global_magnitude_by_hand() -> None:
    _, layers = _hand_net()
    # N = 6, target 0.5 -> prune 3. LAMP prunes 1/30 (w=1), 4/29 (w=-2) and 0.2 (w=0.1).
    np.testing.assert_array_equal(lamp(layers, 0.5), [0.5, 0.5])
    # Target 4/6 -> prune 4: next is 9/25 (w=3).
    np.testing.assert_array_equal(lamp(layers, 4 / 6), [0.75, 0.5])
    # Global magnitude prunes 0.1, 0.2 and 1: the second layer is emptied, as in the literature.
    magnitude = {layer.name: layer.weight.detach().abs() for layer in layers}
    np.testing.assert_array_equal(global_score(magnitude, layers, 0.5), [0.25, 1.0])


def test_global_topk_ties_and_masks_agree() -> None:
    scores = {"a": torch.tensor([1.0, 1.0]), "b": torch.tensor([1.0, 1.0, 2.0])}
    # Keep 2 of 5: the 2, then the first tied 1 in concatenation order (a[0]).
    counts = global_topk_counts(scores, 3)
    assert counts == {"a": 1, "b": 2}
    masks = topk_masks(scores, counts)
    assert masks["a"].tolist() == [True, False] and masks["b"].tolist() == [False, False, True]
    assert global_topk_counts(scores, 0) == {"a": 0, "b": 0}
    assert global_topk_counts(scores, 5) == {"a": 2, "b": 3}
    with pytest.raises(ValueError, match="target_count"):
        global_topk_counts(scores, 6)


def test_global_score_rejects_bad_scores() -> None:
    _, layers = _hand_net()
    with pytest.raises(ValueError, match="'2'"):
        global_score({"0": torch.ones(2, 2)}, layers, 0.5)
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        global_score({"0": torch.ones(2, 2), "2": torch.ones(2)}, layers, 0.5)


def test_global_score_allocation_by_scorer_name() -> None:
    model, layers = _hand_net()
    batch = (torch.zeros(2, 2), torch.zeros(2, dtype=torch.int64))
    np.testing.assert_array_equal(
        global_score_allocation("magnitude", model, layers, batch, 0.5), [0.25, 1.0]
    )


@pytest.mark.parametrize("name", sorted(ALLOCATIONS))
@pytest.mark.parametrize("target", [0.0, 0.3, 0.9, 0.97])
def test_every_allocation_meets_the_budget_exactly(name: str, target: float) -> None:
    layers = _tiny_net()
    sizes = np.array([layer.num_weights for layer in layers])
    sparsities = get_allocation(name)(layers, target)
    counts = np.rint(sparsities * sizes)
    assert sparsities.dtype == np.float64
    np.testing.assert_allclose(sparsities * sizes, counts, rtol=0, atol=1e-9)
    assert int(counts.sum()) == target_count(int(sizes.sum()), target)


@pytest.mark.parametrize("target", [0.6, 0.9, 0.97])
def test_er_and_erk_stay_within_one_weight_of_the_continuous_plan(target: float) -> None:
    layers = _tiny_net()
    sizes = np.array([layer.num_weights for layer in layers])
    raw = np.array([sum(layer.weight_shape) / layer.num_weights for layer in layers])
    continuous = (1.0 - erk_densities(raw, sizes, target)) * sizes
    assert np.all(np.abs(erdos_renyi_kernel(layers, target) * sizes - continuous) < 1.0)


@pytest.mark.parametrize("allocation", [erdos_renyi, erdos_renyi_kernel, uniform, lamp])
def test_bad_target(allocation: Allocation) -> None:
    with pytest.raises(ValueError, match="target_sparsity"):
        allocation(_tiny_net(), 1.5)


def test_unknown_allocation() -> None:
    with pytest.raises(ValueError, match="known allocations: uniform, er, erk, lamp"):
        get_allocation("snip")
