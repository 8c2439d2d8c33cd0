"""The Ray evaluation pool: the same rewards as in-process random search, results in input order, a killed
actor's episode retried on a new actor with every result arriving exactly once, and the MAPPO trainer's pool."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

from agents.mappo.config import MappoConfig
from agents.mappo.policy import TokenPolicy
from agents.mappo.rollout import LocalPool, collect, episode_plan
from agents.random_search import RandomSearch
from agents.ray_pool import EnvActor, EvaluationPool, RayEnvPool, local_ray, random_search
from pruning_env.env import PruningEnv

SEED = 3
FAST = {"reward": "neg_loss", "reward_steps": 5, "target_sparsity": 0.9, "device": "cpu"}
SLOW = {**FAST, "reward_steps": 150}  # about 0.3 s an episode: long enough to be killed in the middle of one


@pytest.fixture(scope="module")
def cluster():
    with local_ray(num_cpus=2, isolate_home=True):
        yield


def kill_after(seconds: float, pid: int) -> threading.Thread:
    """SIGKILL process ``pid`` after ``seconds``, from a background thread."""
    thread = threading.Thread(target=lambda: (time.sleep(seconds), os.kill(pid, signal.SIGKILL)), daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_killed_actor_episode_is_retried_once_and_the_rewards_match_in_process_runs(cluster):
    plans = np.random.default_rng(1).uniform(0.0, 1.0, (6, 6))
    reference = EnvActor(SLOW, worker=0)
    expected = [reference.evaluate(i, SEED, plan) for i, plan in enumerate(plans)]
    expected_search = RandomSearch(reference.env, episodes=6, seed=SEED, include_center=True, progress=False).train()
    with EvaluationPool(SLOW, workers=2) as pool:
        victim = pool.describe()[0]["pid"]
        kill_after(0.5, victim)  # 6 episodes of >= 0.3 s on 2 actors: actor 0 is mid-episode then
        results = pool.evaluate([(SEED, plan) for plan in plans])
        assert pool.restarts == 1 and victim not in {info["pid"] for info in pool.describe()}

        report, best_plan = random_search(pool, episodes=6, seed=SEED, include_center=True)
        with pytest.raises(ValueError, match="finite"):  # an env error is raised, not retried
            pool.evaluate([(SEED, np.full(6, np.nan))])
        assert pool.restarts == 1
    assert [result.index for result in results] == list(range(6))  # every episode exactly once, in input order
    assert sorted(result.attempts for result in results) == [1, 1, 1, 1, 1, 2]  # the killed one ran twice
    assert [result.reward for result in results] == [result.reward for result in expected]
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got.applied, want.applied)
    assert report.history == expected_search.history and report.best_reward == expected_search.best_reward
    assert best_plan.shape == (6,)


@pytest.mark.slow
def test_mappo_collects_the_same_episodes_through_ray_despite_a_kill(cluster):
    factories = [lambda: PruningEnv(**SLOW)]
    torch.manual_seed(0)
    policy = TokenPolicy(list(PruningEnv(**SLOW).feature_names), MappoConfig())
    plan = episode_plan(SEED, 0, 4, [False])
    local = LocalPool(factories)
    expected = collect(policy, local, plan)
    local.close()
    pool = RayEnvPool(factories, num_workers=2)
    try:
        kill_after(0.5, pool.slots.describe()[1]["pid"])  # each actor has two episodes of >= 0.3 s to run
        episodes = collect(policy, pool, plan)
        assert pool.slots.restarts == 1
    finally:
        pool.close()
    assert [e.reward for e in episodes] == [e.reward for e in expected]
    for got, want in zip(episodes, expected, strict=True):
        np.testing.assert_array_equal(got.actions, want.actions)


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="workers"):
        EvaluationPool(FAST, workers=0)
    with pytest.raises(ValueError, match="max_attempts"):
        EvaluationPool(FAST, max_attempts=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_each_actor_gets_a_gpu(cluster):
    with EvaluationPool({**FAST, "device": "auto"}, workers=1) as pool:
        assert pool.describe()[0]["device"].startswith("cuda")
