"""Heuristic controllers: every layer requests the sparsity a reference allocation gives it, read from its observation.

The env's observation carries, per layer, the density each reference allocation gives that layer at the episode's
target (``pruning_env.features``). A heuristic controller requests ``1 - density`` (or the target itself for
uniform), so it needs nothing but the observation and the column names, and it works through any wrapper or library
that passes the observation on unchanged.

| controller        | reference | observation column   | allocation (``pruning_env.allocation``)          |
|-------------------|-----------|----------------------|--------------------------------------------------|
| uniform           | uniform   | target_sparsity      | every layer at the target                        |
| er                | er        | er_density           | Erdos-Renyi (SET): density ∝ (d0 + d1) / (d0 x d1), first two weight dims |
| erk               | erk       | erk_density          | Erdos-Renyi-Kernel (RigL): density ∝ sum(shape) / prod(shape) |
| lamp              | lamp      | lamp_density         | global top-k of LAMP scores (needs the "lamp" proxy)      |
| global_magnitude  | magnitude | magnitude_density    | global top-k of |θ|                               |
| global_snip       | snip      | snip_density         | global top-k of SNIP scores                      |
| global_grasp      | grasp     | grasp_density        | global top-k of GraSP scores                     |
| global_synflow    | synflow   | synflow_density      | global top-k of SynFlow scores                   |
| random            | —         | —                    | independent uniform sparsities in [0, 1] per layer (seeded) |

The env projects every request onto the exact global budget, which absorbs the float32 rounding of the observation:
through the env a reference plan prunes exactly the counts of the pure allocation function, except where the global
ranking empties a layer (the env keeps at least one weight per layer and moves the difference to other layers).
Under ``budget="flops"`` the same columns hold the compute-aware references (uniform compute, ER/ERK rescaled to the
MAC target, global rankings of score per MAC; ``pruning_env.features``), so the controllers are unchanged; there
the env applies the pure allocation (``allocation.<name>(layers, target, "flops")``) up to a few weights per layer.
Actions are continuous sparsities: build the env with ``action_type="continuous"`` (the default).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np

from agents.base import Actions, Observations, register_controller, stacked, to_actions

REFERENCE_HEURISTICS: dict[str, str] = {
    "uniform": "uniform",
    "er": "er",
    "erk": "erk",
    "lamp": "lamp",
    "global_magnitude": "magnitude",
    "global_snip": "snip",
    "global_grasp": "grasp",
    "global_synflow": "synflow",
}
"""Controller name -> the reference allocation it requests."""


def reference_column(reference: str) -> str:
    """The observation column holding ``reference``'s allocation: ``"target_sparsity"`` for uniform, else the
    ``"<reference>_density"`` column (``"erk_density"``, ``"snip_density"``, ...)."""
    return "target_sparsity" if reference == "uniform" else f"{reference}_density"


def reference_index(feature_names: Sequence[str], reference: str) -> int:
    """Index of ``reference``'s column in the observation.

    Raises:
        ValueError: if the env's observation has no such column; the message says how to enable it.
    """
    column = reference_column(reference)
    if column not in feature_names:
        raise ValueError(
            f"reference allocation {reference!r} needs the observation feature {column!r}, which this env does "
            f"not compute; build the env with {reference!r} among its proxies, e.g. "
            f"proxies=(..., {reference!r}) (known references: 'uniform', 'er', 'erk' or any proxy name)"
        )
    return list(feature_names).index(column)


def reference_sparsities(matrix: np.ndarray, feature_names: Sequence[str], reference: str) -> np.ndarray:
    """Per-layer sparsities ``(L,)`` float64 in [0, 1] of ``reference``, from the stacked observation ``(L, F)``."""
    values = matrix[:, reference_index(feature_names, reference)].astype(np.float64)
    sparsities = values if reference == "uniform" else 1.0 - values
    return np.clip(sparsities, 0.0, 1.0)


class ReferenceController:
    """Requests the sparsities of one reference allocation (see the module table).

    Args:
        env: the env (anything with ``feature_names``, e.g. ``PruningEnv`` or ``PruningControllerEnv``).
        reference: ``"uniform"``, ``"er"``, ``"erk"`` or a proxy name whose ``<proxy>_density`` is observed.
        name: the controller's name (defaults to ``reference``).
        seed: unused (the allocation is deterministic); for the registry's signature.
    """

    kind = "heuristic"
    accepts_pool = False
    accepts_on_update = False
    budget_unit = "evaluations"

    def __init__(self, env: object, reference: str, name: str | None = None, seed: int = 0) -> None:
        self.name = reference if name is None else name
        self.reference = reference
        self.feature_names = list(env.feature_names)  # type: ignore[attr-defined]
        reference_index(self.feature_names, reference)  # fail at construction, not at the first act()

    def act(self, observations: Observations, infos: dict[str, dict[str, float]]) -> Actions:
        return to_actions(reference_sparsities(stacked(observations), self.feature_names, self.reference))


class RandomController:
    """Requests independent uniform sparsities in [0, 1] for every layer (the env projects them to the budget).

    Args:
        env: the env (unused; for the registry's signature).
        seed: seed of the ``numpy`` Generator; the same seed gives the same sequence of plans.
    """

    name = "random"
    kind = "heuristic"
    accepts_pool = False
    accepts_on_update = False
    budget_unit = "evaluations"

    def __init__(self, env: object, seed: int | None = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, observations: Observations, infos: dict[str, dict[str, float]]) -> Actions:
        return to_actions(self.rng.uniform(0.0, 1.0, size=len(observations)))


for _name, _reference in REFERENCE_HEURISTICS.items():
    register_controller(_name)(partial(ReferenceController, reference=_reference, name=_name))
register_controller("random")(RandomController)
