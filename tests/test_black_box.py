"""CMA-ES and TPE (``agents.black_box``): each improves on its starting plan (the reference allocation) on a cheap
deterministic reward (zero-cost SynFlow: no training), reproduces with its seed, returns its best plan, and
rejects a budget below one generation, a reference the observation lacks, and NaN rewards are handled."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from agents import CONTROLLERS, make_controller
from agents.plan_search import WORST, offset_plans
from pruning_env.parallel import PruningEnv
from pruning_env.pools import LocalPool

SEARCHERS = ("cma_es", "tpe")


@pytest.fixture(scope="module")
def env() -> PruningEnv:
    return PruningEnv("mlp-digits", target_sparsity=0.99, reward="zero_cost", device="cpu")


@pytest.mark.parametrize("name", SEARCHERS)
def test_the_search_improves_on_its_starting_plan_and_acts_with_its_best(env: PruningEnv, name: str) -> None:
    searcher = make_controller(name, env, seed=0, episodes=40, progress=False)
    start = env.evaluate_plan(0, searcher.reference_plan(0)).reward  # global SNIP's plan: x = 0
    report = searcher.search()
    assert len(report.history) == report.episodes == 40
    assert report.best_reward > start + 0.1  # log10 units of SynFlow's surviving flow
    assert [row["best_reward"] for row in report.history] == sorted(row["best_reward"] for row in report.history)
    observations, infos = env.reset(seed=0)
    plan = np.array([searcher.act(observations, infos)[agent][0] for agent in env.possible_agents])
    assert env.evaluate_plan(0, plan).reward == pytest.approx(report.best_reward)


@pytest.mark.parametrize("name", SEARCHERS)
def test_the_search_reproduces_with_its_seed_and_differs_with_another(env: PruningEnv, name: str) -> None:
    first = make_controller(name, env, seed=1, episodes=20, progress=False).search()
    again = make_controller(name, env, seed=1, episodes=20, progress=False).search()
    other = make_controller(name, env, seed=2, episodes=20, progress=False).search()
    assert first.history == again.history
    assert first.history != other.history


def test_tpe_evaluates_the_reference_first_and_cma_es_ends_with_a_partial_generation(env: PruningEnv) -> None:
    tpe = make_controller("tpe", env, seed=0, episodes=12, batch=5, progress=False)
    report = tpe.search()
    assert report.history[0]["reward_mean"] == pytest.approx(env.evaluate_plan(0, tpe.reference_plan(0)).reward)
    cma_es = make_controller("cma_es", env, seed=0, episodes=25, popsize=10, progress=False)
    assert len(cma_es.search().history) == 25


def test_bad_budgets_and_references_are_value_errors(env: PruningEnv) -> None:
    with pytest.raises(ValueError, match="episodes must be an integer >= 10"):
        make_controller("cma_es", env, episodes=9, popsize=10)
    with pytest.raises(ValueError, match="popsize"):
        make_controller("cma_es", env, popsize=1)
    with pytest.raises(ValueError, match="sigma"):
        make_controller("cma_es", env, sigma=0.0)
    with pytest.raises(ValueError, match="bound"):
        make_controller("tpe", env, bound=-1.0)
    with pytest.raises(ValueError, match="fisher_density"):
        make_controller("tpe", env, reference="fisher")
    searcher = make_controller("tpe", env, episodes=5, progress=False)
    with pytest.raises(ValueError, match="search"):
        searcher.act(*env.reset(seed=0))
    with pytest.raises(ValueError, match="episodes must be"):
        searcher.search(episodes=0)


class NaNPool(LocalPool):
    """A pool whose every third result has a NaN reward (as a user's own env might give)."""

    def evaluate(self, requests, progress=None):
        results = super().evaluate(requests, progress)
        return [replace(r, reward=float("nan")) if i % 3 == 0 else r for i, r in enumerate(results)]


@pytest.mark.parametrize("name", SEARCHERS)
def test_nan_rewards_count_as_the_worst_and_never_win(env: PruningEnv, name: str) -> None:
    searcher = CONTROLLERS[name](None, seed=0, episodes=20, progress=False, pool=NaNPool([env]))
    report = searcher.search()
    rewards = [row["reward_mean"] for row in report.history]
    assert rewards.count(WORST) >= 6
    assert np.isfinite(report.best_reward) and report.best_reward > WORST


def test_offset_zero_is_the_reference_rounded_to_float32() -> None:
    center = np.array([0.5, 0.9, 0.99, 0.0])
    plan = offset_plans(center, np.zeros((1, 4)))[0]
    np.testing.assert_allclose(plan, [0.5, 0.9, 0.99, 1e-4], rtol=1e-6)
    assert plan.dtype == np.float64 and np.array_equal(plan, plan.astype(np.float32))
