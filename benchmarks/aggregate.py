"""Aggregate scores of a suite with rliable (Agarwal et al. 2021): interval estimates over (task, target, seed) runs.

Normalised score of a run (one controller on one cell = task, target, init seed):

    score = (test accuracy - chance) / (best known accuracy of the cell - chance)

with chance = 1 / classes and the best known accuracy the mean over training seeds of the cell's best known plan
(``benchmarks.best_known``): 0 is a network at chance, 1 the best plan known for that cell. rliable's tasks are the
(task, target) pairs, its runs the init seeds; intervals are 95% stratified-bootstrap intervals (runs resampled
within each task), reproducible (``BOOTSTRAP_SEED``).

    scores, regrets = score_matrices(suite, records, best_known)      # controller -> (seeds, cells) arrays
    print(aggregate_table(scores, regrets, best_heuristic(scores)))
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import fixed_target, kind_of
from benchmarks.best_known import BestKnown, schedule_of
from benchmarks.plots import Panel, Series, save_lines
from benchmarks.suites import Suite

BOOTSTRAP_SEED = 0
"""Seed of the bootstrap's resampling (the same records give the same intervals)."""
REPS = 2000
"""Bootstrap replications (rliable's probability of improvement costs about 1 ms per replication and cell)."""
PROFILE_TAUS = np.linspace(0.0, 1.1, 111)
"""Score thresholds of the performance profile."""
ZOOM_TAU = 0.85
"""Left edge of the profile's zoomed panel, where the competitive controllers part."""


