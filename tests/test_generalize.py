"""Zero-shot generalization end to end: train on a tiny family, prune a held-out member, train it, test it."""

import json
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from agents import CONTROLLERS, make_controller
from agents.mappo.config import MappoConfig
from agents.mappo.controller import MappoController
from agents.pretrained import Recipe, train_on_family
from benchmarks.cells import plan_of
from benchmarks.final_accuracy import FinalEvaluator
from benchmarks.run import Args as RunArgs
from benchmarks.run import study_suite_args
from benchmarks.studies.generalize import Args, cells_of, register_controllers, run
from pruning_env import PruningEnv
from pruning_env.families import Family, family_tasks
from pruning_env.tasks import DIGITS_FINAL, DIGITS_PROXY
from pruning_env.training import TrainConfig

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_pruners.py"
TINY = Family("tiny", "digits", (1, 8, 8), DIGITS_PROXY, DIGITS_FINAL, weight_range=(4_000, 40_000), size=3,
              num_train=2, tags=("embedded",))


@pytest.mark.slow
def test_train_on_a_tiny_family_then_prune_a_held_out_member() -> None:
    mappo = MappoConfig(workers=1, episodes_per_update=4, progress=False, tensorboard=False)
    recipe = Recipe(family=TINY, episodes=8, reward_steps=3, mappo=mappo)
    controller, report = train_on_family(recipe, seed=0)
    assert report.episodes == 8 and len(report.history) == 2
    assert all(np.isfinite(row["reward_mean"]) for row in report.history)
    _, again = train_on_family(recipe, seed=0)
    assert [row["reward_mean"] for row in report.history] == [row["reward_mean"] for row in again.history]

    held_out = family_tasks(TINY, "heldout")[0]
    assert held_out.model not in {task.model for task in family_tasks(TINY, "train")}
    env = PruningEnv(held_out, target_sparsity=0.95, reward="zero_cost", init=7, seed=7, device="cpu")
    plan = plan_of(controller, env, seed=7)
    assert plan.shape == (len(env.layers),) and np.all((plan > 0) & (plan < 1))
    untrained = MappoController(recipe.env_factory(0)(), recipe.mappo, seed=0)  # its start: its reference, SNIP
    snip = plan_of(make_controller("global_snip", env), env, seed=7)
    np.testing.assert_allclose(plan_of(untrained, env, seed=7), snip, atol=1e-6)
    assert np.abs(plan - snip).max() > 1e-4  # 8 episodes moved the plan on the held-out network
    evaluator = FinalEvaluator(held_out, 0.95, device="cpu", final_train=TrainConfig(steps=40, lr=3e-3))
    outcome = evaluator(plan, seed=7)
    assert outcome.pruned_counts.sum() == round(0.95 * env.sizes.sum())
    np.testing.assert_array_equal(outcome.pruned_counts, env.evaluate_plan(7, plan).pruned_counts)
    assert not outcome.diverged and 0.0 <= outcome.test_accuracy <= 1.0
    print(f"tiny family: held-out {held_out.name} at 0.95 -> test accuracy {outcome.test_accuracy:.3f} after 40 steps")


@pytest.mark.slow
def test_generalize_benchmark_runs_resumes_and_reports(tmp_path, monkeypatch) -> None:
    args = Args(out=tmp_path, learners=("mappo",), train_seeds=(0,), eval_seeds=(1000,), targets=(0.99,),
                heldout_init_members=1, episodes=4, search_episodes=2, reward_steps=2, final_steps=10, workers=1,
                progress=False)
    text = run(args)
    records = [json.loads(line) for line in (tmp_path / "generalize.jsonl").read_text().splitlines()]
    assert len(records) == len(cells_of(args)) * len(args.controllers)
    assert {r["controller"] for r in records} == set(args.controllers)
    assert {r["split"] for r in records} == {"heldout-arch", "heldout-init"}
    assert all(r["global_sparsity"] == pytest.approx(r["target_sparsity"], abs=1e-4) for r in records)
    for name in args.controllers:
        assert f"| {name} |" in text
    assert "pretrained vs best" in text and "mappo vs best" in text
    assert (tmp_path / "generalize.png").stat().st_size > 0
    assert json.loads((tmp_path / "generalize_controllers" / "mappo_s0.json").read_text())["episodes"] == 4
    run(args)  # a rerun finds every cell finished: nothing is trained or evaluated twice
    assert len((tmp_path / "generalize.jsonl").read_text().splitlines()) == len(records)

    # an outside heuristic is a new row; ours are reused, and editing its module computes only its row again
    module = tmp_path / "my_pruners.py"
    module.write_text(EXAMPLE.read_text(encoding="utf-8"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_pruners", raising=False)  # another test's module of that name
    mine = replace(args, controller=("my_pruners:HalfSnip",))
    try:
        text = run(mine)
        after = [json.loads(line) for line in (tmp_path / "generalize.jsonl").read_text().splitlines()]
        assert after[: len(records)] == records
        assert sum(r["controller"] == "half_snip" for r in after) == len(cells_of(args))
        assert "| half_snip |" in text and "half_snip vs best" in text
        module.write_text(module.read_text() + "\n# edited\n")
        run(mine)
        again = [json.loads(line) for line in (tmp_path / "generalize.jsonl").read_text().splitlines()]
        assert [r for r in again if r["controller"] != "half_snip"] == records
        codes = {r["settings"]["code"] for r in after if r["controller"] == "half_snip"}
        recomputed = [r for r in again if r["controller"] == "half_snip"]
        assert len(recomputed) == len(cells_of(args)) and len(codes) == 1 and "+" in next(iter(codes))
        assert all(r["settings"]["code"] not in codes for r in recomputed)
    finally:
        CONTROLLERS.pop("half_snip", None)


def test_the_runner_passes_its_options_to_the_generalization_suite_under_the_study_names(tmp_path) -> None:
    study = study_suite_args(RunArgs(suite="generalize", out=tmp_path, seeds=(1000, 1001), sparsities=(0.99,),
                                     workers=3, fresh=True, controller=("my_pruners:HalfSnip",)))
    assert isinstance(study, Args)
    assert (study.eval_seeds, study.targets, study.workers, study.fresh, study.controller, study.out) == (
        (1000, 1001), (0.99,), 3, True, ("my_pruners:HalfSnip",), tmp_path)
    assert study.learners == Args().learners  # what the runner does not name keeps the study's default
    with pytest.raises(SystemExit, match="takes no --only, --tasks"):
        study_suite_args(RunArgs(suite="generalize", tasks=("mlp-digits",), only=("erk",)))


def test_an_outside_learner_is_refused_by_the_generalization_suite(tmp_path, monkeypatch) -> None:
    (tmp_path / "my_learner.py").write_text(textwrap.dedent('''
        from agents.mappo.controller import MappoController


        class Mine(MappoController):
            name = "my_learner"
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    args = Args(out=tmp_path, eval_seeds=(1000,), targets=(0.99,), reward_steps=2, controller=("my_learner:Mine",))
    try:
        with pytest.raises(ValueError, match="is a learner"):
            register_controllers(args, "cpu")
    finally:
        CONTROLLERS.pop("my_learner", None)
