"""Seeding of ``PruningEnv``: PettingZoo's own ``parallel_seed_test`` on the real clock (every registered id:
``test_registered_ids.py``), determinism over consecutive episodes (``parallel_seed_test`` compares one step only),
and the wall times kept out of the infos, on the result."""

from __future__ import annotations

import math

import gymnasium
import numpy as np
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_seed_test

from pruning_env import PruningEnv
from pruning_env.rewards import REWARDS


def _make_env(**options: object) -> PruningEnv:
    return PruningEnv("mlp-digits", reward="neg_loss", reward_steps=2, device="cpu", **options)


def test_pettingzoo_parallel_seed_test() -> None:
    parallel_seed_test(_make_env)


def test_the_checkers_pass_under_every_reward_kind() -> None:
    """The zero-cost reward trains nothing: its infos hold no accuracy or loss (NaN != NaN failed both checkers)."""
    for reward in REWARDS:
        options = {"reward": reward} if reward == "zero_cost" else {"reward": reward, "reward_steps": 2}
        parallel_seed_test(lambda: PruningEnv("mlp-digits", device="cpu", **options))  # noqa: B023 (called at once)
        check_env(gymnasium.make("pruning_env/MlpDigits-v1", **options).unwrapped, skip_render_check=True)
        env = PruningEnv("mlp-digits", device="cpu", **options)
        _, reset_infos = env.reset(seed=0)
        _, _, _, _, step_infos = env.step(_actions(env))
        assert reset_infos["layer_0"].keys() == step_infos["layer_0"].keys()
        assert ("accuracy" in step_infos["layer_0"]) == (reward != "zero_cost"), reward
        assert all(math.isfinite(value) for value in step_infos["layer_0"].values()), (reward, step_infos["layer_0"])


def test_wall_times_are_on_the_result_not_in_the_infos() -> None:
    env = _make_env()
    _, reset_infos = env.reset(seed=0)
    _, _, _, _, step_infos = env.step(_actions(env))
    for key in ("seconds", "reward_seconds", "step_seconds", "reset_seconds"):
        assert not any(key in info for info in (*reset_infos.values(), *step_infos.values()))
    result = env.last_result
    assert 0 < result.seconds < result.step_seconds and result.reset_seconds > 0
    assert all(math.isfinite(t) for t in (result.seconds, result.step_seconds, result.reset_seconds))
    plan_results = env.evaluate_plans([(0, np.full(6, 0.9)), (1, np.full(6, 0.9))])
    assert all(r.step_seconds == plan_results[0].step_seconds > 0 and r.reset_seconds > 0 for r in plan_results)


def _actions(env: PruningEnv) -> dict[str, np.ndarray]:
    return {agent: np.array([0.5 + 0.08 * i], dtype=np.float32) for i, agent in enumerate(env.possible_agents)}


def _episodes(env: PruningEnv, seed: int, count: int) -> list[dict[str, object]]:
    """``count`` episodes: reset(seed) then reset() without a seed, each followed by one step with fixed actions."""
    episodes = []
    for episode in range(count):
        observations, reset_infos = env.reset(seed=seed) if episode == 0 else env.reset()
        step_observations, rewards, terminations, truncations, step_infos = env.step(_actions(env))
        assert all(terminations.values()) and not any(truncations.values()) and env.agents == []
        episodes.append(
            {
                "observations": observations,
                "reset_infos": reset_infos,
                "step_observations": step_observations,
                "rewards": rewards,
                "step_infos": step_infos,
            }
        )
    return episodes


def _same_number(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _assert_identical(first: dict[str, object], second: dict[str, object], episode: int) -> None:
    for key in ("observations", "step_observations"):
        assert first[key].keys() == second[key].keys()
        for agent in first[key]:
            assert first[key][agent].dtype == second[key][agent].dtype
            assert np.array_equal(first[key][agent], second[key][agent]), f"episode {episode}: {key}[{agent}]"
    assert first["rewards"] == second["rewards"], f"episode {episode}: rewards"
    for key in ("reset_infos", "step_infos"):
        assert first[key].keys() == second[key].keys()
        for agent, info in first[key].items():
            other = second[key][agent]
            assert info.keys() == other.keys()
            for name in info:
                assert _same_number(info[name], other[name]), f"episode {episode}: {key}[{agent}][{name}]"


def test_three_consecutive_episodes_are_reproduced_by_a_second_env() -> None:
    first = _episodes(_make_env(init="per_episode"), seed=7, count=3)
    second = _episodes(_make_env(init="per_episode"), seed=7, count=3)
    for episode, (a, b) in enumerate(zip(first, second, strict=True)):
        _assert_identical(a, b, episode)

    # each episode drew a new initialization: other init seeds, other observations and rewards
    init_seeds = [episode["step_infos"]["layer_0"]["init_seed"] for episode in first]
    assert len(set(init_seeds)) == 3
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert not np.array_equal(first[a]["observations"]["layer_0"], first[b]["observations"]["layer_0"])
        assert first[a]["rewards"]["layer_0"] != first[b]["rewards"]["layer_0"]
    # the step ran: the reward is the negative validation loss of the trained net, finite and below 0
    for episode in first:
        assert math.isfinite(episode["rewards"]["layer_0"]) and episode["rewards"]["layer_0"] < 0
        assert episode["rewards"]["layer_0"] == -episode["step_infos"]["layer_0"]["loss"]


def test_another_seed_gives_other_observations() -> None:
    env = _make_env(init="per_episode")
    seven, _ = env.reset(seed=7)
    eight, _ = env.reset(seed=8)
    seven_again, _ = env.reset(seed=7)
    assert all(np.array_equal(seven[agent], seven_again[agent]) for agent in seven)
    assert any(not np.array_equal(seven[agent], eight[agent]) for agent in seven)
