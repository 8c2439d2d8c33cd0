"""The plan pipeline: requested per-layer sparsities -> exact budget -> masks, and the result of evaluating a plan.

One function serves every place that applies a plan (``PruningEnv.step``, ``PruningEnv.evaluate_plan``,
``benchmarks.final_accuracy.FinalEvaluator``, ``benchmarks.studies.env_speed``):

    requests ``(L,)`` --clip_requests--> sparsities in [0, 1] --prune_plan--> pruned counts (the global target of
    the budget: exact in weights, or within half a weight's MACs of it under a FLOPs budget; every layer keeps a
    weight, order kept) and within-layer top-k masks from the instance's importance orders.

``EpisodeResult`` is the one record of a plan the env evaluated: what was asked, what was applied, what it earned
(a final evaluation has its own, ``benchmarks.final_accuracy.FinalResult``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pruning_env.budget import Budget, project_to_budget, weight_costs
from pruning_env.compute import TrainResult
from pruning_env.layers import PrunableLayer, macs_per_weight
from pruning_env.masking import masks_from_orders


@dataclass(frozen=True)
class PrunedPlan:
    """A plan applied to one network at one target."""

    requested: np.ndarray
    """Requested sparsity per layer ``(L,)`` float64, in [0, 1] (after clipping)."""
    clipped: np.ndarray
    """``(L,)`` float64: 1 where the request lay outside [0, 1] and was clipped, else 0."""
    pruned_counts: np.ndarray
    """Weights pruned per layer ``(L,)`` int64; they meet the budget (``budget.project_to_budget``): under
    ``"weights"`` they sum to ``budget.target_count(total, target)``."""
    sizes: np.ndarray
    """Weights per layer ``(L,)`` int64."""
    macs_per_weight: np.ndarray
    """Multiply-accumulates per sample of one weight per layer ``(L,)`` int64 (``layers.macs_per_weight``)."""
    masks: dict[str, torch.Tensor]
    """Layer name -> bool mask shaped like the weight, True = kept."""

    @property
    def applied(self) -> np.ndarray:
        """Applied sparsity per layer ``(L,)`` float64: pruned / size."""
        return self.pruned_counts / self.sizes

    @property
    def global_sparsity(self) -> float:
        """Pruned fraction of all prunable weights (the target, to the weight, under the weight budget)."""
        return float(self.pruned_counts.sum() / self.sizes.sum())

    @property
    def flops_reduction(self) -> float:
        """Pruned fraction of the prunable layers' multiply-accumulates per sample (0 if they have none)."""
        total = int(self.macs_per_weight @ self.sizes)
        return float(int(self.macs_per_weight @ self.pruned_counts) / total) if total else 0.0


