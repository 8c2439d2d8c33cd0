"""Known-answer tests of ``pruning_env.features``: every static column of a hand-made network, proxy summaries,
the observation matrix (global-ranking densities, ER/ERK, clipping, finiteness) and the feature names."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from shared import three_layers
from torch import nn

from pruning_env.features import (
    FEATURE_CLIP,
    feature_names,
    observation_matrix,
    static_features,
    summarize_proxy,
)
from pruning_env.layers import PrunableLayer, prunable_layers


def _two_linear_layers(width_in: int = 2) -> list[PrunableLayer]:
    """Linear(width_in -> 2) ("0", 2 * width_in weights) then Linear(2 -> 1) ("1", 2 weights)."""
    torch.manual_seed(0)
    return prunable_layers(nn.Sequential(nn.Linear(width_in, 2), nn.Linear(2, 1)), torch.zeros(1, width_in))


# --- static features ----------------------------------------------------------------------------------------------
def test_static_features_of_a_hand_made_three_layer_net() -> None:
    layers = three_layers()
    assert [layer.name for layer in layers] == ["conv", "fc1", "fc2"]
    # conv: weight (2, 1, 3, 3) = 18 weights, 2x2 output positions -> 72 MACs, fan_in 1*9, fan_out 2*9
    # fc1: (4, 8) = 32 weights, 32 MACs; fc2: (3, 4) = 12 weights, 12 MACs. Totals: 62 weights, 116 MACs.
    expected = np.array(
        [
            # position, first, last, conv, log_fan_in, log_fan_out, log_kernel, log_stride, log_weights, w, flops
            [0.0, 1, 0, 1, math.log10(9) / 4, math.log10(18) / 4, math.log10(9) / 2, 1.0, math.log10(18) / 7, 18 / 62, 72 / 116],
            [0.5, 0, 0, 0, math.log10(8) / 4, math.log10(4) / 4, 0.0, 0.0, math.log10(32) / 7, 32 / 62, 32 / 116],
            [1.0, 0, 1, 0, math.log10(4) / 4, math.log10(3) / 4, 0.0, 0.0, math.log10(12) / 7, 12 / 62, 12 / 116],
        ]
    )
    static = static_features(layers)
    assert static.dtype == np.float64
    assert static.shape == (3, 11)
    np.testing.assert_allclose(static, expected, rtol=0, atol=1e-12)


def test_static_features_of_a_single_layer_and_a_non_square_stride() -> None:
    torch.manual_seed(0)
    (layer,) = prunable_layers(nn.Sequential(nn.Conv2d(1, 3, (1, 2), stride=(1, 4))), torch.zeros(1, 1, 4, 9))
    # weight (3, 1, 1, 2): 6 weights; output 4 x 2 = 8 positions -> 48 MACs; fan_in 2, fan_out 3*2; kernel 2
    expected = [0.0, 1, 1, 1, math.log10(2) / 4, math.log10(6) / 4, math.log10(2) / 2, 2.0, math.log10(6) / 7, 1, 1]
    np.testing.assert_allclose(static_features([layer])[0], expected, rtol=0, atol=1e-12)


# --- proxy summaries ----------------------------------------------------------------------------------------------
def test_summarize_proxy_by_hand_with_exact_zeros_and_signs() -> None:
    layers = _two_linear_layers()
    f64 = torch.float64  # 0.1 exactly as in the hand computation
    scores = {"0": torch.tensor([[1.0, -10.0], [100.0, 0.0]], dtype=f64), "1": torch.tensor([[0.1, 1000.0]], dtype=f64)}
    stats = summarize_proxy(layers, scores).stats
    # |scores|: layer 0 mass 1 + 10 + 100 + 0 = 111, layer 1 mass 1000.1
    mass = np.array([111.0, 1000.1]) / 1111.1
    # log10 with the 1e-30 floor: layer 0 [0, 1, 2, -30], layer 1 [-1, 3]
    log0, log1 = np.array([0.0, 1.0, 2.0, -30.0]), np.array([-1.0, 3.0])
    all_logs = np.concatenate([log0, log1])
    mean, std = all_logs.mean(), all_logs.std()  # population std (ddof 0)
    assert mean == pytest.approx(-25 / 6)
    expected = np.array(
        [
            [mass[0], (log0.mean() - mean) / std, log0.std() / std],
            [mass[1], (log1.mean() - mean) / std, log1.std() / std],
        ]
    )
    assert stats.shape == (2, 3)
    np.testing.assert_allclose(stats, expected, rtol=1e-12, atol=1e-12)


def test_summarize_proxy_all_zero_scores_gives_uniform_shares_and_zero_statistics() -> None:
    layers = three_layers()
    scores = {layer.name: torch.zeros(layer.weight_shape) for layer in layers}
    stats = summarize_proxy(layers, scores).stats
    expected = np.array([[1 / 3, 0.0, 0.0]] * 3)
    np.testing.assert_allclose(stats, expected, rtol=0, atol=1e-12)
    assert np.isfinite(stats).all()


def test_summarize_proxy_z_score_beyond_the_clip_is_clipped_in_the_observation() -> None:
    # 256 scores of 1 (log 0) in layer 0 and 2 exact zeros (log -30) in layer 1: with p = 2/258, the z-score of
    # layer 1's mean is -(1 - p) * 30 / (30 * sqrt(p (1 - p))) = -sqrt((1 - p) / p) = -sqrt(128), beyond -10
    layers = _two_linear_layers(width_in=128)
    summary = summarize_proxy(layers, {"0": torch.ones(2, 128), "1": torch.zeros(1, 2)})
    assert summary.stats[1, 1] == pytest.approx(-math.sqrt(128), rel=1e-9)
    assert summary.stats[0, 1] == pytest.approx(1 / math.sqrt(128), rel=1e-9)  # sqrt(p / (1 - p))
    static = static_features(layers)
    matrix = observation_matrix(layers, static, [summary], 0.5)
    mean_column = feature_names(["p"]).index("p_mean")
    assert matrix[1, mean_column] == -FEATURE_CLIP
    assert matrix[0, mean_column] == pytest.approx(1 / math.sqrt(128), rel=1e-6)


# --- observation matrix -------------------------------------------------------------------------------------------
HAND_SCORES = {"0": torch.tensor([[5.0, 1.0], [3.0, 6.0]]), "1": torch.tensor([[2.0, 4.0]])}


@pytest.mark.parametrize(
    ("target", "densities"),
    [
        # N = 6 weights; pruned = floor(target * 6 + 0.5) lowest of the sorted scores 1 < 2 < 3 < 4 < 5 < 6
        (0.0, [1.0, 1.0]),  # nothing pruned
        (0.34, [0.75, 0.5]),  # 2.04 -> 2: scores 1 (layer 0) and 2 (layer 1)
        (0.42, [0.5, 0.5]),  # 2.52 -> 3: 1, 2, 3
        (0.25, [0.75, 0.5]),  # 1.5 -> 2 (halves round up): 1, 2
        (0.6, [0.5, 0.0]),  # 3.6 -> 4: 1, 2, 3, 4: layer 1 emptied (a global ranking may empty a layer)
    ],
)
def test_proxy_density_is_what_a_global_ranking_keeps(target: float, densities: list[float]) -> None:
    layers = _two_linear_layers()
    summary = summarize_proxy(layers, HAND_SCORES)
    matrix = observation_matrix(layers, static_features(layers), [summary], target)
    names = feature_names(["hand"])
    np.testing.assert_array_equal(matrix[:, names.index("hand_density")], np.float32(densities))
    np.testing.assert_array_equal(matrix[:, names.index("target_sparsity")], np.float32([target, target]))


def test_proxy_density_on_a_random_ranking_of_the_three_layer_net() -> None:
    layers = three_layers()
    sizes = np.array([18, 32, 12])
    values = np.random.default_rng(4).permutation(62) + 1.0  # distinct scores 1..62
    splits = np.split(values, np.cumsum(sizes)[:-1])
    scores = {layer.name: torch.tensor(part).view(layer.weight_shape) for layer, part in zip(layers, splits, strict=True)}
    layer_of = np.repeat([0, 1, 2], sizes)
    target = 0.7
    pruned_weights = np.argsort(values)[: round(target * 62)]  # 43.4 -> 43 lowest scores
    expected = 1.0 - np.bincount(layer_of[pruned_weights], minlength=3) / sizes
    matrix = observation_matrix(layers, static_features(layers), [summarize_proxy(layers, scores)], target)
    np.testing.assert_allclose(matrix[:, feature_names(["s"]).index("s_density")], expected, rtol=0, atol=1e-7)


def test_er_and_erk_columns_by_hand() -> None:
    layers = three_layers()
    sizes = np.array([18, 32, 12])
    target = 0.5  # 31 weights pruned, 31 kept
    # ERK raw = sum(shape) / prod(shape): conv (2+1+3+3)/18 = 1/2, fc1 12/32, fc2 7/12; eps = 31 / (9 + 12 + 7)
    erk = np.array([0.5, 12 / 32, 7 / 12]) * 31 / 28
    # ER raw = (d0 + d1) / (d0 d1): conv 3/2, fc1 12/32, fc2 7/12; eps = 31/46 makes conv's density 1.01 > 1:
    # conv dense, eps re-solved over the rest: (31 - 18) / (12 + 7)
    er = np.array([1.0, 12 / 32 * 13 / 19, 7 / 12 * 13 / 19])
    summary = summarize_proxy(layers, {layer.name: torch.ones(layer.weight_shape) for layer in layers})
    matrix = observation_matrix(layers, static_features(layers), [summary], target)
    names = feature_names(["x"])
    for column, continuous in (("er_density", er), ("erk_density", erk)):
        densities = matrix[:, names.index(column)].astype(np.float64)
        pruned = (1.0 - densities) * sizes
        np.testing.assert_allclose(pruned, np.round(pruned), atol=1e-4)  # whole weights
        assert round(pruned.sum()) == 31  # the exact budget
        assert (np.abs(densities - continuous) <= 1.0 / sizes + 1e-6).all()  # within one weight of the hand value
    assert matrix[0, names.index("er_density")] == 1.0


def test_observation_layout_dtype_and_copied_columns() -> None:
    layers = three_layers()
    static = static_features(layers)
    generator = torch.Generator().manual_seed(0)
    summaries = [
        summarize_proxy(layers, {layer.name: torch.rand(layer.weight_shape, generator=generator) for layer in layers})
        for _ in range(2)
    ]
    matrix = observation_matrix(layers, static, summaries, 0.9)
    assert matrix.dtype == np.float32
    assert matrix.shape == (3, 11 + 3 + 2 * 4)
    np.testing.assert_array_equal(matrix[:, :11], static.astype(np.float32))
    np.testing.assert_array_equal(matrix[:, 11], np.float32([0.9] * 3))
    for k, summary in enumerate(summaries):  # proxy k's mass, mean, std at 14 + 4k + (0, 2, 3)
        base = 14 + 4 * k
        np.testing.assert_array_equal(matrix[:, [base, base + 2, base + 3]], summary.stats.astype(np.float32))
    assert np.isfinite(matrix).all() and (np.abs(matrix) <= FEATURE_CLIP).all()


def test_observation_is_finite_with_infinite_scores() -> None:
    # an inf score makes mass inf/inf = NaN and the log statistics inf or NaN: the observation must stay finite
    layers = _two_linear_layers()
    scores = {"0": torch.tensor([[math.inf, 1.0], [2.0, 3.0]]), "1": torch.tensor([[0.0, 4.0]])}
    summary = summarize_proxy(layers, scores)
    assert not np.isfinite(summary.stats).all()  # the case really produces non-finite statistics
    matrix = observation_matrix(layers, static_features(layers), [summary], 0.5)
    assert matrix.dtype == np.float32
    assert np.isfinite(matrix).all() and (np.abs(matrix) <= FEATURE_CLIP).all()
    # the ranking still works: inf is the most important weight; 3 pruned: 0 (layer 1), 1, 2 (layer 0)
    np.testing.assert_array_equal(matrix[:, feature_names(["p"]).index("p_density")], np.float32([0.5, 0.5]))


def test_nan_scores_are_rejected() -> None:
    layers = _two_linear_layers()
    with pytest.raises(ValueError, match="NaN"):
        summarize_proxy(layers, {"0": torch.tensor([[math.nan, 1.0], [2.0, 3.0]]), "1": torch.ones(1, 2)})


# --- names ---------------------------------------------------------------------------------------------------------
def test_feature_names_order_and_length() -> None:
    assert feature_names(["snip", "synflow"]) == [
        "position",
        "is_first",
        "is_last",
        "is_conv",
        "log_fan_in",
        "log_fan_out",
        "log_kernel",
        "log_stride",
        "log_weights",
        "weight_share",
        "flop_share",
        "target_sparsity",
        "er_density",
        "erk_density",
        "snip_mass",
        "snip_density",
        "snip_mean",
        "snip_std",
        "synflow_mass",
        "synflow_density",
        "synflow_mean",
        "synflow_std",
    ]
    assert len(feature_names([])) == 14
