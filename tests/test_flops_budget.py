"""The FLOPs budget: the cost-weighted projection (known answers, errors, properties), the compute-aware reference
allocations and observation, the env's infos, the FLOPs tasks, the library checkers and the heuristics on them."""

from __future__ import annotations

import gymnasium
import numpy as np
import pettingzoo
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from pettingzoo.test import api_test, parallel_api_test
from pettingzoo.utils.conversions import parallel_to_aec
from shared import assert_order, three_layers

import pruning_env  # noqa: F401  (registers the ids)
from agents import make_controller
from agents.heuristics import REFERENCE_HEURISTICS
from pruning_env.allocation import (
    erdos_renyi,
    erdos_renyi_kernel,
    erk_densities,
    get_allocation,
    global_ranking,
    global_score,
    global_topk_counts,
    ranking_counts,
    uniform,
)
from pruning_env.budget import (
    _pruned_bounds,
    cost_tolerance,
    counts_to_sparsities,
    project_to_budget,
    target_count,
)
from pruning_env.config import EnvConfig
from pruning_env.features import feature_names, observation_matrix, static_features, summarize_proxy
from pruning_env.gym_env import PruningControllerEnv
from pruning_env.layers import macs_per_weight
from pruning_env.parallel import PruningEnv
from pruning_env.registry import get_task
from pruning_env.tasks import FLOPS_TASKS, TASKS

# ---------------------------------------------------------------------------------------- projection: known answers


def test_a_conv_and_a_linear_layer_by_hand() -> None:
    # Sizes (3, 10), MACs per weight (4, 1): W = 12 + 10 = 22, target 0.5 -> K = 11. Uniform requests stay uniform in
    # the continuous shift: counts (1.5, 5). Floors (1, 5) cost 9 < 11, so layer 0 (the fractional part) gets one:
    # (2, 5), cost 13. Settling: one fewer in layer 0 (the one furthest above its continuous count) gives cost 9,
    # as far below K as 13 is above; on the tie the plan that prunes at least K stays: (2, 5), 2 MACs over K,
    # the bound max(costs) / 2 = 2.
    counts = project_to_budget([0.5, 0.5], [3, 10], 0.5, costs=[4, 1])
    np.testing.assert_array_equal(counts, [2, 5])
    assert int(np.dot(counts, [4, 1])) - 11 == 2 == cost_tolerance([4, 1])


def test_settling_keeps_the_closer_plan() -> None:
    # Sizes (10, 10), MACs per weight (1, 3): W = 40, target 0.5 -> K = 20. Requests 0.6 > 0.4 shift to continuous
    # counts (6.485, 4.505) (10 s0 + 30 s1 = 20). Floors (6, 4) cost 18; the larger fractional part is layer 1's:
    # (6, 5), cost 21; layer 0's unit would start at 21 >= K. One fewer in layer 1 (furthest above its continuous
    # count; it keeps the order) gives 18, 2 below K against 1 above: (6, 5) stays, within 3 / 2 of K.
    np.testing.assert_array_equal(project_to_budget([0.6, 0.4], [10, 10], 0.5, costs=[1, 3]), [6, 5])


def test_unit_costs_are_the_weight_budget() -> None:
    requested, sizes = [0.45, 0.40, 0.35], [1000, 2, 1000]
    np.testing.assert_array_equal(
        project_to_budget(requested, sizes, 0.4, costs=[1, 1, 1]), project_to_budget(requested, sizes, 0.4)
    )


def test_a_plan_within_the_bound_is_returned_unchanged() -> None:
    sizes, costs = np.array([72, 32, 16]), np.array([64, 16, 1])
    counts = np.array([50, 10, 3])  # 3200 + 160 + 3 = 3363 of 5136 MACs
    target = 3363 / 5136
    np.testing.assert_array_equal(project_to_budget(counts_to_sparsities(counts, sizes), sizes, target, costs=costs), counts)
    # 3363 + 20 MACs: still within 64 / 2 of K, so the plan is a feasible one and stays
    np.testing.assert_array_equal(
        project_to_budget(counts_to_sparsities(counts, sizes), sizes, 3383 / 5136, costs=costs), counts
    )


