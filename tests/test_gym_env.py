"""The single-controller Gymnasium env: registration, and agreement with the parallel env (Gymnasium's checker on
every registered id: ``test_registered_ids.py``)."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import pruning_env  # noqa: F401  (registers the ids)
from pruning_env.gym_env import PruningControllerEnv
from pruning_env.parallel import PruningEnv
from pruning_env.tasks import TASKS


def test_every_task_is_registered_under_the_namespace() -> None:
    for task in TASKS.values():
        spec = gymnasium.spec(f"pruning_env/{task.env_id}")
        assert spec.kwargs == {"task": task.name}


def test_make_and_step_match_the_parallel_env() -> None:
    env = gymnasium.make("pruning_env/MlpDigits-v1", reward_steps=5)
    observation, info = env.reset(seed=4)
    assert observation.shape == env.observation_space.shape == (6, len(env.unwrapped.feature_names))
    plan = np.linspace(0.9, 0.999, 6, dtype=np.float32)
    _, reward, terminated, truncated, info = env.step(plan)
    assert terminated and not truncated
    assert info["applied_sparsity"].shape == (6,)
    assert info["effective_sparsity"] == env.unwrapped.last_result.effective_sparsity >= info["global_sparsity"]
    assert "step_seconds" not in info and env.unwrapped.last_result.step_seconds > 0  # wall times: on the result

    parallel = PruningEnv(reward_steps=5)
    parallel_obs, _ = parallel.reset(seed=4)
    np.testing.assert_array_equal(observation, np.stack(list(parallel_obs.values())))
    _, rewards, _, _, infos = parallel.step({agent: plan[i : i + 1] for i, agent in enumerate(parallel.possible_agents)})
    assert reward == rewards["layer_0"]
    np.testing.assert_array_equal(info["applied_sparsity"], [infos[a]["applied_sparsity"] for a in parallel.possible_agents])


def test_wrong_action_shape_and_discrete_actions_are_rejected() -> None:
    env = PruningControllerEnv(reward_steps=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must have shape \(6,\)"):
        env.step(np.zeros(5))
    with pytest.raises(ValueError, match="continuous action"):
        PruningControllerEnv(action_type="discrete")
