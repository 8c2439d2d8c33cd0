"""The learning-curve benchmark (``benchmarks.studies.learning_curves``) end to end on a tiny budget, and the probes it
reads: every controller's current plan after each update (``on_update``), CMA-ES's mean, the searchers' best."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from agents import make_controller
from benchmarks.intervals import t_interval
from benchmarks.studies import learning_curves
from benchmarks.studies.learning_curves import Args, instances, latest, marks
from pruning_env.parallel import PruningEnv


def test_marks_and_latest_pick_the_last_plan_at_or_before_each_mark() -> None:
    assert marks(300, 30) == [0, 30, 60, 90, 120, 150, 180, 210, 240, 270, 300]
    assert marks(25, 10) == [0, 10, 20, 25]
    points = [(0, "a"), (10, "b"), (24, "c")]
    assert [latest(points, mark) for mark in marks(25, 10)] == ["a", "b", "b", "c"]


def test_instances_take_the_first_seeds_per_target() -> None:
    args = Args(targets=(0.98, 0.99), seeds=(0, 1, 2, 3, 4), seeds_per_target=(3, 5))
    assert instances(args) == [(0.98, 0), (0.98, 1), (0.98, 2), *((0.99, seed) for seed in range(5))]
    assert len(instances(Args())) == 10
    with pytest.raises(ValueError, match="one count in \\[1, 5\\] per target"):
        instances(replace(args, seeds_per_target=(3,)))


def test_paired_interval_is_a_t_interval() -> None:
    mean, half = t_interval([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0)
    assert half == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)  # t(0.975, 2) x sem
    assert np.isnan(t_interval([1.0])[1])


def test_cma_es_reports_its_mean_after_each_generation() -> None:
    env = PruningEnv("mlp-digits", target_sparsity=0.99, reward="zero_cost", device="cpu")
    searcher = make_controller("cma_es", env, seed=0, episodes=30, progress=False)
    seen: list[tuple[int, np.ndarray]] = []
    searcher.search(on_update=lambda spent: seen.append((spent, searcher.current_plan().copy())))
    assert [spent for spent, _ in seen] == [10, 20, 30]
    assert not np.allclose(seen[0][1], seen[-1][1])  # the mean moved
    assert not np.allclose(seen[-1][1], searcher.best_plan)  # the mean is not the best plan


def test_mappo_on_update_sees_the_policy_of_that_moment() -> None:
    env = PruningEnv("mlp-digits", target_sparsity=0.99, reward="zero_cost", init=0, device="cpu")
    controller = make_controller("mappo", env, seed=0, progress=False, tensorboard=False, episodes_per_update=8)
    observations, infos = env.reset(seed=0)
    start = controller.act(observations, infos)
    plans = []
    controller.train(lambda: PruningEnv("mlp-digits", target_sparsity=0.99, reward="zero_cost", init=0,
                                        device="cpu"), 16, 0,
                     on_update=lambda spent: plans.append((spent, controller.act(observations, infos))))
    assert [spent for spent, _ in plans] == [0, 8, 16]
    assert all(np.allclose(start[agent], plans[0][1][agent]) for agent in start)
    assert any(not np.allclose(start[agent], plans[1][1][agent]) for agent in start)


@pytest.mark.slow
def test_the_benchmark_writes_curves_finals_table_and_plot_and_resumes(tmp_path: Path) -> None:
    args = Args(targets=(0.99,), seeds=(0,), controllers=("cma_es", "mappo", "sb3_ppo"), episodes=16, every=8,
                final_seeds=(0, 1), reward_steps=5, final_steps=30, workers=1, out=tmp_path, progress=False,
                best_known=tmp_path / "best_known.jsonl")
    text = learning_curves.main(args)
    curves = learning_curves.RecordFile(tmp_path / "learning_curves.jsonl", learning_curves.CURVE_KEY).records
    finals = learning_curves.RecordFile(tmp_path / "learning_curves_finals.jsonl", learning_curves.FINAL_KEY).records
    assert sorted(r["controller"] for r in curves) == ["cma_es", "mappo", "sb3_ppo"]
    for record in curves:
        assert [row["episodes"] for row in record["curve"]] == [0, 8, 16]
        best = [row["best_reward"] for row in record["curve"]]
        assert best == sorted(best)
        assert record["curve"][0]["current_reward"] == pytest.approx(record["curve"][0]["best_reward"])
    cma = next(r for r in curves if r["controller"] == "cma_es")
    assert cma["final_reward"] == pytest.approx(cma["curve"][-1]["best_reward"])  # a searcher acts with its best
    assert len(finals) == (3 + 2) * 2  # (controllers + global_snip, lamp) x training seeds
    assert {r["train_seed"] for r in finals} == {0, 1}
    assert "| cma_es |" in text and "Δ vs global_snip" in text and "| lamp |" in text
    assert (tmp_path / "learning_curves.png").stat().st_size > 0
    assert learning_curves.main(args).split("Wall time")[0] == text.split("Wall time")[0]  # resumed: nothing rerun
    with pytest.raises(ValueError, match="other settings"):
        learning_curves.main(replace(args, episodes=24))
