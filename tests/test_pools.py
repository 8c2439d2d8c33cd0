"""Evaluation pools: local, process and Ray backends give the in-process env's results, in input order and each
exactly once, also when a worker is SIGKILLed in the middle of a call (deterministically: the first evaluation on
any worker kills its own process); env errors are raised, not retried; the MAPPO collection is unchanged."""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.mappo.config import MappoConfig
from agents.mappo.policy import TokenPolicy
from agents.mappo.rollout import collect, episode_plan
from agents.random_search import RandomSearch
from pruning_env.parallel import PruningEnv
from pruning_env.plan import EpisodeResult
from pruning_env.pools import LocalPool, PlanRequest, ProcessPool, make_pool

SEED = 3
FAST = {"reward": "neg_loss", "reward_steps": 5, "target_sparsity": 0.9, "device": "cpu"}


class KillingEnv(PruningEnv):
    """A PruningEnv whose first evaluation anywhere SIGKILLs its own process (a marker file says it happened)."""

    def __init__(self, marker: Path, **options: object) -> None:
        super().__init__(**options)
        self.marker = marker

    def evaluate_plans(self, episodes: list[tuple[int, np.ndarray]]) -> list[EpisodeResult]:
        try:
            with open(self.marker, "x") as marker:  # atomic: only one worker of all creates it
                marker.write(str(os.getpid()))
        except FileExistsError:
            return super().evaluate_plans(episodes)
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable: the process is gone")


@dataclass(frozen=True)
class KillingSource:
    """A picklable env source of ``KillingEnv``."""

    marker: Path

    def __call__(self) -> KillingEnv:
        return KillingEnv(self.marker, **FAST)


def requests(count: int = 5) -> list[PlanRequest]:
    plans = np.random.default_rng(1).uniform(0.0, 1.0, (count, 6))
    return [PlanRequest(SEED + i % 2, plan) for i, plan in enumerate(plans)]


@pytest.fixture(scope="module")
def expected() -> list[EpisodeResult]:
    env = PruningEnv(**FAST)
    return [env.evaluate_plan(request.seed, request.plan) for request in requests()]


def assert_same(results: list[EpisodeResult], expected: list[EpisodeResult]) -> None:
    assert len(results) == len(expected)
    for got, want in zip(results, expected, strict=True):
        assert (got.seed, got.reward, got.loss, got.accuracy) == (want.seed, want.reward, want.loss, want.accuracy)
        np.testing.assert_array_equal(got.pruned_counts, want.pruned_counts)


def test_local_pool_is_the_env(expected):
    with LocalPool([FAST]) as pool:
        assert_same(pool.evaluate(requests()), expected)


def test_observe_gives_the_stacked_observation_of_each_instance():
    env = PruningEnv(**FAST)
    with LocalPool([FAST, {**FAST, "target_sparsity": 0.5}]) as pool:
        first, other = pool.observe([SEED, SEED], sources=[0, 1])
    observations, _ = env.reset(seed=SEED)
    np.testing.assert_array_equal(first, np.stack([observations[f"layer_{i}"] for i in range(6)]))
    assert not np.array_equal(first, other)  # another target, other target-dependent features


@pytest.mark.slow
def test_process_pool_survives_a_killed_worker_with_every_result_once(tmp_path, expected):
    with ProcessPool([KillingSource(tmp_path / "killed")], workers=2) as pool:
        pids = pool.pids
        results = pool.evaluate(requests())
        victim = int((tmp_path / "killed").read_text())
        assert victim in pids and victim not in pool.pids and pool.restarts == 1
        with pytest.raises(ValueError, match="finite"):  # an env error is raised, not retried
            pool.evaluate([PlanRequest(SEED, np.full(6, np.nan))])
        assert pool.restarts == 1
    assert_same(results, expected)


@pytest.mark.slow
def test_ray_pool_survives_a_killed_actor_with_every_result_once(ray_cluster, tmp_path, expected):
    from ray import cloudpickle

    from pruning_env.pools.ray import RayPool

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import the test module
    with RayPool([KillingSource(tmp_path / "killed")], workers=2) as pool:
        results = pool.evaluate(requests())
        assert pool.restarts == 1
        search = RandomSearch(None, episodes=4, seed=SEED, progress=False, pool=pool)
        report = search.search()
        with pytest.raises(ValueError, match="finite"):
            pool.evaluate([PlanRequest(SEED, np.full(6, np.nan))])
        assert pool.restarts == 1
    assert_same(results, expected)
    local = RandomSearch(PruningEnv(**FAST), episodes=4, seed=SEED, progress=False)
    assert report.history == local.search().history
    np.testing.assert_array_equal(search.best_plan, local.best_plan)


@pytest.mark.slow
def test_mappo_collects_the_same_episodes_through_processes_despite_a_kill(tmp_path):
    torch.manual_seed(0)
    policy = TokenPolicy(list(PruningEnv(**FAST).feature_names), MappoConfig())
    plan = episode_plan(SEED, 0, 4, [False])
    with LocalPool([FAST]) as local:
        expected = collect(policy, local, plan)
    with make_pool([KillingSource(tmp_path / "killed")], workers=2) as pool:
        episodes = collect(policy, pool, plan)
        assert pool.restarts == 1
    assert [e.reward for e in episodes] == [e.reward for e in expected]
    for got, want in zip(episodes, expected, strict=True):
        np.testing.assert_array_equal(got.actions, want.actions)
        np.testing.assert_array_equal(got.result.applied, want.result.applied)


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="workers"):
        ProcessPool([FAST], workers=0)
    with pytest.raises(ValueError, match="max_attempts"):
        ProcessPool([FAST], max_attempts=0)
    with pytest.raises(ValueError, match="picklable"):
        ProcessPool([lambda: PruningEnv(**FAST)], workers=2)
    with LocalPool([FAST]) as pool:
        with pytest.raises(ValueError, match="source"):
            pool.evaluate([PlanRequest(SEED, np.zeros(6), source=1)])
        with pytest.raises(ValueError, match=r"shape \(6,\)"):
            pool.evaluate([PlanRequest(SEED, np.zeros(5))])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_each_actor_gets_a_gpu(ray_cluster):
    from pruning_env.pools.ray import RayPool

    with RayPool([{**FAST, "device": "auto"}], workers=1) as pool:
        assert pool.describe()[0]["devices"][0].startswith("cuda")
