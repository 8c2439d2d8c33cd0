"""Sensitivity analysis (Han et al. 2015): prune each layer alone, see how much it hurts, allocate by tolerance.

For every layer l and every level s of ``LEVELS`` the episode's network is pruned in layer l alone (the env's
within-layer masks, every other layer dense) and read by the env's own reward evaluator (its fidelity: after
training one forward pass, at initialization its K steps); the layer's drop at s is the dense network's validation
accuracy minus that one. With a tolerance τ each layer may take the highest sparsity whose drop (interpolated
linearly between levels, non-decreasing in s) stays within τ; τ is bisected to the least tolerance whose
sparsities prune at least the target's share of the budget (weights or MACs; a flat stretch of a layer's drops can
overshoot it), and the env's projection meets the target exactly.

It pays ``L x len(LEVELS) + 1`` reward evaluations per instance (cached), outside any benchmark budget: about a
tenth of a second on the trained mlp-digits (``prune_at="trained"``, ``reward_steps=0``), where it belongs, and a few
seconds at initialization.
"""

from __future__ import annotations

import numpy as np

from agents.base import Actions, Observations, register_controller, to_actions
from pruning_env.allocation import layer_costs
from pruning_env.masking import masks_from_orders
from pruning_env.parallel import PruningEnv

LEVELS: tuple[float, ...] = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 1.0)
"""Sparsities each layer is probed at (0: the dense network, 1: the layer emptied)."""
BISECTION_STEPS = 60


@register_controller("sensitivity")
class SensitivityController:
    """Per-layer sensitivity allocation; see the module docstring.

    Args:
        env: the ``PruningEnv`` whose episodes it acts on (it reads the running episode's instance and masks).
        seed: unused (the allocation is deterministic); for the registry's signature.
    """

    name = "sensitivity"
    kind = "heuristic"
    accepts_pool = False
    accepts_on_update = False
    budget_unit = "evaluations"

    def __init__(self, env: PruningEnv, seed: int = 0) -> None:
        if not isinstance(getattr(env, "current", None), PruningEnv):
            raise ValueError(f"sensitivity needs a PruningEnv (it probes the episode's network), got {type(env).__name__}")
        self.env = env
        self._drops: dict[int, np.ndarray] = {}  # init seed -> (L, len(LEVELS)) accuracy drops

    def drops(self) -> np.ndarray:
        """The running episode's accuracy drops ``(L, len(LEVELS))`` (in [-1, 1]; the first column is 0)."""
        env = self.env.current
        seed = env.instance.init_seed
        if seed not in self._drops:
            orders = env.mask_orders()
            shapes = {layer.name: layer.weight_shape for layer in env.layers}
            dense = {layer.name: 0 for layer in env.layers}
            masks = [masks_from_orders(orders, shapes, dense)]
            for layer in env.layers:
                for level in LEVELS[1:]:
                    masks.append(masks_from_orders(orders, shapes, {**dense, layer.name: round(level * layer.num_weights)}))
            runs = env.reward_evaluator.evaluate_many(env.instance.state, masks, seed)
            accuracy = np.array([run.accuracy for _, run in runs])
            probed = accuracy[0] - accuracy[1:].reshape(len(env.layers), len(LEVELS) - 1)
            self._drops[seed] = np.maximum.accumulate(np.hstack([np.zeros((len(env.layers), 1)), probed]), axis=1)
        return self._drops[seed]

    def allocation(self, target: float) -> np.ndarray:
        """Per-layer sparsities ``(L,)``: each layer's highest sparsity within the tolerance that meets ``target``."""
        env = self.env.current
        drops = self.drops()
        costs = layer_costs(env.layers, env.config.budget).astype(float)

        def tolerated(tau: float) -> np.ndarray:
            return np.array([tolerated_sparsity(row, tau) for row in drops])

        low, high = -1e-9, float(drops.max()) + 1e-9
        for _ in range(BISECTION_STEPS):
            tau = (low + high) / 2
            if (tolerated(tau) * costs).sum() >= target * costs.sum():
                high = tau
            else:
                low = tau
        return tolerated(high)

    def act(self, observations: Observations, infos: dict[str, dict[str, float]]) -> Actions:
        """The allocation at the episode's target (read from ``infos``)."""
        target = float(next(iter(infos.values()))["target_sparsity"])
        return to_actions(self.allocation(target))


def tolerated_sparsity(drops: np.ndarray, tau: float) -> float:
    """The highest sparsity whose drop stays within ``tau``: ``drops`` ``(len(LEVELS),)`` non-decreasing, linear
    between levels."""
    within = np.flatnonzero(drops <= tau)
    if not len(within):
        return 0.0
    i = int(within[-1])
    if i == len(LEVELS) - 1:
        return 1.0
    step = drops[i + 1] - drops[i]
    return LEVELS[i] + (LEVELS[i + 1] - LEVELS[i]) * (tau - drops[i]) / step