def test_a_layer_without_macs_is_free() -> None:
    # Layer 1 costs nothing: the 40-MAC target (K = 20) falls on layer 0 alone, whatever layer 1 asks.
    counts = project_to_budget([0.5, 0.5], [10, 10], 0.5, costs=[4, 0])
    assert 4 * counts[0] == 20


# -------------------------------------------------------------------------------------------- projection: errors


@pytest.mark.parametrize(
    ("costs", "match"),
    [
        ([1, -1], "integer >= 0 per layer"),
        ([1.5, 1.0], "integer >= 0 per layer"),
        ([1, 1, 1], "integer >= 0 per layer"),
        ([0, 0], "sum to 0"),
    ],
)
def test_bad_costs(costs: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        project_to_budget([0.5, 0.5], [10, 10], 0.5, costs=costs)


def test_infeasible_flops_target() -> None:
    # Each layer keeps a weight: at most 9 * 64 + 9 = 585 of 650 MACs can go (0.9), and 0.95 asks for 618.
    with pytest.raises(ValueError, match=r"prune 618 of 650 cost units.*target_sparsity in \[0, 0.9\]"):
        project_to_budget([0.9, 0.9], [10, 10], 0.95, costs=[64, 1])


# ---------------------------------------------------------------------------------------- projection: properties


@st.composite
def flops_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray, np.ndarray]:
    """Random sizes (1..5000, 1..12 layers), MACs per weight (0..1024), requests with ties, target, keep bounds."""
    sizes = np.array(draw(st.lists(st.integers(1, 5000), min_size=1, max_size=12)))
    costs = np.array([draw(st.integers(0, 1024)) for _ in sizes])
    pool = draw(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=len(sizes)))
    requested = np.array([draw(st.sampled_from(pool)) for _ in sizes])
    target = draw(st.floats(0.0, 1.0))
    if draw(st.booleans()):
        min_kept, max_kept = np.ones_like(sizes), sizes.copy()
    else:
        min_kept = np.array([draw(st.integers(0, int(n))) for n in sizes])
        max_kept = np.array([draw(st.integers(int(lo), int(n))) for lo, n in zip(min_kept, sizes, strict=True)])
    return sizes, costs, requested, target, min_kept, max_kept


@settings(max_examples=500, deadline=None)  # about 45% draw an infeasible target: 250+ feasible cases
@given(flops_problems())
def test_flops_projection_properties(
    problem: tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray, np.ndarray],
) -> None:
    sizes, costs, requested, target, min_kept, max_kept = problem
    assume(costs @ sizes > 0)
    lo, hi = sizes - max_kept, sizes - min_kept
    k = target_count(int(costs @ sizes), target)
    if not costs @ lo <= k <= costs @ hi:
        event("infeasible target")
        with pytest.raises(ValueError, match="allow pruning only"):
            project_to_budget(requested, sizes, target, min_kept=min_kept, max_kept=max_kept, costs=costs)
        return
    counts = project_to_budget(requested, sizes, target, min_kept=min_kept, max_kept=max_kept, costs=costs)
    assert counts.dtype == np.int64
    assert abs(int(costs @ counts) - k) <= costs.max() / 2  # the FLOPs bound: half of one weight's MACs
    assert np.all((lo <= counts) & (counts <= hi))
    assert_order(counts, sizes, requested, lo, hi)
    # a projected plan is a feasible one: it projects onto itself
    again = project_to_budget(
        counts_to_sparsities(counts, sizes), sizes, target, min_kept=min_kept, max_kept=max_kept, costs=costs
    )
    np.testing.assert_array_equal(again, counts)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5000), st.integers(0, 1024)), min_size=1, max_size=12), st.data())
