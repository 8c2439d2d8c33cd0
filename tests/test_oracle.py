"""The oracle study: its searches improve their objective, its held-out seeds are never the search's, the headroom
interval is the paired t-interval, a resumed study trains nothing again, and the store records every training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.ground_truth import FIELDS, GroundTruth, key
from benchmarks.records import RecordFile
from benchmarks.studies import oracle
from benchmarks.studies.oracle_search import cma_search, level_search, to_plan, to_units
from benchmarks.study import drop_superseded


def peaked(optimum: np.ndarray):
    """A deterministic objective over plans (N, L): minus the squared distance to ``optimum``."""
    return lambda plans: -((np.asarray(plans) - optimum) ** 2).sum(axis=1)


def test_both_searches_improve_their_objective_over_the_start() -> None:
    start = np.array([0.85, 0.95, 0.98125, 0.95])  # on the budget: 4% of the costs below kept
    optimum = np.array([0.8, 0.97, 0.98, 0.97])
    objective = peaked(optimum)
    for trace in (cma_search(objective, start, 40, popsize=8, seed=0),
                  level_search(objective, start, np.array([1000.0, 4000.0, 8000.0, 2000.0]), 0.96, 40, seed=0)):
        assert trace.scores[0] == pytest.approx(objective(start[None])[0], abs=1e-3)  # the start comes first
        assert trace.best[1] > trace.scores[0] + 1e-4, trace.method
        assert len(trace.scores) <= 40


def test_level_search_keeps_the_budget_exactly_in_units() -> None:
    costs = np.array([1000.0, 4000.0, 8000.0, 2000.0])
    units, unit = to_units(np.array([0.9, 0.95, 0.99, 0.95]), costs, 0.96)
    assert units.sum() == 16 * len(costs)
    trace = level_search(peaked(np.array([0.5, 0.99, 0.99, 0.9])), to_plan(units, unit, costs), costs, 0.96, 33,
                         seed=1)
    for plan in trace.plans:
        kept = ((1 - np.asarray(plan)) * costs).sum()
        assert kept == pytest.approx(0.04 * costs.sum(), rel=1e-5)  # every plan on the budget (float32 rounding)


def test_a_flat_search_stops_at_its_patience() -> None:
    trace = cma_search(lambda plans: np.zeros(len(plans)), np.full(3, 0.9), 200, popsize=4, patience=8)
    assert len(trace.scores) < 20


def test_held_out_seeds_are_never_the_search_seeds() -> None:
    assert not set(oracle.SEARCH_SEEDS) & set(oracle.HELD_OUT_SEEDS)
    assert len(oracle.SEARCH_SEEDS) >= 2 and len(oracle.HELD_OUT_SEEDS) >= 3


def fake_training(task: str, target: float, seed: int, train_seed: int, plan: list[float], val: float,
                  test: float) -> dict:
    return {"task": task, "target_sparsity": target, "budget": "weights", "seed": seed, "train_seed": train_seed,
            "steps": 600, "requested": plan, "applied": plan, "val_accuracy": val, "val_loss": 1.0,
            "test_accuracy": test, "test_loss": 1.0, "diverged": False, "seconds": 1.0, "source": "test",
            "code": "x", "versions": {}, "finished": "now"}


def test_a_run_searches_again_only_its_own_cells_recorded_under_other_settings(tmp_path: Path) -> None:
    """Another task's cells, searched with another budget, stay in the study's file (they were all dropped)."""
    args = oracle.Args(task="cnn-digits", targets=(0.99,), seeds=(0, 1, 2), evaluations=32, patience=16)
    mine = oracle.cell_settings(args)
    other = oracle.cell_settings(oracle.Args())
    cells = RecordFile(tmp_path / "oracle.jsonl", ("task", "target_sparsity", "seed"))
    for task, target, seed, settings in (("cnn-digits", 0.99, 1, other), ("cnn-digits", 0.99, 2, mine),
                                         ("mlp-digits", 0.99, 1, other), ("cnn-digits", 0.98, 1, other),
                                         ("cnn-digits", 0.99, 3, other)):
        cells.add({"task": task, "target_sparsity": target, "seed": seed, "settings": settings})
    dropped = drop_superseded(cells, lambda cell: oracle.in_run(cell, args), mine)
    assert [cells.key(c) for c in dropped] == [("cnn-digits", 0.99, 1)]
    assert [cells.key(c) for c in RecordFile(cells.path, cells.key_fields).records] == [
        ("cnn-digits", 0.99, 2), ("mlp-digits", 0.99, 1), ("cnn-digits", 0.98, 1), ("cnn-digits", 0.99, 3)]


def test_the_headroom_interval_is_the_paired_t_interval_by_hand(tmp_path: Path) -> None:
    """Three instances whose oracle beats the best heuristic by 1, 2 and 3 test points: +2.0 ± 2.5 (t(0.975, 2) =
    4.303 times the standard error 1/sqrt(3)), an interval that holds 0 (not beyond noise); the other heuristics
    are worse and never the reference. Every oracle plan is the same plan here, so on another instance it gains
    that instance's headroom: 1, 1, 2, 2, 3, 3 points, +2.0 ± 0.9 (t(0.975, 5) = 2.571 times sqrt(0.8 / 6))."""
    store = GroundTruth(tmp_path / "ground_truth.jsonl")
    plans = {"oracle": [0.5, 0.99], "global_snip": [0.6, 0.98], "lamp": [0.7, 0.97], "erk": [0.8, 0.96]}
    cells = []
    for seed, gain in zip((0, 1, 2), (0.01, 0.02, 0.03), strict=True):
        tests = {"oracle": 0.80 + gain, "global_snip": 0.80, "lamp": 0.70, "erk": 0.75}
        for name, plan in plans.items():
            for train_seed in oracle.HELD_OUT_SEEDS:
                store.add(fake_training("mlp-digits", 0.99, seed, train_seed, plan, 0.5, tests[name]))
            for train_seed in oracle.SEARCH_SEEDS:
                store.add(fake_training("mlp-digits", 0.99, seed, train_seed, plan, 0.9 if name == "oracle" else 0.6,
                                        0.0))
        cells.append({"task": "mlp-digits", "target_sparsity": 0.99, "seed": seed, "oracle": plans["oracle"],
                      "heuristics": {n: p for n, p in plans.items() if n != "oracle"}, "oracle_method": "levels",
                      "traces": {"cma_es": {"plans": [plans["lamp"], plans["oracle"], plans["erk"]],
                                           "scores": [0.5, 0.7, 0.6]}}, "settings": {"final_steps": None}})
    figures = oracle.cell_figures(cells[1], store)
    assert figures["best"] == "global_snip"
    assert figures["headroom"] == pytest.approx(0.02) and figures["val_gain"] == pytest.approx(0.3)
    text = oracle.write_report(tmp_path, store, cells)
    half = 4.302652729911275 * 1.0 / np.sqrt(3)
    assert (f"| mlp-digits | 0.99 | 3 | 80.0 | 82.0 | +2.0 ± {half:.1f} | +30.0 ± 0.0 | no | 0.0 | levels | 3 | "
            "cma_es 2 |" in text)
    transfer_half = 2.5705818366147395 * np.sqrt(0.8 / 6)
    assert f"| mlp-digits | 0.99 | +2.0 ± {half:.1f} | +2.0 ± {transfer_half:.1f} | 6 |" in text
    assert (tmp_path / "oracle_convergence.png").stat().st_size > 1000


