"""Vectorized use without Ray: SuperSuit's multi-process concatenation of the layer agents, and Gymnasium's
AsyncVectorEnv of the controller env; both return the rewards the plain env gives the same plans, also when the
parent runs torch multi-threaded (forked workers would hang without the one-thread guard) and the process-wide
start method is "spawn" (as after importing torchrl; the helpers still fork, quickly). A script that leaves a
SuperSuit env open still exits, and the ``with`` form closes the workers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pruning_env.integrations.vector import async_vector_env, supersuit_vec_env
from pruning_env.parallel import PruningEnv

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
    env = supersuit_vec_env(num_envs=2, workers=2, **ENV_KWARGS)
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


UNCLOSED_SCRIPT = """
import numpy as np
from pruning_env.integrations.vector import supersuit_vec_env

venv = supersuit_vec_env(num_envs=2, workers=2, reward="neg_loss", reward_steps=2)
observations, _ = venv.reset(seed=0)
venv.step(np.full((observations.shape[0], 1), 0.5, np.float32))
print("worker pids", *[process.pid for process in venv.procs], flush=True)
# no close(): the helpers' exit handler must close it before multiprocessing joins the workers
"""


@pytest.mark.timeout(120)
def test_a_process_that_leaves_the_supersuit_env_open_exits():
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    process = subprocess.Popen([sys.executable, "-c", UNCLOSED_SCRIPT], cwd=root, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the script and its SuperSuit workers
        output, _ = process.communicate()
        pytest.fail(f"the script did not exit within 60 s with its vector env left open; output:\n{output}")
    assert process.returncode == 0, output
    pids = [int(pid) for pid in output.split("worker pids", 1)[1].split()]
    assert len(pids) == 2, output
    for pid in pids:  # closed and joined at exit, not left behind
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.timeout(120)
def test_the_with_block_closes_the_workers_and_closing_again_is_harmless():
    with supersuit_vec_env(num_envs=2, workers=2, **ENV_KWARGS) as env:
        processes = list(env.procs)
        assert all(process.is_alive() for process in processes)
        env.reset(seed=SEEDS[0])
    for process in processes:
        process.join(timeout=10)
    assert not any(process.is_alive() for process in processes)
    env.close()  # twice: nothing happens

    with async_vector_env(num_envs=2, **ENV_KWARGS) as genv:
        processes = list(genv.processes)
        assert all(process.is_alive() for process in processes)
    assert genv.closed and not any(process.is_alive() for process in processes)
    genv.close()
