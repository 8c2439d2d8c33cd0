"""The best known plans (``benchmarks.best_known``) and the rliable aggregate (``benchmarks.aggregate``) on
hand-made records: which plan becomes a cell's best, the normalised scores and regrets, the intervals."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.aggregate import aggregate_table, best_heuristic, save_profile, score_matrices
from benchmarks.best_known import TRAIN_SEEDS, BestKnown, schedule_of
from benchmarks.suites import get_suite

SUITE = get_suite("quick", controllers=("dense", "uniform", "global_snip", "cma_es"), sparsities=(0.98, 0.99),
                  seeds=(0, 1, 2))
SCHEDULES = {"mlp-digits": schedule_of("mlp-digits", None)}


def cell(controller: str, target: float, seed: int, accuracy: float, plan: list[float]) -> dict:
    return {"task": "mlp-digits", "controller": controller, "target_sparsity": target, "seed": seed,
            "test_accuracy": accuracy, "requested": plan, "num_classes": 10, "suite": "quick"}


def trained(candidates: list[dict], accuracy: dict[int, float]) -> list[dict]:
    """The candidates' full trainings, with test accuracy ``accuracy[train_seed]``."""
    return [{**c, "test_accuracy": accuracy[c["train_seed"]]} for c in candidates]


def test_a_cells_best_plan_is_retrained_and_a_worse_candidate_never_replaces_it(tmp_path) -> None:
    best = BestKnown(tmp_path / "best_known.jsonl")
    cells = [cell("uniform", 0.99, 0, 0.80, [0.99] * 3), cell("cma_es", 0.99, 0, 0.90, [0.9, 0.99, 0.995]),
             cell("dense", 0.0, 0, 0.97, [0.0] * 3)]
    candidates = best.candidates(cells, SCHEDULES)
    assert [(c["controller"], c["train_seed"]) for c in candidates] == [("cma_es", s) for s in TRAIN_SEEDS]
    assert best.update(trained(candidates, {0: 0.88, 1: 0.86, 2: 0.87}), SCHEDULES)
    entry = BestKnown(tmp_path / "best_known.jsonl").get("mlp-digits", 0.99, 0, SCHEDULES["mlp-digits"])
    assert entry["controller"] == "cma_es" and entry["mean"] == pytest.approx(0.87)
    assert best.candidates(cells, SCHEDULES) == []  # tried plans are not trained again

    luckier = [*cells, cell("global_snip", 0.99, 0, 0.95, [0.95, 0.99, 0.99])]  # one lucky training
    second = best.candidates(luckier, SCHEDULES)
    assert best.update(trained(second, {0: 0.84, 1: 0.85, 2: 0.86}), SCHEDULES) == []
    entry = BestKnown(tmp_path / "best_known.jsonl").get("mlp-digits", 0.99, 0, SCHEDULES["mlp-digits"])
    assert entry["controller"] == "cma_es" and [c["controller"] for c in entry["candidates"]] == ["cma_es",
                                                                                                   "global_snip"]
    assert BestKnown(tmp_path / "best_known.jsonl").get("mlp-digits", 0.99, 0, schedule_of("mlp-digits", 60)) is None


def known_cells(tmp_path, known: float) -> BestKnown:
    best = BestKnown(tmp_path / "best_known.jsonl")
    seeds = [cell("uniform", t, s, 0.5, [t] * 3) for t in SUITE.sparsities for s in SUITE.seeds]
    best.update(trained(best.candidates(seeds, SCHEDULES), dict.fromkeys(TRAIN_SEEDS, known)), SCHEDULES)
    return best


