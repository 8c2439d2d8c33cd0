"""RLlib: PruningEnv registered as a MultiAgentEnv, PPO with one policy shared by every layer agent and two env
runners trains a few iterations on mlp-digits on a local Ray cluster."""

from __future__ import annotations

import numpy as np
import pytest
from ray.rllib.algorithms.ppo import PPOConfig

from pruning_env.integrations.rllib import (
    SHARED_POLICY,
    RLlibPruningEnv,
    register,
    shared_policy,
    with_shared_policy,
)

ENV_CONFIG = {"reward": "neg_loss", "reward_steps": 2, "target_sparsity": 0.9, "device": "cpu"}
NUM_LAYERS = 6  # mlp-digits


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    yield


def test_env_lists_agents_in_layer_order_and_renders():
    env = RLlibPruningEnv({**ENV_CONFIG, "render_mode": "ansi"})
    agents = [f"layer_{i}" for i in range(NUM_LAYERS)]
    assert env.agents == env.possible_agents == agents
    observations, _ = env.reset(seed=0)
    assert list(observations) == agents
    _, rewards, terminations, truncations, _ = env.step({agent: np.array([0.5], np.float32) for agent in agents})
    assert len(set(rewards.values())) == 1 and terminations["__all__"] and not truncations["__all__"]
    assert "layer_5" in env.render()
    assert {shared_policy(agent, None) for agent in agents} == {SHARED_POLICY}


@pytest.mark.slow
def test_ppo_with_a_shared_policy_and_two_env_runners_trains(cluster):
    config = (
        PPOConfig()
        .environment(register(), env_config=ENV_CONFIG)
        .env_runners(num_env_runners=2, rollout_fragment_length=4)
        .training(train_batch_size_per_learner=8, minibatch_size=8, num_epochs=2, lr=1e-3)
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .debugging(seed=0)
    )
    algo = with_shared_policy(config).build_algo()
    try:
        steps = 0
        for _ in range(3):
            result = algo.train()
            runners = result["env_runners"]
            assert runners["num_env_steps_sampled_lifetime"] >= steps + 8  # 8 one-step episodes per iteration
            steps = runners["num_env_steps_sampled_lifetime"]
            # neg_loss of a ten-class net near chance is about -ln(10) per agent; RLlib sums the six agents
            assert -NUM_LAYERS * 3.0 < runners["episode_return_mean"] < -NUM_LAYERS * 2.0
            assert set(result["learners"]) - {"__all_modules__"} == {SHARED_POLICY}
            assert np.isfinite(result["learners"][SHARED_POLICY]["total_loss"])
        assert len(algo.env_runner_group.healthy_worker_ids()) == 2
    finally:
        algo.stop()
