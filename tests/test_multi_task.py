"""MultiTaskPruningEnv: PettingZoo's checker, seeding, episodes on the drawn sub-env, the protocol both envs satisfy,
padding, errors, MAPPO."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gymnasium.utils import seeding
from pettingzoo.test import parallel_api_test

from agents.mappo import MappoController
from pruning_env import MultiTaskPruningEnv
from pruning_env.parallel import PruningEnv
from pruning_env.pools.protocol import EnvInfo

TASKS = ("mlp-digits", "cnn-digits")  # 6 and 7 prunable layers
FAST = {"reward": "neg_loss", "reward_steps": 2}


def make_env(**kwargs) -> MultiTaskPruningEnv:
    return MultiTaskPruningEnv(TASKS, **FAST, **kwargs)


@pytest.fixture(scope="module")
def env() -> MultiTaskPruningEnv:
    return make_env(render_mode="ansi")


def fixed_actions(agents: list[str]) -> dict[str, np.ndarray]:
    return {agent: np.array([0.5 + 0.05 * i], dtype=np.float32) for i, agent in enumerate(agents)}


def episodes(env: MultiTaskPruningEnv, seed: int, count: int) -> list[tuple[int, np.ndarray, float]]:
    """(task index, stacked observations, reward) of ``count`` episodes: reset(seed), then reset()."""
    runs = []
    for episode in range(count):
        observations, _ = env.reset(seed=seed) if episode == 0 else env.reset()
        _, rewards, _, _, _ = env.step(fixed_actions(env.agents))
        runs.append((env.task_index, np.stack(list(observations.values())), rewards["layer_0"]))
    return runs


@pytest.mark.filterwarnings("ignore:No agents present")  # a 6-layer episode never ends layer_6 (not in it)
def test_parallel_api(env):
    parallel_api_test(env, num_cycles=3)


def test_same_seed_same_tasks_observations_and_rewards_other_seed_other_tasks(env):
    first, second = episodes(env, 3, 6), episodes(make_env(), 3, 6)
    assert [run[0] for run in first] == [run[0] for run in second] == [1, 0, 0, 1, 0, 0]
    for (_, obs_a, reward_a), (_, obs_b, reward_b) in zip(first, second, strict=True):
        np.testing.assert_array_equal(obs_a, obs_b)
        assert reward_a == reward_b
    assert [run[0] for run in episodes(env, 4, 6)] == [1, 1, 1, 1, 0, 0]


def test_episodes_are_the_drawn_sub_env_reset_with_the_drawn_sub_seed(env):
    alone = [PruningEnv(task, **FAST) for task in TASKS]
    rng, _ = seeding.np_random(0)
    drawn = set()
    for episode in range(12):
        observations, infos = env.reset(seed=0) if episode == 0 else env.reset()
        index, sub_seed = int(rng.integers(2)), int(rng.integers(2**31 - 1))
        assert env.task_index == index and env.current is env.envs[index]
        assert env.agents == env.envs[index].possible_agents
        expected, _ = alone[index].reset(seed=sub_seed)
        assert observations.keys() == expected.keys()
        for agent in expected:
            np.testing.assert_array_equal(observations[agent], expected[agent])
            assert infos[agent]["task_index"] == float(index)
        drawn.add(index)
    assert drawn == {0, 1}


def test_state_pads_the_six_layer_task_with_zero_rows(env):
    env.reset(seed=1)
    assert env.task_index == 0 and len(env.agents) == 6
    features = len(env.feature_names)
    state = env.state()
    assert state.shape == env.state_space.shape == (7 * features,)
    np.testing.assert_array_equal(state[: 6 * features], env.current.state())
    assert not state[6 * features :].any()


def test_the_episode_runs_on_the_drawn_sub_env_with_its_plan_masks_and_render(env):
    env.reset(seed=0)
    _, rewards, terminations, _, infos = env.step(fixed_actions(env.agents))
    assert env.task_index == 1 and len(rewards) == 7 and all(terminations.values()) and env.agents == []
    assert all(info["task_index"] == 1.0 for info in infos.values())
    episode = env.current
    assert episode is env.envs[1] and episode.task.name == "cnn-digits" and len(episode.layers) == 7
    assert episode.last_result.target_sparsity == episode.target_sparsity
    assert env.render().splitlines()[0] == "task 1: cnn-digits"
    pruned = episode.pruned_model()  # the drawn sub-env's initialization, zero exactly where its masks prune
    for layer in episode.layers:
        assert torch.equal(pruned.get_submodule(layer.name).weight != 0, episode.last_masks[layer.name])


def test_both_envs_satisfy_one_protocol(env):
    """``PlanEnv``: a single-task env is its own ``current`` and its only ``envs``; the labels name what is posed."""
    single = env.envs[0]
    assert single.current is single and single.envs == [single]
    assert single.label == f"mlp-digits, target {single.target_sparsity:g}, reward neg_loss K=2"
    assert env.label == f"2 tasks, target {single.target_sparsity:g}, reward neg_loss K=2"
    assert EnvInfo.of(env).label == env.label and EnvInfo.of(single).label == single.label


def test_errors_name_the_problem(env):
    with pytest.raises(ValueError, match="non-empty"):
        MultiTaskPruningEnv(())
    with pytest.raises(ValueError, match=r"tasks\[1\] has feature_names"):
        MultiTaskPruningEnv(["mlp-digits", PruningEnv("cnn-digits", proxies=("snip",), **FAST)], **FAST)
    fresh = make_env()
    for call in (lambda: fresh.step({}), fresh.state, lambda: fresh.current):
        with pytest.raises(ValueError, match="reset"):
            call()
    with pytest.raises(ValueError, match="unknown agent"):
        env.observation_space("layer_7")
    env.reset(seed=1)
    with pytest.raises(ValueError, match=r"\['layer_6'\].*task 0 \(mlp-digits\)"):
        env.step(fixed_actions(env.possible_agents))


def test_draws_per_episode():
    fixed = PruningEnv("mlp-digits", **FAST)
    assert not fixed.draws_per_episode
    assert PruningEnv("mlp-digits", target_sparsity=(0.9, 0.98), **FAST).draws_per_episode
    assert PruningEnv("mlp-digits", init="per_episode", **FAST).draws_per_episode
    assert make_env().draws_per_episode
    # one task: every reset draws a new sub-seed, so only a fixed init seed and target repeat the instance
    assert MultiTaskPruningEnv([fixed]).draws_per_episode
    assert not MultiTaskPruningEnv(["mlp-digits"], init=0, **FAST).draws_per_episode


def test_mappo_trains_and_acts_on_both_tasks(env):
    controller = MappoController(env, progress=False, tensorboard=False, episodes_per_update=4)
    report = controller.train(make_env, episodes=8, seed=0)
    assert report.episodes == 8
    assert len(report.history) == 2 and all(math.isfinite(row["reward_mean"]) for row in report.history)
    assert math.isfinite(report.best_reward)
    for seed in (0, 1):  # cnn-digits, then mlp-digits
        observations, infos = env.reset(seed=seed)
        actions = controller.act(observations, infos)
        assert actions.keys() == set(env.agents)
        env.step(actions)
