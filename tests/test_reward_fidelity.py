"""Fidelity as a costed choice (``pruning_env.fidelity``): costs by hand, requests equal to the env options they
stand for, the compute limit, and the successive-halving searcher against its own start."""

from __future__ import annotations

import numpy as np
import pytest

from agents import CMAESSearch, SuccessiveHalvingSearch
from agents.base import stacked, to_actions
from pruning_env.fidelity import MAX_ORDERS, ComputeLimitReached, Fidelity
from pruning_env.multi_task import MultiTaskPruningEnv
from pruning_env.parallel import PruningEnv


def small_env(**options: object) -> PruningEnv:
    return PruningEnv("mlp-digits", **{"target_sparsity": 0.9, "reward_steps": 3, "device": "cpu", **options})


def plan_of(env: PruningEnv) -> np.ndarray:
    return np.linspace(0.8, 0.95, len(env.possible_agents))


def test_each_result_costs_its_sample_steps_by_hand() -> None:
    env = small_env()
    eval_size = min(env.task.reward_eval_size, len(env.data.x_val))
    reward_batch, final_batch = env.task.reward_train.batch_size, env.task.final_train.batch_size
    cases = [
        (None, 3 * reward_batch + eval_size),
        (Fidelity(7), 7 * reward_batch + eval_size),
        (Fidelity(5, orders=2, schedule="final"), 2 * (5 * final_batch + eval_size)),
        (Fidelity(0, orders=3), eval_size),
    ]
    spent = 0
    for fidelity, expected in cases:
        [result] = env.evaluate_plans([(0, plan_of(env))], fidelity=fidelity)
        assert result.cost == expected, fidelity
        spent += expected
    assert env.compute_spent == spent
    zero_cost = small_env(reward="zero_cost")
    assert zero_cost.evaluate_plan(0, plan_of(zero_cost)).cost == 2


def test_a_requested_fidelity_is_the_env_option_it_stands_for() -> None:
    env = small_env()
    plan = plan_of(env)
    asked = env.evaluate_plans([(1, plan)], fidelity={"steps": 6, "orders": 2})[0].reward
    assert asked == small_env(reward_steps=6, reward_orders=2).evaluate_plan(1, plan).reward
    final = env.evaluate_plans([(1, plan)], fidelity=Fidelity(6, schedule="final"))[0].reward
    assert final == small_env(reward_steps=6, reward_schedule="final").evaluate_plan(1, plan).reward
    assert final != asked
    assert env.evaluate_plan(1, plan).reward == small_env().evaluate_plan(1, plan).reward  # the env's own again
    observations, _ = env.reset(seed=1, options={"fidelity": {"steps": 6, "orders": 2}})
    _, rewards, *_ = env.step(to_actions(plan))
    assert set(rewards.values()) == {asked}
    multi = MultiTaskPruningEnv(["mlp-digits"], target_sparsity=0.9, reward_steps=3, device="cpu")
    [result] = multi.evaluate_plans([(1, plan)], fidelity=Fidelity(6, orders=2))
    assert result.cost == env.cost_of(Fidelity(6, orders=2))


@pytest.mark.parametrize("fidelity", [
    Fidelity(-1), Fidelity(601), Fidelity(10, orders=0), Fidelity(10, orders=MAX_ORDERS + 1),
    Fidelity(10, schedule="cosine"), {"steps": 10, "order": 2}, {"orders": 2}, 10,  # type: ignore[arg-type]
])
def test_a_fidelity_out_of_range_is_a_value_error(fidelity: object) -> None:
    env = small_env()
    with pytest.raises(ValueError, match="fidelity"):
        env.evaluate_plans([(0, plan_of(env))], fidelity=fidelity)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fidelity"):
        env.reset(seed=0, options={"fidelity": fidelity})


def test_the_zero_cost_reward_takes_no_fidelity_and_limits_must_be_positive() -> None:
    env = small_env(reward="zero_cost")
    with pytest.raises(ValueError, match="zero_cost"):
        env.evaluate_plans([(0, plan_of(env))], fidelity=Fidelity(5))
    for limit in (0, -5, 2.5):
        with pytest.raises(ValueError, match="compute_limit"):
            small_env(compute_limit=limit)


def test_the_compute_limit_stops_a_controller_at_the_limit() -> None:
    cost = small_env().cost_of(Fidelity(3))
    env = small_env(compute_limit=25 * cost)
    searcher = CMAESSearch(env, episodes=100, popsize=10, seed=0, progress=False)
    with pytest.raises(ComputeLimitReached, match="compute_limit"):
        searcher.search()
    assert env.compute_spent == 25 * cost and env.compute_left == 0  # every evaluation that fitted ran
    assert len(searcher.evaluated) == 20  # two generations; the third's pool call stopped after 5 plans
    assert searcher.best_plan is not None  # the best of what it was told stays usable
    with pytest.raises(ComputeLimitReached):
        env.evaluate_plan(0, plan_of(env))
    assert env.compute_spent == 25 * cost


def test_successive_halving_beats_its_own_single_fidelity_start() -> None:
    env = PruningEnv("mlp-digits", target_sparsity=0.9, device="cpu")
    rungs = (5, 15, 45)
    compute = 80_000
    searcher = SuccessiveHalvingSearch(env, compute=compute, rungs=rungs, eta=3, seed=0)
    report = searcher.search()
    assert searcher.spent <= compute < searcher.spent + env.cost_of(Fidelity(rungs[0]))  # stopped at the budget
    per_rung = [sum(1 for rung, _, _ in searcher.evaluations if rung == r) for r in range(len(rungs))]
    assert per_rung[0] > per_rung[1] > per_rung[2] >= 1  # fewer candidates at every higher fidelity
    start = searcher.evaluations[0][2]  # the reference plan (global SNIP's), the first candidate
    start_top = env.evaluate_plans([(0, start)], fidelity=Fidelity(rungs[-1]))[0].reward
    assert searcher.best_rung == len(rungs) - 1
    assert report.best_reward == searcher.best_reward > start_top
    observations, infos = env.reset(seed=0)
    np.testing.assert_allclose([a[0] for a in searcher.act(observations, infos).values()], searcher.best_plan,
                               rtol=1e-6)
    assert len(stacked(observations)) == len(searcher.best_plan)


def test_successive_halving_refuses_bad_settings() -> None:
    env = small_env()
    with pytest.raises(ValueError, match="rungs"):
        SuccessiveHalvingSearch(env, rungs=(10, 5))
    with pytest.raises(ValueError, match="fidelity steps"):
        SuccessiveHalvingSearch(env, rungs=(10, 10_000))
    with pytest.raises(ValueError, match="compute"):
        SuccessiveHalvingSearch(env, compute=10, rungs=(10, 20))
    with pytest.raises(ValueError, match="eta"):
        SuccessiveHalvingSearch(env, eta=1)