@pytest.mark.slow
def test_a_tiny_study_runs_stores_every_training_and_resumes_without_training(tmp_path: Path) -> None:
    args = oracle.Args(task="mlp-digits", targets=(0.9,), seeds=(0, 1), evaluations=6, patience=6, popsize=3,
                       workers=1, final_steps=40, out=tmp_path, reference=tmp_path / "none", progress=False)
    text = oracle.run_study(args)
    store = GroundTruth(tmp_path / "ground_truth.jsonl")
    lines = (tmp_path / "ground_truth.jsonl").read_text().splitlines()
    assert len(lines) == len(store) > 0
    record = json.loads(lines[0])
    assert list(record) == list(FIELDS) and record["source"] == "oracle" and record["steps"] == 40
    cells = [json.loads(line) for line in (tmp_path / "oracle.jsonl").read_text().splitlines()]
    assert [c["seed"] for c in cells] == [0, 1]
    for cell in cells:
        scores = [s for trace in cell["traces"].values() for s in trace["scores"]]
        assert cell["oracle_score"] == max(scores) >= max(cell["heuristic_scores"].values())
        search_seeds = {r["train_seed"] for k, r in store.records.items() if k[3] == cell["seed"]
                        and k[6] == tuple(np.float32(cell["oracle"]).tolist()) and np.isfinite(r["val_accuracy"])}
        assert search_seeds == set(oracle.SEARCH_SEEDS) | set(oracle.HELD_OUT_SEEDS)
        for train_seed in oracle.HELD_OUT_SEEDS:  # the oracle and every heuristic were tested on held-out seeds
            for plan in (cell["oracle"], *cell["heuristics"].values()):
                assert store.find(key("mlp-digits", 0.9, "weights", cell["seed"], train_seed, 40, plan)) is not None
    for seed, other in ((0, 1), (1, 0)):  # the transfer: each oracle plan on the other instance
        assert store.find(key("mlp-digits", 0.9, "weights", other, 0, 40, cells[seed]["oracle"])) is not None
    assert "| mlp-digits | 0.9 | 2 |" in text and "## Transfer" in text
    (tmp_path / "oracle.jsonl").unlink()  # the searches replay from the store: nothing is trained again
    oracle.run_study(args)
    assert len((tmp_path / "ground_truth.jsonl").read_text().splitlines()) == len(lines)
    assert [json.loads(line)["oracle"] for line in (tmp_path / "oracle.jsonl").read_text().splitlines()] == [
        c["oracle"] for c in cells]


