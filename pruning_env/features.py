"""Per-layer meta-features: the observation of each layer agent.

Every layer gets the same fixed-length float32 vector, clipped to [-FEATURE_CLIP, FEATURE_CLIP]. All features are
scale-free (shares, densities, logs of sizes on fixed scales, z-scores), so one controller can read networks of
any size. The vector is ``STATIC_FEATURES`` + ``TARGET_FEATURES`` + ``PROXY_FEATURES`` for each proxy in order:

| feature              | meaning                                                                            |
|----------------------|------------------------------------------------------------------------------------|
| position             | index / (L - 1): 0 for the first layer, 1 for the last                             |
| is_first, is_last    | 1 for the first / last layer in forward order, else 0                              |
| is_conv              | 1 for Conv1d/2d/3d, 0 for Linear                                                   |
| log_fan_in           | log10(fan_in) / 4, fan_in = in_channels/groups x kernel volume (or in_features)    |
| log_fan_out          | log10(fan_out) / 4, fan_out = out_channels x kernel volume (or out_features)       |
| log_kernel           | log10(kernel volume) / 2 (0 for Linear)                                            |
| log_stride           | log2 of the largest stride (0 for Linear)                                          |
| log_weights          | log10(number of weights) / 7                                                       |
| weight_share         | this layer's share of all prunable weights                                         |
| flop_share           | this layer's share of all multiply-accumulates per sample                          |
| target_sparsity      | the episode's global target: the fraction of the budget's cost removed (below)     |
| er_density           | the density Erdos-Renyi (SET) gives this layer at the target                       |
| erk_density          | the density ERK (RigL) gives this layer at the target                              |
| {proxy}_mass         | the layer's share of the proxy's total absolute saliency                           |
| {proxy}_density      | the density a global ranking by the proxy gives the layer at the target            |
| {proxy}_mean         | mean of log10 abs score in the layer, z-scored against all weights of the network  |
| {proxy}_std          | std of log10 abs score in the layer, over the network-wide std                     |

The target and the reference densities follow the env's budget (``budget.BUDGETS``; the allocations of
``pruning_env.allocation`` under that budget):

| feature         | budget="weights" (default)                     | budget="flops"                                     |
|-----------------|------------------------------------------------|----------------------------------------------------|
| target_sparsity | fraction of the prunable weights removed       | fraction of the prunable layers' MACs per sample   |
|                 |                                                | removed; requesting it in every layer is uniform   |
|                 |                                                | compute (every layer loses that share of its MACs) |
| er_density,     | ER / ERK densities keeping (1 - target) of the | the same density shapes, ``eps`` solved so they    |
| erk_density     | weights                                        | keep (1 - target) of the MACs                      |
| {proxy}_density | global top-k of the proxy's scores             | global ranking of score per MAC (score / MACs per  |
|                 |                                                | weight of the layer), pruned up to the MAC target  |

Every other feature is the same under both budgets (``flop_share`` always gives the layer's share of the MACs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pruning_env.allocation import (
    erdos_renyi,
    erdos_renyi_kernel,
    global_ranking,
    layer_costs,
    ranking_counts,
    scores_per_cost,
)
from pruning_env.budget import Budget, target_count, weight_costs
from pruning_env.layers import PrunableLayer

FEATURE_CLIP = 10.0
LOG_EPS = 1e-30  # floor of |score| before log10, so exact zeros stay finite
STATIC_FEATURES: tuple[str, ...] = (
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
)
TARGET_FEATURES: tuple[str, ...] = ("target_sparsity", "er_density", "erk_density")
PROXY_FEATURES: tuple[str, ...] = ("mass", "density", "mean", "std")


def feature_names(proxies: Sequence[str]) -> list[str]:
    """Names of the observation's entries, in order, for the given proxies."""
    proxy_part = [f"{proxy}_{stat}" for proxy in proxies for stat in PROXY_FEATURES]
    return [*STATIC_FEATURES, *TARGET_FEATURES, *proxy_part]


def static_features(layers: Sequence[PrunableLayer]) -> np.ndarray:
    """Features fixed by the architecture alone, shape ``(L, len(STATIC_FEATURES))`` float64."""
    num_layers = len(layers)
    total_weights = sum(layer.num_weights for layer in layers)
    total_flops = max(sum(layer.flops for layer in layers), 1)
    rows = []
    for layer in layers:
        kernel_volume = math.prod(layer.kernel_size) if layer.kernel_size else 1
        rows.append(
            [
                layer.index / max(num_layers - 1, 1),
                float(layer.index == 0),
                float(layer.index == num_layers - 1),
                float(layer.kind != "linear"),
                math.log10(layer.fan_in) / 4,
                math.log10(layer.fan_out) / 4,
                math.log10(kernel_volume) / 2,
                math.log2(max(layer.stride, default=1)),
                math.log10(layer.num_weights) / 7,
                layer.num_weights / total_weights,
                layer.flops / total_flops,
            ]
        )
    return np.asarray(rows, dtype=np.float64)