def clip_requests(values: Sequence[float] | np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Requests ``(L,)`` clipped into [0, 1], and a 0/1 flag per layer for the clipped ones.

    Raises:
        ValueError: if a request is NaN or infinite (the message names the agent or layer in ``names``).
    """
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (len(names),):
        raise ValueError(f"sparsities must have shape ({len(names)},) (one requested sparsity per layer), got {array.shape}")
    bad = [name for name, value in zip(names, array, strict=True) if not np.isfinite(value)]
    if bad:
        raise ValueError(f"requested sparsities must be finite (in [0, 1]); not finite for {bad}")
    requested = np.clip(array, 0.0, 1.0)
    return requested, (requested != array).astype(np.float64)


def prune_plan(
    values: Sequence[float] | np.ndarray,
    layers: Sequence[PrunableLayer],
    target_sparsity: float,
    orders: Mapping[str, torch.Tensor],
    names: Sequence[str] | None = None,
    *,
    budget: Budget = "weights",
) -> PrunedPlan:
    """Apply requests ``(L,)`` to a network at a target: clip, project onto the budget, cut the masks.

    Args:
        values: requested sparsity per layer, in layer order (finite; clipped into [0, 1]).
        layers: the network's prunable layers in forward order.
        target_sparsity: the global target in [0, 1): the fraction of the budget's cost to prune.
        orders: layer name -> ``masking.importance_order`` of the within-layer scorer's scores on the instance.
        names: how errors name the layers (the env passes its agent names); layer names when None.
        budget: ``"weights"`` (the target is a fraction of the weights) or ``"flops"`` (of the layers' MACs per
            sample); see ``pruning_env.budget``.

    Raises:
        ValueError: for a non-finite request, a wrong shape, or a target the budget cannot meet while every layer
            keeps a weight.
    """
    requested, clipped = clip_requests(values, [layer.name for layer in layers] if names is None else names)
    sizes = np.array([layer.num_weights for layer in layers], dtype=np.int64)
    counts = project_to_budget(requested, sizes, target_sparsity, min_kept=1, costs=weight_costs(layers, budget))
    masks = masks_from_orders(
        orders,
        {layer.name: layer.weight_shape for layer in layers},
        {layer.name: int(count) for layer, count in zip(layers, counts, strict=True)},
    )
    return PrunedPlan(requested, clipped, np.asarray(counts, dtype=np.int64), sizes, macs_per_weight(layers), masks)


@dataclass(frozen=True)
class EpisodeResult:
    """One evaluated plan: the episode's instance, the plan as asked and as applied, and what it earned."""

    seed: int
    """Reset seed of the episode."""
    init_seed: int
    """Seed of the initialization θ0 the plan pruned."""
    target_sparsity: float
    """The episode's global target (a fraction of the weights, or of the MACs under a FLOPs budget)."""
    requested: np.ndarray
    """Requested sparsity per layer ``(L,)``, clipped into [0, 1]."""
    applied: np.ndarray
    """Applied sparsity per layer ``(L,)`` after the budget projection."""
    pruned_counts: np.ndarray
    """Weights pruned per layer ``(L,)`` int64."""
    global_sparsity: float
    """Pruned fraction of all prunable weights."""
    flops_reduction: float
    """Pruned fraction of the prunable layers' multiply-accumulates per sample."""
    reward: float
    """The team reward."""
    accuracy: float
    """Accuracy in [0, 1] of the reward's evaluation (the validation subset); NaN for the zero-cost reward."""
    loss: float
    """Cross-entropy (nats) of that evaluation; NaN for the zero-cost reward, ``inf`` when diverged."""
    diverged: bool
    """The training's loss was not finite (the reward is then the lowest value of its kind)."""
    seconds: float
    """Wall time of the reward (training plus evaluation)."""
    source: int = 0
    """Index of the env source in an evaluation pool (0 for a single env)."""
    effective_sparsity: float = math.nan
    """Fraction of all prunable weights pruned or dead (on no input-output path through kept weights;
    ``pruning_env.effective``), >= ``global_sparsity``; NaN where not computed."""
    reset_seconds: float = math.nan
    """Wall time of the env's reset that began the episode; NaN outside the env."""
    step_seconds: float = math.nan
    """Wall time of the env's step (``evaluate_plans``: the call's time per episode, resets included); NaN
    outside the env."""
    cost: int = 0
    """Compute of the reward in sample-steps (``pruning_env.fidelity.evaluation_cost``); 0 outside the env."""

    @classmethod
    def of(cls, pruned: PrunedPlan, run: TrainResult, reward: float, seed: int, init_seed: int,
           target_sparsity: float, *, effective_sparsity: float = math.nan) -> EpisodeResult:
        """The result of the plan ``pruned`` whose training ``run`` earned ``reward``; ``effective_sparsity`` of
        its masks when known (``pruning_env.effective.ConnectivityProbe.effective_sparsity``)."""
        return cls(
            seed=seed, init_seed=init_seed, target_sparsity=target_sparsity, requested=pruned.requested,
            applied=pruned.applied, pruned_counts=pruned.pruned_counts, global_sparsity=pruned.global_sparsity,
            flops_reduction=pruned.flops_reduction,
            reward=reward, accuracy=run.accuracy, loss=run.loss, diverged=run.diverged,
            seconds=run.train_seconds + run.eval_seconds, effective_sparsity=effective_sparsity,
        )
