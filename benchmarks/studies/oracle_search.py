"""The two black-box searches of the oracle study, over per-layer sparsities with an expensive objective.

- ``cma_search``: CMA-ES (pycma) in logit-offset space around a start plan (``agents.plan_search.offset_plans``:
  x = 0 is the start); the env's projection puts every plan on the budget.
- ``level_search``: an evolutionary search over discrete per-layer levels in the style of EvoPress (Sieberling et
  al., ICML 2025): a plan is an integer number of budget units kept per layer, summing to the budget; an offspring
  moves units from one layer to another (1, 2 or 4 units, 1-3 moves), so every plan keeps the budget exactly
  (before the env's rounding to whole weights); (1 + λ) selection keeps the parent unless an offspring scores at
  least as well.

Both call ``objective(plans (N, L)) -> scores (N,)`` (higher is better) once per generation, so a generation's plans
are evaluated together, and stop after ``evaluations`` plans or when the best score has not improved for
``patience`` plans (its convergence curve is flat). Both are deterministic for a seed and a deterministic objective,
so a resumed study replays its searches from the stored evaluations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from agents.plan_search import offset_plans

Objective = Callable[[np.ndarray], np.ndarray]
"""Plans ``(N, L)`` of sparsities -> their scores ``(N,)``, higher is better."""

UNITS_PER_LAYER = 16
"""``level_search``'s budget unit: the kept budget divided by ``UNITS_PER_LAYER`` times the number of layers."""


@dataclass
class Trace:
    """What a search evaluated, in order: the plans ``(N, L)`` and their scores ``(N,)``."""

    method: str
    plans: list[list[float]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def add(self, plans: np.ndarray, scores: np.ndarray) -> None:
        self.plans += np.asarray(plans, dtype=float).tolist()
        self.scores += np.asarray(scores, dtype=float).tolist()

    @property
    def best(self) -> tuple[list[float], float]:
        """The best plan evaluated and its score (the first of equal ones)."""
        index = int(np.argmax(self.scores))
        return self.plans[index], self.scores[index]

    def best_so_far(self) -> list[float]:
        """The running maximum of the scores ``(N,)``: the convergence curve."""
        return np.maximum.accumulate(self.scores).tolist() if self.scores else []

    def flat_for(self, patience: int) -> bool:
        """True when the last ``patience`` evaluations did not raise the best score."""
        curve = self.best_so_far()
        return len(curve) > patience and curve[-1] <= curve[-1 - patience]


def cma_search(objective: Objective, start: np.ndarray, evaluations: int, popsize: int = 8, sigma: float = 0.5,
               seed: int = 0, patience: int | None = None) -> Trace:
    """CMA-ES from the plan ``start`` ``(L,)`` (x0 = 0 in logit offsets, step size ``sigma``); the start itself
    is the first evaluation. A last partial generation is evaluated, not told."""
    import cma  # about half a second to import: only where a search runs

    trace = Trace("cma_es")
    first = offset_plans(start, np.zeros((1, len(start))))
    trace.add(first, objective(first))
    strategy = cma.CMAEvolutionStrategy(np.zeros(len(start)), sigma,
                                        {"popsize": popsize, "seed": seed + 1, "verbose": -9})
    while len(trace.scores) < evaluations and not (patience and trace.flat_for(patience)):
        offsets = np.asarray(strategy.ask())
        count = min(popsize, evaluations - len(trace.scores))
        plans = offset_plans(start, offsets[:count])
        scores = objective(plans)
        trace.add(plans, scores)
        if count == popsize:
            strategy.tell(list(offsets), (-scores).tolist())
    return trace


def to_units(plan: np.ndarray, costs: np.ndarray, target: float) -> tuple[np.ndarray, float]:
    """A plan ``(L,)`` as integer units kept per layer (summing exactly to the budget's units) and the unit's size
    in cost (``costs`` ``(L,)``: each layer's total cost, weights or MACs; ``target``: the fraction removed)."""
    kept_total = (1.0 - target) * costs.sum()
    unit = kept_total / (UNITS_PER_LAYER * len(costs))
    total = UNITS_PER_LAYER * len(costs)
    capacity = np.floor(costs / unit).astype(int)
    units = np.minimum(np.floor((1.0 - np.asarray(plan)) * costs / unit).astype(int), capacity)
    remainder = (1.0 - np.asarray(plan)) * costs / unit - units
    for layer in np.argsort(-remainder):  # largest remainders first, then any layer with room
        if units.sum() >= total:
            break
        units[layer] += min(total - units.sum(), capacity[layer] - units[layer])
    return units, unit


def to_plan(units: np.ndarray, unit: float, costs: np.ndarray) -> np.ndarray:
    """The sparsities ``(L,)`` of integer ``units`` kept per layer, rounded to float32 like the env's actions."""
    return np.clip(1.0 - units * unit / costs, 0.0, 1.0).astype(np.float32).astype(np.float64)


def mutate(units: np.ndarray, capacity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1-3 moves of 1, 2 or 4 units from one layer to another with room; the sum of units is unchanged."""
    child = units.copy()
    for _ in range(rng.integers(1, 4)):
        amount = int(rng.choice([1, 2, 4]))
        donors = np.flatnonzero(child >= amount)
        receivers = np.flatnonzero(capacity - child >= amount)
        if len(donors) == 0 or len(receivers) == 0:
            continue
        donor = rng.choice(donors)
        receivers = receivers[receivers != donor]
        if len(receivers) == 0:
            continue
        child[donor] -= amount
        child[rng.choice(receivers)] += amount
    return child


def level_search(objective: Objective, start: np.ndarray, costs: np.ndarray, target: float, evaluations: int,
                 offspring: int = 8, seed: int = 0, patience: int | None = None) -> Trace:
    """(1 + ``offspring``) evolution over budget units from the plan ``start`` ``(L,)`` (rounded to units: the
    first evaluation); ``costs`` ``(L,)`` are the layers' total costs under the budget."""
    rng = np.random.default_rng(seed)
    units, unit = to_units(start, costs, target)
    capacity = np.floor(costs / unit).astype(int)
    trace = Trace("levels")
    first = to_plan(units, unit, costs)[None]
    parent_score = float(objective(first)[0])
    trace.add(first, np.array([parent_score]))
    while len(trace.scores) < evaluations and not (patience and trace.flat_for(patience)):
        count = min(offspring, evaluations - len(trace.scores))
        children = [mutate(units, capacity, rng) for _ in range(count)]
        plans = np.stack([to_plan(child, unit, costs) for child in children])
        scores = objective(plans)
        trace.add(plans, scores)
        best = int(np.argmax(scores))
        if scores[best] >= parent_score:
            units, parent_score = children[best], float(scores[best])
    return trace