def test_the_store_refuses_incomplete_records_and_reads_without_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    store = GroundTruth(tmp_path / "g.jsonl")
    with pytest.raises(ValueError, match="needs the fields.*'test_accuracy'"):
        store.add({k: v for k, v in fake_training("t", 0.9, 0, 0, [0.5], 0.1, 0.2).items() if k != "test_accuracy"})
    store.add(fake_training("t", 0.9, 0, 0, [0.5], 0.1, 0.2))
    code = ("import sys; from benchmarks.ground_truth import GroundTruth; from pathlib import Path; "
            f"s = GroundTruth(Path({str(tmp_path / 'g.jsonl')!r})); assert len(s) == 1; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_trained_task_is_measured_against_the_heuristics_of_pruning_after_training() -> None:
    plans, costs = oracle.heuristic_plans("mlp-digits-trained", 0.9, 0)
    assert tuple(plans) == oracle.TRAINED_HEURISTICS == ("global_magnitude", "lamp", "erk", "sensitivity")
    for name, plan in plans.items():  # each plan, as applied, removes the target's share of the weights
        applied = np.minimum(plan, 1.0) @ costs / costs.sum()
        assert applied == pytest.approx(0.9, abs=0.02), name
    assert tuple(oracle.heuristic_plans("mlp-digits", 0.9, 0)[0]) == oracle.HEURISTICS


def test_a_zero_shot_study_reads_each_plan_as_it_is_and_keeps_its_readings(tmp_path: Path) -> None:
    from benchmarks.final_accuracy import FinalEvaluator

    args = oracle.Args(task="mlp-digits-trained", targets=(0.8,), seeds=(0,), evaluations=10, patience=10, popsize=4,
                       zero_shot=True, out=tmp_path, reference=tmp_path / "none", progress=False)
    text = oracle.run_study(args)
    [cell] = [json.loads(line) for line in (tmp_path / "oracle_zero_shot.jsonl").read_text().splitlines()]
    assert not (tmp_path / "oracle.jsonl").exists() and not (tmp_path / "ground_truth.jsonl").exists()
    assert set(cell["readings"]) == {"oracle", *oracle.TRAINED_HEURISTICS}
    # a reading is the final evaluation's zero-shot test accuracy of that plan, and the search's score its validation
    evaluator = FinalEvaluator("mlp-digits-trained", 0.8, device="cpu")
    outcome = evaluator(np.array(cell["oracle"]), 0)
    assert cell["readings"]["oracle"]["test_accuracy"] == outcome.zero_shot_test_accuracy
    [reading] = evaluator.zero_shot_many([(np.array(cell["oracle"]), 0)])
    assert cell["oracle_score"] == pytest.approx(reading.second_accuracy - oracle.LOSS_TIE_BREAK * reading.second_loss)
    best = max(oracle.TRAINED_HEURISTICS, key=lambda n: cell["readings"][n]["test_accuracy"])
    headroom = 100 * (cell["readings"]["oracle"]["test_accuracy"] - cell["readings"][best]["test_accuracy"])
    assert "| mlp-digits-trained (zero-shot) | 0.8 | 1 |" in text and f"{headroom:+.1f}" in text


def test_zero_shot_needs_a_trained_task(tmp_path: Path) -> None:
    from benchmarks.final_accuracy import FinalEvaluator

    with pytest.raises(ValueError, match="prunes at initialization"):
        oracle.ZeroShotReadings("mlp-digits", 0.9)
    with pytest.raises(ValueError, match="prunes at initialization"):
        FinalEvaluator("mlp-digits", 0.9, device="cpu").zero_shot_many([(np.full(6, 0.9), 0)])
