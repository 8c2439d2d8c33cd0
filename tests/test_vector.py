"""Vectorized use without Ray: SuperSuit's multi-process concatenation of the layer agents, and Gymnasium's
AsyncVectorEnv of the controller env; both return the rewards the plain env gives the same plans, also when the
parent runs torch multi-threaded (forked workers would hang without the one-thread guard) and the process-wide
start method is "spawn" (as after importing torchrl; the helpers still fork, quickly)."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
import torch

from pruning_env.env import PruningEnv
from pruning_env.integrations.vector import async_vector_env, supersuit_vec_env

ENV_KWARGS = {"reward": "neg_loss", "reward_steps": 3, "target_sparsity": 0.9, "device": "cpu"}
NUM_LAYERS, NUM_FEATURES = 6, 34  # mlp-digits
PLANS = np.random.default_rng(0).uniform(0.0, 1.0, (2, NUM_LAYERS)).astype(np.float32)
SEEDS = (7, 8)


@pytest.fixture(scope="module")
def expected_rewards() -> list[float]:
    """The plain env's reward of PLANS[c] on the instance of SEEDS[c] (one torch thread, as in the workers)."""
    env = PruningEnv(**ENV_KWARGS)
    rewards = []
    for seed, plan in zip(SEEDS, PLANS, strict=True):
        env.reset(seed=seed)
        _, reward, _, _, _ = env.step({f"layer_{i}": np.array([p]) for i, p in enumerate(plan)})
        rewards.append(reward["layer_0"])
    return rewards


@pytest.fixture
def multithreaded_parent():
    """Torch's thread pool runs here with two threads, and the default start method is spawn, as torchrl sets it."""
    threads, method = torch.get_num_threads(), multiprocessing.get_start_method(allow_none=True)
    torch.set_num_threads(2)
    torch.ones(256, 256) @ torch.ones(256, 256)
    multiprocessing.set_start_method("spawn", force=True)
    yield
    torch.set_num_threads(threads)
    multiprocessing.set_start_method(method, force=True)


def caller_settings_restored() -> bool:
    return torch.get_num_threads() == 2 and multiprocessing.get_start_method() == "spawn"


@pytest.mark.timeout(180)
def test_supersuit_two_processes_step_every_copy(expected_rewards, multithreaded_parent):
    env = supersuit_vec_env(num_envs=2, num_cpus=2, **ENV_KWARGS)
    assert caller_settings_restored()
    try:
        observations, _ = env.reset(seed=SEEDS[0])  # copy c is reset with seed SEEDS[0] + c
        assert observations.shape == (2 * NUM_LAYERS, NUM_FEATURES)
        for _ in range(2):  # the second step runs on the auto-reset episode, on the same instances
            _, rewards, terminations, truncations, _ = env.step(PLANS.reshape(-1, 1))
            assert terminations.all() and not truncations.any()
            np.testing.assert_allclose(rewards.reshape(2, NUM_LAYERS), np.repeat([expected_rewards], NUM_LAYERS, 0).T, rtol=1e-6)
    finally:
        env.close()


@pytest.mark.timeout(180)
def test_async_vector_env_resets_in_the_same_step(expected_rewards, multithreaded_parent):
    env = async_vector_env(num_envs=2, **ENV_KWARGS)
    assert caller_settings_restored()
    try:
        first, _ = env.reset(seed=list(SEEDS))
        assert first.shape == (2, NUM_LAYERS, NUM_FEATURES)
        for _ in range(2):  # one-step episodes: every step is a real step, never a reset step
            observations, rewards, terminations, truncations, infos = env.step(PLANS)
            assert terminations.all() and not truncations.any()
            np.testing.assert_array_equal(rewards, expected_rewards)
            np.testing.assert_array_equal(observations, first)  # init="fixed": the next episode's instance is the same
            np.testing.assert_allclose(infos["final_info"]["global_sparsity"], 0.9, atol=1e-3)
    finally:
        env.close()
