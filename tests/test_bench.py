"""make bench end to end on the tiny preset: structure of the outputs, real numbers, and resuming."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.records import RecordFile, check_settings, fingerprint, read_records
from benchmarks.report import markdown_table
from benchmarks.run import (
    CELL_KEY,
    Checkpoints,
    RunCost,
    cell_settings,
    recorded_settings,
    run_suite,
    search_compute,
    search_plan,
    shared_cell_env,
)
from benchmarks.suites import as_recorded, get_suite

REFERENCE = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "reference"


@pytest.mark.slow
def test_tiny_suite_end_to_end_and_resume(tmp_path) -> None:
    # trainings and searches in this process (workers=1): the numbers are those of any worker count (the test
    # below runs 1 and 2 workers and compares), without spawning a pool of worker interpreters per phase
    suite = get_suite("tiny", workers=1)
    table = run_suite(suite, tmp_path, "cpu", progress=False)
    records = read_records(tmp_path / "tiny.jsonl")
    cells = [(r["task"], r["controller"], r["target_sparsity"], r["seed"]) for r in records]
    expected = 1 + (len(suite.controllers) - 1) * len(suite.sparsities)
    assert len(cells) == len(set(cells)) == expected
    assert (tmp_path / "tiny.png").stat().st_size > 10_000
    assert (tmp_path / "tiny.md").read_text() == table

    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert set(suite.controllers) <= set(rows)
    assert "**" not in table.split("Test accuracy")[0]  # one seed: no interval, so nothing is clearly ahead
    assert "±" not in table.split("Test accuracy")[0]
    by_cell = {(r["controller"], r["target_sparsity"]): r for r in records}
    dense = by_cell[("dense", 0.0)]["test_accuracy"]
    assert dense > 0.8  # the dense MLP really trained (chance is 0.1)
    assert all(by_cell[(c, 0.999)]["test_accuracy"] < dense - 0.3 for c in suite.controllers if c != "dense")
    for record in records:
        assert record["global_sparsity"] == pytest.approx(record["target_sparsity"], abs=1e-5)
        assert record["global_sparsity"] - 1e-9 <= record["effective_sparsity"] <= 1.0
    assert by_cell[("uniform", 0.999)]["effective_sparsity"] > 0.999  # at 99.9% units disconnect: dead weights
    assert "effective sparsity (%)" in table

    # an interrupted run: drop two finished cells, rerun, and only those two are trained again
    kept = records[:-2]
    (tmp_path / "tiny.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    run_suite(suite, tmp_path, "cpu", progress=False)
    rerun = read_records(tmp_path / "tiny.jsonl")
    assert rerun[: len(kept)] == kept
    assert sorted((r["controller"], r["target_sparsity"]) for r in rerun) == sorted(by_cell)


def test_the_default_runs_each_suite_of_its_group_with_the_options_and_refuses_cell_overrides(monkeypatch) -> None:
    from benchmarks import run

    ran: list[tuple[str, tuple[str, ...], tuple[int, ...]]] = []
    monkeypatch.setattr(run, "run_suite", lambda suite, *args: ran.append((suite.name, suite.controllers, suite.seeds))
                        or "")
    run.main(run.Args())
    assert [(name, seeds) for name, _, seeds in ran] == [("short", (0, 1, 2, 3, 4)), ("short_trained", (0, 1, 2, 3, 4))]
    assert [controllers for _, controllers, _ in ran] == [get_suite("short").controllers,
                                                          get_suite("short_trained").controllers]
    ran.clear()
    run.main(run.Args(only=("lamp", "successive_halving"), seeds=(1,)))  # successive_halving: only in short
    assert ran == [("short", ("lamp", "successive_halving"), (1,)), ("short_trained", ("lamp",), (1,))]
    ran.clear()
    run.main(run.Args(only=("successive_halving",)))
    assert [name for name, _, _ in ran] == ["short"]  # a suite left without rows is skipped
    with pytest.raises(ValueError, match="--only names controllers the suite 'default' does not have: nope"):
        run.main(run.Args(only=("nope",)))
    with pytest.raises(SystemExit, match="runs the suites short, short_trained: name one of them"):
        run.main(run.Args(sparsities=(0.9,)))
    run.main(run.Args(suite="short_trained", sparsities=(0.9,), only=("lamp",)))
    assert ran[-1] == ("short_trained", ("lamp",), (0, 1, 2, 3, 4))


def test_a_resume_under_other_settings_refuses_and_more_seeds_add_cells(tmp_path) -> None:
    suite = replace(get_suite("tiny"), controllers=("dense", "uniform"), sparsities=(0.5,), final_steps=20, workers=1)
    run_suite(suite, tmp_path, "cpu", progress=False)
    before = (tmp_path / "tiny.jsonl").read_text()
    assert all(len(r["fingerprint"]) == 16 and r["settings"]["suite"]["reward_steps"] == 5
               for r in read_records(tmp_path / "tiny.jsonl"))

    with pytest.raises(ValueError, match=r"other settings .*suite\.reward_steps: 5 -> 6.*--fresh"):
        run_suite(replace(suite, reward_steps=6), tmp_path, "cpu", progress=False)
    with pytest.raises(ValueError, match=r"options\.scale: '\(absent\)' -> 2\.0"):
        run_suite(replace(suite, options={"uniform": {"scale": 2.0}}), tmp_path, "cpu", progress=False)
    assert (tmp_path / "tiny.jsonl").read_text() == before  # nothing mixed, nothing overwritten

    run_suite(replace(suite, final_steps=30), tmp_path, "cpu", progress=False, fresh=True)
    records = read_records(tmp_path / "tiny.jsonl")
    assert len(records) == 2 and all(r["settings"]["suite"]["final_steps"] == 30 for r in records)
    assert run_suite(replace(suite, final_steps=30), tmp_path, "cpu", progress=False)  # the same settings resume

    table = run_suite(replace(suite, final_steps=30, seeds=(0, 1)), tmp_path, "cpu", progress=False)  # SEEDS="0 1"
    both = read_records(tmp_path / "tiny.jsonl")
    assert both[:2] == records  # seed 0's cells kept as they were, not trained again
    assert sorted((r["controller"], r["seed"]) for r in both[2:]) == [("dense", 1), ("uniform", 1)]
    assert "±" in table.split("Test accuracy")[0]  # two seeds: the cells get intervals


def test_a_record_written_before_the_renames_reads_in_its_own_names(tmp_path) -> None:
    # the committed quick records spell random search's options and the suite's budget as they were named then
    # (center, include_center, rl_episodes)
    committed = next(r for r in read_records(REFERENCE / "quick" / "quick_plans.jsonl") if r["controller"] == "random_search")
    suite = get_suite("quick")
    now = cell_settings(suite, committed["task"], "random_search", "cpu")
    assert now["options"] == {"progress": False, "reference": "snip", "scale": 0.7, "include_reference": True}
    assert now["suite"]["episodes_per_seed"] == committed["settings"]["suite"]["rl_episodes"] == 200
    spelled = as_recorded(now, committed["settings"])
    assert spelled["options"] == committed["settings"]["options"] and spelled["suite"] == committed["settings"]["suite"]
    assert as_recorded(now, now) == now

    # a record of the same settings in the old names, made by older code: computed again, not refused
    old = {**now, "suite": committed["settings"]["suite"], "options": committed["settings"]["options"],
           "code": {**now["code"], "package": "older code"}}
    record = {**{field: committed[field] for field in CELL_KEY}, "settings": old, "fingerprint": fingerprint(old)}
    (tmp_path / "short_plans.jsonl").write_text(json.dumps(record) + "\n")
    dropped = check_settings([RecordFile(tmp_path / "short_plans.jsonl", CELL_KEY)],
                             lambda r: recorded_settings(suite, r, "cpu"), "start fresh")
    assert list(dropped.values()) == [["code.package: 'older code' -> " + repr(now["code"]["package"])]]
    (tmp_path / "short_plans.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(ValueError, match=r"options\.center: 'snip' -> '\(absent\)'"):  # without the old names
        check_settings([RecordFile(tmp_path / "short_plans.jsonl", CELL_KEY)],
                       lambda r: cell_settings(suite, r["task"], r["controller"], "cpu"), "start fresh")


@pytest.mark.slow
def test_checkpoint_plans_are_recorded_untrained_on_request_and_trained_on_resume(tmp_path) -> None:
    suite = replace(get_suite("tiny"), controllers=("dense", "random_search"), sparsities=(0.5,), final_steps=20,
                    workers=1)
    run_suite(suite, tmp_path, "cpu", progress=False, train_checkpoints=False)
    early_plans = read_records(tmp_path / "tiny_checkpoint_plans.jsonl")
    assert sorted(r["budget_fraction"] for r in early_plans) == [0.25, 0.5]
    assert read_records(tmp_path / "tiny_checkpoints.jsonl") == []
    assert "sample efficiency" not in (tmp_path / "tiny.md").read_text()

    text = run_suite(suite, tmp_path, "cpu", progress=False)  # the same settings: resumes, trains the two plans
    trained = read_records(tmp_path / "tiny_checkpoints.jsonl")
    assert sorted(r["budget_fraction"] for r in trained) == [0.25, 0.5]
    assert all(0.0 < r["test_accuracy"] <= 1.0 for r in trained)
    assert "sample efficiency" in text


def test_table_bolds_only_a_controller_ahead_of_every_other_beyond_the_paired_interval() -> None:
    suite = replace(get_suite("tiny"), controllers=("dense", "uniform", "erk", "lamp"), sparsities=(0.9,))
    accuracy = {"uniform": [0.90, 0.91, 0.89], "erk": [0.95, 0.96, 0.94], "lamp": [0.93, 0.94, 0.93]}
    records = [{"task": "mlp-digits", "controller": "dense", "target_sparsity": 0.0, "seed": 0, "test_accuracy": 0.97}]
    records += [{"task": "mlp-digits", "controller": c, "target_sparsity": 0.9, "seed": seed, "test_accuracy": a}
                for c, values in accuracy.items() for seed, a in enumerate(values)]

    def rows() -> dict[str, str]:
        table = markdown_table(suite, records)
        return {line.split("|")[1].strip(): line for line in table.splitlines() if "|" in line}

    assert rows()["erk"] == "| erk | **95.0 ± 2.5** |"  # ahead of lamp by 1.7 ± 1.4: clear
    assert rows()["uniform"] == "| uniform | 90.0 ± 2.5 |" and rows()["dense"] == "| dense | 97.0 |"
    records[-1]["test_accuracy"] = 0.96  # lamp's third seed now beats erk's: the lead is within the interval
    assert "**" not in "".join(rows().values())
    one_seed = [r for r in records if r["seed"] == 0]
    table = markdown_table(suite, one_seed)
    assert "**" not in table and "±" not in table  # one seed: no interval, nothing is clearly ahead


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cma_es"])
def test_a_searcher_finds_the_same_plan_on_two_worker_processes_as_in_this_one(name) -> None:
    suite = get_suite("tiny", episodes_per_seed=20, sparsities=(0.99,), workers=1)
    one, early_one = search_plan(suite, name, "mlp-digits", 0.99, 0, "cpu")
    two, early_two = search_plan(replace(suite, workers=2), name, "mlp-digits", 0.99, 0, "cpu")
    assert one.tolist() == two.tolist()
    assert sorted(early_one) == [0.25, 0.5] and all(early_one[f][1].tolist() == early_two[f][1].tolist()
                                                     for f in early_one)


def test_a_compute_searcher_gets_the_same_compute_as_an_evaluation_searcher() -> None:
    import agents

    suite = get_suite("tiny", sparsities=(0.99,), episodes_per_seed=24)  # 24 evaluations of K = 5 steps per cell
    made = []
    original = agents.CONTROLLERS["successive_halving"]

    def spy(env, **options):
        made.append(original(env, rungs=(5, 10), **options))
        return made[-1]

    spy.kind, spy.accepts_pool, spy.accepts_on_update, spy.budget_unit = "searcher", False, False, "compute"
    agents.CONTROLLERS["successive_halving"] = spy
    try:
        plan, early = search_plan(suite, "successive_halving", "mlp-digits", 0.99, 0, "cpu")
    finally:
        agents.CONTROLLERS["successive_halving"] = original
    [searcher] = made
    env = shared_cell_env(suite, "mlp-digits", 0.99, 0, "cpu")
    one = env.cost_of(env.config.fidelity)  # K = 5 steps of 128 samples plus the validation pass, in sample-steps
    assert search_compute(suite, env) == 24 * one
    assert 24 * one - searcher.spent < env.cost_of(searcher.fidelities[0]) and searcher.spent <= 24 * one
    assert plan.shape == (len(env.layers),) and early == {}  # no on_update: no checkpoint plans


def test_checkpoints_read_the_plans_once_when_the_spent_evaluations_first_reach_each_fraction() -> None:
    reads = []
    checkpoints = Checkpoints(100, lambda: reads.append(len(reads)) or f"plans {len(reads)}")
    for spent in (10, 30, 40, 60, 100):
        checkpoints(spent)
    assert checkpoints.plans == {0.25: (30, "plans 1"), 0.5: (60, "plans 2")} and len(reads) == 2
    jump = Checkpoints(100, lambda: "plans")
    jump(70)  # one update past both marks: one read serves both
    assert jump.plans == {0.25: (70, "plans"), 0.5: (70, "plans")}

    class Plain:  # an outside learner without the probe
        def train(self, make_env, episodes, seed):
            return None

    class Probed:
        def search(self, episodes=None, seed=None, on_update=None):
            return None

    assert jump.probe(Plain()) == {} and jump.probe(Probed()) == {"on_update": jump}


@pytest.mark.slow
def test_results_are_the_same_for_any_worker_count_and_the_progress_counts_every_step(tmp_path) -> None:
    suite = replace(get_suite("tiny"), controllers=("dense", "uniform", "random_search"), sparsities=(0.99,),
                    final_steps=20)
    runs = {}
    for workers in (1, 2):
        run_suite(replace(suite, workers=workers), tmp_path / str(workers), "cpu", progress=False)
        runs[workers] = {(r["controller"], r["target_sparsity"]): (r["requested"], r["test_accuracy"])
                         for r in read_records(tmp_path / str(workers) / "tiny.jsonl")}
    assert runs[1] == runs[2] and len(runs[1]) == 3

    cost = RunCost(suite, train_checkpoints=True)
    plans = read_records(tmp_path / "1" / "tiny_plans.jsonl")
    trained = [*read_records(tmp_path / "1" / "tiny.jsonl"), *read_records(tmp_path / "1" / "tiny_checkpoints.jsonl")]
    steps = sum(map(cost.plan, plans)) + sum(map(cost.train, trained))
    assert cost.total() == (steps, len(trained))  # the bar's total is what the run spends (before candidates)
    # random search: 8 evaluations of K=5 steps on its one cell; 3 cells + 2 checkpoints trained with 20 steps
    assert cost.total() == (8 * 5 + 5 * 20, 5)


@pytest.mark.slow
def test_the_posttrain_suite_reads_each_plan_zero_shot_and_after_its_fine_tuning(tmp_path) -> None:
    suite = replace(get_suite("posttrain"), tasks=("mlp-digits-trained",), sparsities=(0.9,), seeds=(0,),
                    controllers=("dense", "uniform", "lamp", "random_search"), episodes_per_seed=8, workers=1)
    text = run_suite(suite, tmp_path, "cpu", progress=False)
    by_controller = {r["controller"]: r for r in read_records(tmp_path / "posttrain.jsonl")}
    assert all(0.0 <= r["zero_shot_test_accuracy"] <= 1.0 for r in by_controller.values())
    uniform, lamp = by_controller["uniform"], by_controller["lamp"]
    # at 0.9 the allocation decides (the sweep on seed 0: uniform 24% zero-shot and 76% fine-tuned, LAMP 54% and 96%)
    assert lamp["zero_shot_test_accuracy"] > uniform["zero_shot_test_accuracy"] + 0.1
    assert lamp["test_accuracy"] > uniform["test_accuracy"] + 0.05
    assert uniform["test_accuracy"] > uniform["zero_shot_test_accuracy"]  # the fine-tuning recovers some
    assert {r["steps"] for r in read_records(tmp_path / "ground_truth.jsonl")} == {50}  # the task's finetune
    assert "after fine-tuning the pruned trained network (50 steps" in text
    assert "| mlp-digits-trained: zero-shot (no fine-tuning) | 0.9 |" in text
    settings = by_controller["lamp"]["settings"]["task"]
    assert settings["finetune"]["steps"] == 50 and settings["final_train"]["steps"] == 600