def test_feasible_flops_plans_are_fixed_points(layers: list[tuple[int, int]], data: st.DataObject) -> None:
    sizes, costs = (np.array(column) for column in zip(*layers, strict=True))
    assume(costs @ sizes > 0)
    counts = np.array([data.draw(st.integers(0, int(n) - 1)) for n in sizes])
    target = float(costs @ counts) / float(costs @ sizes)
    assume(abs(target_count(int(costs @ sizes), target) - int(costs @ counts)) <= cost_tolerance(costs))
    np.testing.assert_array_equal(
        project_to_budget(counts_to_sparsities(counts, sizes), sizes, target, costs=costs), counts
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 5000), min_size=1, max_size=12), st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.data()
)
def test_unit_costs_match_the_weight_budget(
    sizes_list: list[int], target: float, request: float, data: st.DataObject
) -> None:
    sizes = np.array(sizes_list)
    lo, hi = _pruned_bounds(sizes, 1, None)
    assume(lo.sum() <= target_count(int(sizes.sum()), target) <= hi.sum())
    requested = np.array([data.draw(st.sampled_from([request, 1.0 - request, 0.5])) for _ in sizes])
    np.testing.assert_array_equal(
        project_to_budget(requested, sizes, target, costs=np.ones_like(sizes)),
        project_to_budget(requested, sizes, target),
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 300), st.integers(0, 1024)), min_size=1, max_size=8), st.data())
def test_cost_ranking_counts_meet_the_target_within_half_a_weight(
    layers: list[tuple[int, int]], data: st.DataObject
) -> None:
    sizes, costs = (np.array(column) for column in zip(*layers, strict=True))
    assume(costs @ sizes > 0)
    generator = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    ranking = global_ranking({str(i): torch.rand(int(n), generator=generator) for i, n in enumerate(sizes)})
    goal = data.draw(st.integers(0, int(costs @ sizes)))
    counts = np.array(ranking_counts(ranking, len(sizes), goal, costs))
    assert abs(int(costs @ counts) - goal) <= costs.max() / 2
    assert np.all((0 <= counts) & (counts <= sizes))


# ------------------------------------------------------------------------ compute-aware allocations and features


def test_macs_per_weight() -> None:
    np.testing.assert_array_equal(macs_per_weight(three_layers()), [4, 1, 1])


def test_erk_rescaled_to_the_compute_target_by_hand() -> None:
    # ERK shape sum(shape) / prod(shape): 15/18, 12/32, 7/12. Keeping half of the 116 MACs: eps * (15/18 * 72 +
    # 12/32 * 32 + 7/12 * 12) = 58, eps = 58/79; no density exceeds 1.
    raw = np.array([15 / 18, 12 / 32, 7 / 12])
    np.testing.assert_allclose(erk_densities(raw, np.array([72, 32, 12]), 0.5), 58 / 79 * raw, rtol=1e-12)
    layers = three_layers()
    pruned = erdos_renyi_kernel(layers, 0.5, "flops") * [18, 32, 12]
    np.testing.assert_allclose(pruned, np.rint(pruned))
    assert abs(int(np.dot(np.rint(pruned), [4, 1, 1])) - 58) <= 2  # within half of the conv's 4 MACs


def test_global_ranking_per_mac_by_hand() -> None:
    # Layer a: 2 weights of 4 MACs, scores (8, 2) -> per MAC (2, 0.5); layer b: 4 weights of 1 MAC, (3, 1, 0.6,
    # 0.1). Half of the 12 MACs: from the bottom of the per-MAC ranking 0.1 (b, 1 MAC), 0.5 (a, 4), 0.6 (b, 1): 6.
    scores = {"a": torch.tensor([8.0, 2.0]), "b": torch.tensor([3.0, 1.0, 0.6, 0.1])}
    assert global_topk_counts(scores, 6, np.array([4, 1])) == {"a": 1, "b": 2}
    assert global_topk_counts(scores, 3) == {"a": 0, "b": 3}  # the weight budget: the 3 lowest scores