@dataclass(frozen=True)
class ProxySummary:
    """What the observation needs of one proxy's scores on one initialization (computed once per instance)."""

    stats: np.ndarray
    """``(L, 3)``: mass share, z-scored mean log-score, relative std of log-scores per layer."""
    ranking: torch.Tensor
    """``allocation.global_ranking`` of the scores (per MAC under a FLOPs budget): the layer of every weight,
    most important first."""
    budget: Budget = "weights"
    """The budget the ranking is for."""


def summarize_proxy(
    layers: Sequence[PrunableLayer], scores: Mapping[str, torch.Tensor], budget: Budget = "weights"
) -> ProxySummary:
    """Per-layer statistics and the global ranking of one proxy's per-weight scores (per MAC for "flops")."""
    magnitudes = [scores[layer.name].detach().abs().double().flatten() for layer in layers]
    mass = torch.stack([m.sum() for m in magnitudes])
    mass_share = mass / mass.sum() if mass.sum() > 0 else torch.full_like(mass, 1 / len(layers))
    logs = [torch.log10(m.clamp_min(LOG_EPS)) for m in magnitudes]
    all_logs = torch.cat(logs)
    global_mean, global_std = all_logs.mean(), all_logs.std(correction=0).clamp_min(1e-12)
    means = torch.stack([(log.mean() - global_mean) / global_std for log in logs])
    stds = torch.stack([log.std(correction=0) / global_std for log in logs])
    stats = torch.stack([mass_share, means, stds], dim=1).cpu().numpy()
    ordered = {layer.name: scores[layer.name] for layer in layers}
    return ProxySummary(stats, global_ranking(scores_per_cost(ordered, weight_costs(layers, budget))), budget)


def _proxy_columns(
    summary: ProxySummary, sizes: np.ndarray, goal: int, costs: np.ndarray | None
) -> np.ndarray:
    """The ``PROXY_FEATURES`` of one proxy at the target count ``goal`` of the budget, shape ``(L, 4)``."""
    pruned = ranking_counts(summary.ranking, len(sizes), goal, costs)
    density = 1.0 - np.asarray(pruned) / sizes
    stats = summary.stats
    return np.column_stack([stats[:, 0], density, stats[:, 1], stats[:, 2]])


def observation_matrix(
    layers: Sequence[PrunableLayer],
    static: np.ndarray,
    summaries: Sequence[ProxySummary],
    target_sparsity: float,
    budget: Budget = "weights",
) -> np.ndarray:
    """All features, shape ``(L, len(feature_names(proxies)))``, float32, finite, clipped to ±FEATURE_CLIP.

    Args:
        layers: the network's prunable layers in forward order.
        static: ``static_features(layers)`` (computed once per network).
        summaries: ``summarize_proxy`` of each proxy of the observation under ``budget``, in order.
        target_sparsity: the global target in [0, 1): the fraction of the budget's cost removed.
        budget: ``"weights"`` or ``"flops"`` (see the module docstring).

    Raises:
        ValueError: if a summary was made for another budget, or the target is infeasible under the budget.
    """
    stale = [index for index, summary in enumerate(summaries) if summary.budget != budget]
    if stale:
        raise ValueError(f"summaries {stale} rank for another budget than {budget!r}: summarize_proxy(..., budget)")
    sizes = np.array([layer.num_weights for layer in layers], dtype=np.float64)
    target = np.column_stack(
        [
            np.full(len(layers), target_sparsity),
            1.0 - erdos_renyi(layers, target_sparsity, budget),
            1.0 - erdos_renyi_kernel(layers, target_sparsity, budget),
        ]
    )
    goal = target_count(int(layer_costs(layers, budget).sum()), target_sparsity)
    costs = weight_costs(layers, budget)
    parts = [static, target, *(_proxy_columns(summary, sizes, goal, costs) for summary in summaries)]
    matrix = np.nan_to_num(np.concatenate(parts, axis=1), nan=0.0, posinf=FEATURE_CLIP, neginf=-FEATURE_CLIP)
    return np.clip(matrix, -FEATURE_CLIP, FEATURE_CLIP).astype(np.float32)