def test_scores_are_normalised_between_chance_and_the_best_known_plan(tmp_path) -> None:
    best = known_cells(tmp_path, known=0.9)
    records = [cell(name, t, s, accuracy, [t] * 3) for t in SUITE.sparsities for s in SUITE.seeds
               for name, accuracy in (("uniform", 0.5), ("global_snip", 0.7 + 0.01 * s), ("cma_es", 0.9))]
    scores, regrets = score_matrices(SUITE, records, best)
    assert set(scores) == {"uniform", "global_snip", "cma_es"}  # dense (a fixed target) has no score
    assert scores["uniform"].shape == (3, 2) and np.allclose(scores["uniform"], 0.5)  # (0.5 - 0.1) / (0.9 - 0.1)
    assert np.allclose(scores["cma_es"], 1.0) and np.allclose(regrets["cma_es"], 0.0)
    assert np.allclose(regrets["global_snip"][:, 0], [20.0, 19.0, 18.0])
    assert best_heuristic(scores) == "global_snip"

    table = aggregate_table(scores, regrets, "global_snip", reps=200)
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert list(rows) == ["cma_es", "global_snip", "uniform"]  # by IQM
    assert rows["cma_es"].startswith("| cma_es | 1.000 [1.000, 1.000] | 1.000 [1.000, 1.000] | 0.00 [0.00, 0.00] | "
                                     "1.00 [1.00, 1.00] |")
    assert rows["uniform"].endswith("| – |") and rows["global_snip"].endswith("| – |")  # heuristics: no P
    assert aggregate_table(scores, regrets, "global_snip", reps=200) == table  # a seeded bootstrap

    save_profile(scores, tmp_path / "profile.png", "test", reps=200)
    assert (tmp_path / "profile.png").stat().st_size > 10_000


def test_a_controller_missing_a_run_and_a_cell_without_a_best_plan_are_left_out(tmp_path) -> None:
    best = known_cells(tmp_path, known=0.9)
    records = [cell("uniform", t, s, 0.5, [t] * 3) for t in SUITE.sparsities for s in SUITE.seeds]
    records += [cell("cma_es", 0.98, s, 0.9, [0.98] * 3) for s in SUITE.seeds]  # no run at 0.99
    scores, _ = score_matrices(SUITE, records, best)
    assert set(scores) == {"uniform"}
    scores, _ = score_matrices(SUITE, records, BestKnown(tmp_path / "none.jsonl"))
    assert scores == {}
    assert "no aggregate" in aggregate_table({}, {}, None)


def test_the_fast_metrics_equal_rliables_bit_for_bit() -> None:
    """``interquartile_mean``, ``mean_of_task_means``, ``probability_of_improvement`` and ``score_distribution`` give rliable's floats
    exactly (so the intervals are rliable's), on random matrices with the ties a bootstrap's resampling makes and
    on columns where both rows are identical."""
    from rliable import library as rly
    from rliable import metrics

    from benchmarks.aggregate import (
        PROFILE_TAUS,
        interquartile_mean,
        mean_of_task_means,
        probability_of_improvement,
        score_distribution,
    )

    rng = np.random.default_rng(0)
    for shape in [(1, 1), (1, 2), (3, 2), (5, 2), (5, 3), (4, 7), (10, 4)]:
        for levels in (3, 1000):  # few distinct values (many ties) and almost none
            x = rng.integers(0, levels, size=shape) / (levels - 1) * 1.2 - 0.05
            y = rng.integers(0, levels, size=shape) / (levels - 1) * 1.2 - 0.05
            y[:, 0] = x[:, 0]  # one identical column: P = 0.5 there
            assert interquartile_mean(x).tobytes() == np.float64(metrics.aggregate_iqm(x)).tobytes()
            assert mean_of_task_means(x).tobytes() == np.float64(metrics.aggregate_mean(x)).tobytes()
            assert (np.float64(probability_of_improvement(x, y)).tobytes()
                    == np.float64(metrics.probability_of_improvement(x, y)).tobytes())
            assert (np.float64(probability_of_improvement(y[:2], x)).tobytes()
                    == np.float64(metrics.probability_of_improvement(y[:2], x)).tobytes())
            assert score_distribution(x, PROFILE_TAUS).tobytes() == rly.score_distributions(x, PROFILE_TAUS).tobytes()