def test_flops_observation_columns_are_the_flops_allocations() -> None:
    layers = three_layers()
    torch.manual_seed(1)
    scores = {layer.name: torch.rand(layer.weight_shape) for layer in layers}
    summary = summarize_proxy(layers, scores, "flops")
    names = feature_names(["p"])
    matrix = observation_matrix(layers, static_features(layers), [summary], 0.6, "flops")
    column = {name: matrix[:, names.index(name)] for name in names}
    np.testing.assert_array_equal(column["target_sparsity"], np.float32(0.6))
    np.testing.assert_allclose(column["er_density"], 1 - erdos_renyi(layers, 0.6, "flops"), atol=1e-7)
    np.testing.assert_allclose(column["erk_density"], 1 - erdos_renyi_kernel(layers, 0.6, "flops"), atol=1e-7)
    np.testing.assert_allclose(column["p_density"], 1 - global_score(scores, layers, 0.6, "flops"), atol=1e-7)
    # uniform compute: every layer at the target; the MACs pruned within half of the conv's 4 MACs of 0.6 x 116
    sparsities = uniform(layers, 0.6, "flops")
    assert abs(float(np.dot(sparsities * [18, 32, 12], [4, 1, 1])) - target_count(116, 0.6)) <= 2
    with pytest.raises(ValueError, match="another budget"):
        observation_matrix(layers, static_features(layers), [summary], 0.6, "weights")


# ---------------------------------------------------------------------------------------------- tasks and config


def test_flops_tasks_are_registered_with_their_own_ids() -> None:
    assert {"cnn-digits-flops", "lenet5-mnist-flops", "resnet20-cifar10-flops"} <= set(FLOPS_TASKS)
    for name, task in FLOPS_TASKS.items():
        base = TASKS[name.removesuffix("-flops")]
        assert task.budget == "flops" and base.budget == "weights"
        assert (task.model, task.dataset, task.target_sparsity) == (base.model, base.dataset, base.target_sparsity)
        assert get_task(task.env_id) is task and get_task(f"pruning_env/{task.env_id}") is task
        assert gymnasium.spec(f"pruning_env/{task.env_id}").kwargs == {"task": name}
        assert f"pruning_env/{task.env_id}" in pettingzoo.parallel_registry
    assert get_task("CnnDigitsFlops-v1").name == "cnn-digits-flops"


def test_budget_option_defaults_to_the_task_and_is_checked() -> None:
    assert EnvConfig.build("cnn-digits", device="cpu").budget == "weights"
    assert EnvConfig.build("cnn-digits-flops", device="cpu").budget == "flops"
    assert EnvConfig.build("cnn-digits", budget="flops", device="cpu").budget == "flops"
    with pytest.raises(ValueError, match=r"budget must be one of \['weights', 'flops'\]"):
        EnvConfig.build("cnn-digits", budget="macs", device="cpu")


def test_a_flops_budget_on_linear_layers_is_the_weight_budget() -> None:
    # Every Linear weight costs one MAC: the same observation and plan, bit for bit.
    plan = np.linspace(0.3, 0.99, 6)
    weights = PruningEnv("mlp-digits", reward="zero_cost", device="cpu", target_sparsity=0.9)
    flops = PruningEnv("mlp-digits", reward="zero_cost", device="cpu", target_sparsity=0.9, budget="flops")
    observation_w, _ = weights.reset(seed=2)
    observation_f, _ = flops.reset(seed=2)
    for agent in weights.possible_agents:
        np.testing.assert_array_equal(observation_w[agent], observation_f[agent])
    np.testing.assert_array_equal(weights.evaluate_plan(2, plan).pruned_counts, flops.evaluate_plan(2, plan).pruned_counts)


# ---------------------------------------------------------------------------------------------------- the env


@pytest.fixture(scope="module")
def flops_env() -> PruningEnv:
    return PruningEnv("cnn-digits-flops", reward="zero_cost", device="cpu")


def _macs_bound(env: PruningEnv) -> float:
    """The largest gap between an achieved FLOPs reduction and the target: the projection's bound plus the
    rounding of the target to a MAC count, over the total MACs."""
    macs = macs_per_weight(env.layers)
    return (cost_tolerance(macs) + 0.5) / int(macs @ env.sizes)


