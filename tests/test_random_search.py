"""Random search: the plan distribution, the best-of-N bookkeeping and reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from agents import make_controller
from agents.random_search import RandomSearch, sample_plans
from pruning_env.parallel import PruningEnv
from pruning_env.pools import LocalPool

SEED = 5


@pytest.fixture(scope="module")
def env():
    return PruningEnv(reward="zero_cost", target_sparsity=0.9, device="cpu")


def reward_of(env: PruningEnv, actions) -> float:
    env.reset(seed=SEED)
    _, rewards, _, _, _ = env.step(actions)
    return rewards["layer_0"]


def test_plans_are_logit_normal_around_the_reference():
    reference = np.array([0.5, 0.5, 0.9])
    plans = sample_plans(reference, 2.0, 3, np.random.default_rng(0))
    noise = np.random.default_rng(0).standard_normal((3, 3))
    np.testing.assert_allclose(plans[:, :2], expit(2.0 * noise[:, :2]))
    np.testing.assert_allclose(plans[:, 2], expit(np.log(9.0) + 2.0 * noise[:, 2]))


def test_zero_scale_gives_the_reference_and_extremes_are_clipped():
    plans = sample_plans(np.array([0.0, 0.3, 1.0]), 0.0, 2, np.random.default_rng(0))
    np.testing.assert_allclose(plans, [[1e-4, 0.3, 1 - 1e-4]] * 2)


def test_keeps_the_best_of_n_plans_and_acts_with_it(env):
    search = RandomSearch(env, episodes=6, reference="erk", scale=1.0, seed=SEED, progress=False)
    report = search.search()
    rewards = [row["reward_mean"] for row in report.history]
    assert report.episodes == 6 and len(rewards) == 6
    assert report.best_reward == max(rewards) == search.best_reward
    assert [row["best_reward"] for row in report.history] == list(np.maximum.accumulate(rewards))
    observations, infos = env.reset(seed=SEED)
    assert reward_of(env, search.act(observations, infos)) == report.best_reward


def test_include_reference_evaluates_the_reference_first(env):
    search = RandomSearch(env, episodes=2, reference="snip", seed=SEED, include_reference=True, progress=False)
    report = search.search()
    observations, infos = env.reset(seed=SEED)
    assert report.history[0]["reward_mean"] == reward_of(env, make_controller("global_snip", env).act(observations, infos))


def test_same_seed_same_search_and_protocol_arguments(env):
    first = RandomSearch(env, episodes=3, seed=1, progress=False).search()
    second = RandomSearch(env, episodes=99, seed=0, progress=False).search(episodes=3, seed=1)
    assert first.history == second.history


def test_registered_and_validated(env):
    assert isinstance(make_controller("random_search", env, episodes=2, progress=False), RandomSearch)
    with pytest.raises(ValueError, match="episodes"):
        RandomSearch(env, episodes=0)
    with pytest.raises(ValueError, match="scale"):
        RandomSearch(env, scale=-1.0)
    with pytest.raises(ValueError, match="fisher_density"):
        RandomSearch(env, reference="fisher")
    with pytest.raises(ValueError, match="search"):
        RandomSearch(env).act({}, {})
    with pytest.raises(ValueError, match="exactly one of env"):
        RandomSearch(None)


def test_a_pool_replaces_the_env_and_gives_the_same_search() -> None:
    options = {"target_sparsity": 0.9, "reward": "zero_cost", "device": "cpu"}
    local = RandomSearch(PruningEnv(**options), episodes=4, seed=3, progress=False)
    local.search()
    with LocalPool([options]) as pool:
        pooled = RandomSearch(None, episodes=4, seed=3, progress=False, pool=pool)
        pooled.search()
    np.testing.assert_array_equal(pooled.best_plan, local.best_plan)
    assert pooled.best_reward == local.best_reward


def test_the_batch_only_splits_the_calls_and_each_call_reports_its_best(env):
    whole = RandomSearch(env, episodes=7, seed=2, progress=False, batch=7)
    split = RandomSearch(env, episodes=7, seed=2, progress=False, batch=3)
    seen: list[tuple[int, float]] = []
    split.search(on_update=lambda spent: seen.append((spent, env.evaluate_plan(2, split.current_plan()).reward)))
    assert whole.search().history == split.history
    assert [spent for spent, _ in seen] == [3, 6, 7]
    assert [reward for _, reward in seen] == [split.history[spent - 1]["best_reward"] for spent, _ in seen]
    with pytest.raises(ValueError, match="batch"):
        RandomSearch(env, batch=0)