def score_matrices(suite: Suite, records: Sequence[dict[str, Any]], best: BestKnown
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per controller the normalised scores and the regrets (best known accuracy minus the run's, in points),
    both ``(seeds, cells)`` with cells the suite's (task, target) pairs in order. Only controllers with a run in
    every cell and seed, and only cells with a best known plan, take part."""
    cells = [(task, target) for task in suite.tasks for target in suite.sparsities
             if all(best.get(task, target, seed, schedule_of(task, suite.final_steps)) for seed in suite.seeds)]
    runs = {(r["task"], r["controller"], r["target_sparsity"], r["seed"]): r for r in records}
    scores, regrets = {}, {}
    for controller in suite.controllers:
        if fixed_target(controller) is not None or not cells:
            continue
        keys = [[(task, controller, target, seed) for task, target in cells] for seed in suite.seeds]
        if not all(key in runs for row in keys for key in row):
            continue
        score, regret = np.zeros((len(suite.seeds), len(cells))), np.zeros((len(suite.seeds), len(cells)))
        for i, row in enumerate(keys):
            for j, (task, _, target, seed) in enumerate(row):
                run = runs[(task, controller, target, seed)]
                known = best.get(task, target, seed, schedule_of(task, suite.final_steps))["mean"]  # type: ignore[index]
                chance = 1.0 / run["num_classes"]
                score[i, j] = (run["test_accuracy"] - chance) / (known - chance)
                regret[i, j] = 100 * (known - run["test_accuracy"])
        scores[controller], regrets[controller] = score, regret
    return scores, regrets


def best_heuristic(scores: Mapping[str, np.ndarray], kinds: Mapping[str, str] | None = None) -> str | None:
    """The heuristic (``agents.base.kind_of``, with the ``kinds`` recorded by the run) with the highest mean
    normalised score (the comparison every other row is paired with)."""
    heuristics = [name for name in scores if kind_of(name, kinds) == "heuristic"]
    return max(heuristics, key=lambda name: float(scores[name].mean()), default=None)


# rliable's metrics, computed without its per-call overheads (scipy's wrappers, one Python call per threshold): the
# bootstrap calls them once per replication and row, thousands of times per report. Each gives the same float as
# rliable's, bit for bit (tests/test_aggregate.py), so the intervals do not change. rliable itself (its bootstrap)
# is imported only where a report is made: importing this module, as every benchmark worker process does through
# ``benchmarks.run``, costs no arch and scipy.stats.


def interquartile_mean(scores: np.ndarray) -> float:
    """``rliable.metrics.aggregate_iqm``: scipy's ``trim_mean(scores, 0.25, axis=None)``, the same partition and mean."""
    flat = np.asarray(scores, dtype=np.float64).reshape(-1)
    low = int(0.25 * flat.size)
    high = flat.size - low
    return np.mean(np.partition(flat, (low, high - 1))[low:high])


def mean_of_task_means(scores: np.ndarray) -> float:
    """``rliable.metrics.aggregate_mean``: the mean over tasks (columns) of the mean over runs (rows)."""
    return np.mean(np.mean(scores, axis=0, keepdims=False), axis=0)


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """``rliable.metrics.probability_of_improvement``: per task the Mann-Whitney U of x over y (pairs where x is
    higher, ties counting one half: the exact value scipy's rank sum gives) over the pairs, 0.5 for identical
    columns; the mean over tasks."""
    x, y = np.asarray(scores_x), np.asarray(scores_y)
    pairs = x.shape[0] * y.shape[0]
    probabilities = []
    for task in range(x.shape[1]):
        if np.array_equal(x[:, task], y[:, task]):
            probabilities.append(0.5)
            continue
        above = x[:, task, None] > y[None, :, task]
        ties = x[:, task, None] == y[None, :, task]
        probabilities.append((float(np.count_nonzero(above)) + 0.5 * float(np.count_nonzero(ties))) / pairs)
    return np.mean(probabilities)


def score_distribution(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """``rliable.library.score_distributions``: per threshold tau the fraction of all runs scoring above it."""
    flat = np.asarray(scores).reshape(-1)
    return np.count_nonzero(flat[None, :] > np.asarray(taus)[:, None], axis=1) / flat.size


@contextlib.contextmanager
def seeded_bootstrap() -> Iterator[None]:
    """rliable's stratified bootstrap draws its indices from numpy's global generator (not from the
    ``random_state`` it passes on): seed it with ``BOOTSTRAP_SEED`` and restore the caller's state after."""
    state = np.random.get_state()
    np.random.seed(BOOTSTRAP_SEED)
    try:
        with warnings.catch_warnings():  # rliable 1.2 hands arch the RandomState that arch 7 deprecates
            warnings.filterwarnings("ignore", "random_state is deprecated", FutureWarning)
            yield
    finally:
        np.random.set_state(state)


def _estimates(matrices: Mapping[str, Any], function: Any, reps: int
               ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    from rliable import library as rly  # imported when a report is made: 2 s of imports (arch, scipy.stats)

    with seeded_bootstrap():
        return rly.get_interval_estimates(matrices, function, reps=reps)


def aggregate_table(scores: Mapping[str, np.ndarray], regrets: Mapping[str, np.ndarray], baseline: str | None,
                    reps: int = REPS, kinds: Mapping[str, str] | None = None) -> str:
    """Markdown: per controller IQM and mean normalised score, mean regret (points) and, for every controller
    that is not a heuristic, the probability of improvement over ``baseline``, each with its 95%
    stratified-bootstrap interval (``reps`` replications); rows by IQM."""
    if not scores:
        return "(no controller has a run in every cell with a best known plan: no aggregate)\n"

    def both(matrix: np.ndarray) -> np.ndarray:
        return np.array([interquartile_mean(matrix), mean_of_task_means(matrix)])

    points, intervals = _estimates(scores, both, reps)
    regret_points, regret_intervals = _estimates(regrets, lambda m: np.array([mean_of_task_means(m)]), reps)
    others = [name for name in scores if name != baseline and kind_of(name, kinds) in ("searcher", "learner")]
    improvement, improvement_intervals = ({}, {}) if baseline is None or not others else _estimates(
        {name: (scores[name], scores[baseline]) for name in others}, probability_of_improvement, reps)
    lines = ["| controller | IQM score | mean score | mean regret (points) | "
             f"P(improvement over {baseline}) |", "|---|---|---|---|---|"]
    for name in sorted(scores, key=lambda n: -points[n][0]):
        low, high = intervals[name][0], intervals[name][1]
        chance = "–" if name not in improvement else (
            f"{float(improvement[name]):.2f} [{improvement_intervals[name][0][0]:.2f}, "
            f"{improvement_intervals[name][1][0]:.2f}]")
        lines.append(
            f"| {name} | {points[name][0]:.3f} [{low[0]:.3f}, {high[0]:.3f}] | {points[name][1]:.3f} [{low[1]:.3f}, "
            f"{high[1]:.3f}] | {regret_points[name][0]:.2f} [{regret_intervals[name][0][0]:.2f}, "
            f"{regret_intervals[name][1][0]:.2f}] | {chance} |")
    return "\n".join(lines) + "\n"


def aggregate_caption(suite: Suite, cells: int) -> str:
    return (
        f"Aggregate over {cells} (task, target) cells x {len(suite.seeds)} seeds with rliable: normalised score = "
        "(test accuracy - chance) / (best known accuracy of the cell - chance), 1 = the best plan known for that "
        "cell (the best of every controller's plans and the oracle study's, `python -m benchmarks.studies.oracle`, each "
        "re-trained with 3 training seeds, `best_known.jsonl`); IQM = interquartile mean over all runs; "
        "regret = best known accuracy minus the run's; P(improvement) = probability that a run of the row scores "
        "above a run of the best heuristic on the same cell. Brackets: 95% stratified-bootstrap intervals "
        f"({REPS} replications; P(improvement) only for rows that are not heuristics); a row is ahead only where its interval clears the other's.\n"
    )


def save_profile(scores: Mapping[str, np.ndarray], path: Path, title: str, reps: int = REPS) -> None:
    """Performance profile: the fraction of runs with a normalised score above tau, with its 95% band."""
    from rliable import library as rly

    with seeded_bootstrap():
        profiles, bands = rly.create_performance_profile(dict(scores), PROFILE_TAUS, reps=reps,
                                                         custom_profile_func=score_distribution)
    order = sorted(scores, key=lambda n: -float(np.mean(profiles[n])))
    series = [Series(name, list(PROFILE_TAUS), list(profiles[name]), markers=False,
                     band=(list(bands[name][0]), list(bands[name][1]))) for name in order]
    label, ylabel = "normalised score tau (1 = best known plan of the cell)", "fraction of runs with score > tau"
    save_lines(path, [Panel(title, label, ylabel, series, ylim=(0.0, 1.02)),
                      Panel(f"{title}: zoom on tau >= {ZOOM_TAU:g}", label, ylabel, series, ylim=(0.0, 1.02),
                            xlim=(ZOOM_TAU, float(PROFILE_TAUS[-1])))],
               legend_outside=True, note="Shaded: 95% stratified-bootstrap band. Higher and further right is better.")