def test_infos_report_the_flops_reduction_and_the_weight_sparsity(flops_env: PruningEnv) -> None:
    _, infos = flops_env.reset(seed=0)
    assert infos["layer_0"]["flops_reduction"] == 0.0 and infos["layer_0"]["global_sparsity"] == 0.0
    plan = np.linspace(0.99, 0.5, len(flops_env.layers), dtype=np.float32)
    _, _, _, _, infos = flops_env.step({agent: plan[i : i + 1] for i, agent in enumerate(flops_env.possible_agents)})
    shared = infos["layer_0"]
    counts, macs = flops_env.last_result.pruned_counts, macs_per_weight(flops_env.layers)
    assert shared["target_sparsity"] == 0.98
    assert shared["flops_reduction"] == pytest.approx(int(macs @ counts) / int(macs @ flops_env.sizes), abs=1e-12)
    assert shared["global_sparsity"] == pytest.approx(counts.sum() / flops_env.sizes.sum(), abs=1e-12)
    assert abs(shared["flops_reduction"] - 0.98) <= _macs_bound(flops_env)
    assert abs(shared["global_sparsity"] - 0.98) > 0.01  # compute, not weights, met the target
    assert flops_env.table().splitlines()[-1] == "target FLOPs reduction 0.9800, init seed 0"


def test_the_env_observes_the_flops_references(flops_env: PruningEnv) -> None:
    observations, _ = flops_env.reset(seed=1)
    matrix = np.stack([observations[agent] for agent in flops_env.possible_agents])
    erk = matrix[:, flops_env.feature_names.index("erk_density")]
    np.testing.assert_allclose(erk, 1 - erdos_renyi_kernel(flops_env.layers, 0.98, "flops"), atol=1e-7)


def test_an_infeasible_flops_target_is_a_clear_error() -> None:
    # cnn-digits keeps >= 1 weight per layer: 166 of its 928,000 MACs stay, so at most 0.99982 can go
    env = PruningEnv("cnn-digits-flops", reward="zero_cost", device="cpu", target_sparsity=0.9999)
    with pytest.raises(ValueError, match=r"target_sparsity in \[0, 0.99982"):
        env.reset(seed=0)


@pytest.mark.parametrize("name", [*REFERENCE_HEURISTICS, "random"])
def test_heuristics_run_on_a_flops_task(flops_env: PruningEnv, name: str) -> None:
    controller = make_controller(name, flops_env)
    observations, infos = flops_env.reset(seed=0)
    _, rewards, terminations, _, infos = flops_env.step(controller.act(observations, infos))
    assert all(terminations.values()) and np.isfinite(rewards["layer_0"])
    assert abs(infos["layer_0"]["flops_reduction"] - 0.98) <= _macs_bound(flops_env)


@pytest.mark.parametrize("name", ["uniform", "er", "erk"])
def test_reference_heuristics_prune_their_flops_allocation_through_the_env(flops_env: PruningEnv, name: str) -> None:
    """Through the float32 observation and the projection, the env applies the pure FLOPs allocation up to a few
    weights per layer (the weight budget reproduces it exactly: tests/test_heuristics.py)."""
    controller = make_controller(name, flops_env)
    observations, infos = flops_env.reset(seed=0)
    flops_env.step(controller.act(observations, infos))
    pure = get_allocation(name)(flops_env.layers, 0.98, "flops")
    np.testing.assert_allclose(flops_env.last_result.applied, pure, atol=1e-3)


# ------------------------------------------------------------------------------------------------------ checkers


def test_pettingzoo_checkers_on_a_flops_task() -> None:
    parallel_api_test(PruningEnv("cnn-digits-flops", reward_steps=2), num_cycles=3)
    api_test(parallel_to_aec(PruningEnv("cnn-digits-flops", reward_steps=2)), num_cycles=3)


def test_gymnasium_check_env_on_a_flops_task() -> None:
    check_env(PruningControllerEnv(task="cnn-digits-flops", reward_steps=2), skip_render_check=True)
    env = gymnasium.make("pruning_env/CnnDigitsFlops-v1", reward_steps=2)
    _, info = env.reset(seed=0)
    _, _, terminated, _, info = env.step(np.full(env.action_space.shape, 0.9, dtype=np.float32))
    assert terminated and abs(info["flops_reduction"] - 0.98) <= _macs_bound(env.unwrapped.parallel_env)
