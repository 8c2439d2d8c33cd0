"""PruningEnv against PettingZoo's own checkers on a custom network (every registered id: ``test_registered_ids.py``),
determinism, the exact budget, the reward's order and errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pettingzoo
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pettingzoo.test import api_test, parallel_api_test
from pettingzoo.utils.conversions import parallel_to_aec
from torch import nn

import pruning_env
import pruning_env.models
from pruning_env.data import load_dataset
from pruning_env.parallel import PruningEnv

FAST = {"reward_steps": 2}  # the API checkers only need a valid reward, not a good one


class TinyConvNet(nn.Module):
    """A custom network unknown to the package: conv, depthwise conv, BatchNorm, two Linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 4 * 4, 32)
        self.out = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.depthwise(torch.relu(self.conv(x)))))
        x = nn.functional.max_pool2d(x, 2).flatten(1)
        return self.out(torch.relu(self.fc(x)))


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def tiny_conv_net(seed: int) -> TinyConvNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TinyConvNet()


def custom_env(digits, **kwargs) -> PruningEnv:
    return PruningEnv(model=tiny_conv_net, data=digits, **FAST, **kwargs)


@pytest.mark.parametrize("action_type", ["continuous", "discrete"])
def test_pettingzoo_checkers_on_a_custom_module(digits, action_type: str) -> None:
    parallel_api_test(custom_env(digits, action_type=action_type), num_cycles=3)
    api_test(parallel_to_aec(custom_env(digits, action_type=action_type)), num_cycles=3)


def test_a_module_instance_keeps_its_own_weights_as_the_initialization(digits) -> None:
    network = TinyConvNet()
    env = PruningEnv(model=network, data=digits, **FAST)
    env.reset(seed=3)
    assert torch.equal(env._instances.get(3).state["conv.weight"], network.conv.weight)
    assert env.possible_agents == [f"layer_{i}" for i in range(4)]


def random_episode(env: PruningEnv, seed: int, action_seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    observations, _ = env.reset(seed=seed)
    rng = np.random.default_rng(action_seed)
    actions = {agent: rng.uniform(0, 1, size=1).astype(np.float32) for agent in env.agents}
    _, rewards, _, _, infos = env.step(actions)
    applied = np.array([infos[agent]["applied_sparsity"] for agent in env.possible_agents])
    return np.stack(list(observations.values())), applied, rewards["layer_0"]


def test_same_seed_same_numbers_other_seed_other_numbers() -> None:
    first, second = PruningEnv(reward="neg_loss", reward_steps=20), PruningEnv(reward="neg_loss", reward_steps=20)
    for episode in range(3):
        a, b = random_episode(first, 7, episode), random_episode(second, 7, episode)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert a[2] == b[2]
    other = random_episode(PruningEnv(reward="neg_loss", reward_steps=20), 8, 0)
    same_actions = random_episode(first, 7, 0)
    assert not np.array_equal(other[0], same_actions[0])
    assert other[2] != same_actions[2]


def test_per_episode_initializations_and_target_ranges_reproduce_from_one_seed() -> None:
    def run() -> list[tuple[float, float]]:
        env = PruningEnv(init="per_episode", target_sparsity=(0.9, 0.99), reward="zero_cost")
        env.reset(seed=11)
        seen = []
        for _ in range(3):
            _, infos = env.reset()
            seen.append((infos["layer_0"]["init_seed"], infos["layer_0"]["target_sparsity"]))
        return seen

    seen = run()
    assert seen == run()
    assert len({init for init, _ in seen}) == 3
    assert all(0.9 <= target <= 0.99 for _, target in seen)


@pytest.fixture(scope="module")
def budget_env() -> PruningEnv:
    return PruningEnv(reward="zero_cost")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    target=st.floats(0.0, 0.999),
    requests=st.lists(st.floats(-0.5, 1.5, allow_nan=False), min_size=6, max_size=6),
)
def test_applied_plan_meets_the_target_count_exactly(budget_env: PruningEnv, target: float, requests: list[float]) -> None:
    env = budget_env
    env.config = replace(env.config, target_range=(target, target))
    env.reset(seed=0)
    _, _, _, _, infos = env.step({agent: np.array([r]) for agent, r in zip(env.possible_agents, requests, strict=True)})
    counts = env.last_result.pruned_counts
    assert counts.sum() == round(target * env.sizes.sum())
    assert np.all(counts < env.sizes)  # no layer emptied
    clipped = [infos[agent]["clipped"] for agent in env.possible_agents]
    assert clipped == [float(not 0 <= r <= 1) for r in requests]


def plan_rewards(env: PruningEnv, plan: np.ndarray, seeds: range) -> list[float]:
    rewards = []
    for seed in seeds:
        env.reset(seed=seed)
        _, reward, _, _, _ = env.step({agent: plan[i : i + 1] for i, agent in enumerate(env.possible_agents)})
        rewards.append(reward["layer_0"])
    return rewards


@pytest.mark.slow
def test_reward_prefers_a_uniform_plan_to_gutting_the_first_layer(capsys) -> None:
    env = PruningEnv("mlp-digits", target_sparsity=0.95)
    sizes, total = env.sizes, env.sizes.sum()
    rest = (0.95 * total - 0.999 * sizes[0]) / (total - sizes[0])
    uniform = plan_rewards(env, np.full(len(sizes), 0.95), range(3))
    first_heavy = plan_rewards(env, np.array([0.999] + [rest] * (len(sizes) - 1)), range(3))
    with capsys.disabled():
        print(f"\nmlp-digits @0.95, mean reward over 3 seeds: uniform {np.mean(uniform):.4f}, 99.9% on layer_0 {np.mean(first_heavy):.4f}")
    assert np.mean(uniform) > np.mean(first_heavy)


def test_registered_ids_make_envs() -> None:
    parallel = pettingzoo.make("parallel", "pruning_env/MlpDigits-v1", reward_steps=2)
    aec = pettingzoo.make("aec", "pruning_env/MlpDigits-v1", reward_steps=2)
    assert isinstance(parallel, PruningEnv) and parallel.task.name == "mlp-digits"
    aec.reset(seed=0)
    assert aec.agent_selection == "layer_0"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "nope"}, "unknown task 'nope'; built-in tasks: mlp-digits"),
        ({"target_sparsity": 1.0}, r"target_sparsity must be a float in \[0, 1\)"),
        ({"target_sparsity": (0.9, 0.5)}, "range"),
        ({"scorer": "nope"}, "unknown scorer or proxy 'nope'"),
        ({"proxies": ("snip", "nope")}, "unknown scorer or proxy 'nope'"),
        ({"reward": "nope"}, "unknown reward 'nope'; known rewards: neg_loss, accuracy"),
        ({"action_type": "binary"}, "action_type must be"),
        ({"init": "sometimes"}, "init must be"),
    ],
)
def test_bad_arguments_are_value_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PruningEnv(**kwargs)


def valid_actions(env: PruningEnv) -> dict[str, np.ndarray]:
    return {agent: np.array([0.5], dtype=np.float32) for agent in env.possible_agents}


def test_bad_actions_are_value_errors_naming_the_agent(digits) -> None:
    env = PruningEnv(**FAST)
    with pytest.raises(ValueError, match="call reset"):
        env.step(valid_actions(env))
    env.reset(seed=0)
    for agent_value, message in [
        (np.array([np.nan]), "action for layer_2 must be finite"),
        (np.array([np.inf]), "action for layer_2 must be finite"),
        (np.array([0.1, 0.2]), r"action for layer_2 must be a number or shape \(1,\)"),
        ("half", "action for layer_2 must be a number"),
    ]:
        with pytest.raises(ValueError, match=message):
            env.step({**valid_actions(env), "layer_2": agent_value})
    with pytest.raises(ValueError, match=r"missing actions for agents \['layer_5'\]"):
        env.step({agent: a for agent, a in valid_actions(env).items() if agent != "layer_5"})
    with pytest.raises(ValueError, match="unknown agents"):
        env.step({**valid_actions(env), "layer_99": np.array([0.5])})
    env.step(valid_actions(env))
    with pytest.raises(ValueError, match="call reset"):
        env.step(valid_actions(env))
    with pytest.raises(ValueError, match="unknown agent 'layer_6'"):
        env.observation_space("layer_6")
    discrete = PruningEnv(action_type="discrete", action_bins=5, **FAST)
    discrete.reset(seed=0)
    with pytest.raises(ValueError, match=r"action for layer_0 must be in \[0, 4\], got 5"):
        discrete.step({**{a: 1 for a in discrete.possible_agents}, "layer_0": 5})


def test_infos_have_the_same_numeric_keys_at_reset_and_step() -> None:
    env = PruningEnv(**FAST)
    _, reset_infos = env.reset(seed=0)
    _, _, terminations, truncations, step_infos = env.step(valid_actions(env))
    assert all(terminations.values()) and not any(truncations.values()) and env.agents == []
    for agent in env.possible_agents:
        assert reset_infos[agent].keys() == step_infos[agent].keys()
        assert all(isinstance(value, float) for value in step_infos[agent].values())
    assert step_infos["layer_0"]["global_sparsity"] == pytest.approx(0.98, abs=1e-6)


def test_render_ansi_lists_every_layer_with_its_plan() -> None:
    env = PruningEnv(render_mode="ansi", **FAST)
    env.reset(seed=0)
    env.step(valid_actions(env))
    table = env.render()
    rows = table.splitlines()[1:-1]  # header, one row per layer, the episode's footer
    assert len(rows) == 6 and all(row.split()[0] == f"layer_{i}" for i, row in enumerate(rows))
    for row, layer, applied in zip(rows, env.layers, env.last_result.applied, strict=True):
        name, weights, requested, applied_text = row.split()[1:]
        assert (name, int(weights), requested) == (layer.name, layer.num_weights, "0.5000")
        assert float(applied_text) == pytest.approx(applied, abs=5e-5)
    assert table.splitlines()[-1] == "target sparsity 0.9800, init seed 0"


def test_package_entry_points() -> None:
    assert isinstance(pruning_env.parallel_env(**FAST), PruningEnv)
    aec = pruning_env.env(**FAST)
    aec.reset(seed=0)
    assert aec.num_agents == 6


def test_pruned_model_is_the_initialization_under_the_applied_masks() -> None:
    env = PruningEnv(reward="zero_cost")
    with pytest.raises(ValueError, match="finished step"):
        env.pruned_model()
    env.reset(seed=2)
    env.step(valid_actions(env))
    model = env.pruned_model()
    init = pruning_env.models.build_model("mlp_digits", seed=2)
    for layer, counts in zip(env.layers, env.last_result.pruned_counts, strict=True):
        weight = model.get_submodule(layer.name).weight
        mask = env.last_masks[layer.name]
        assert int((~mask).sum()) == counts
        assert torch.equal(weight[mask], init.get_submodule(layer.name).weight[mask])
        assert torch.all(weight[~mask] == 0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_env_matches_the_cpu_plan_and_rewards_closely() -> None:
    cpu, cuda = PruningEnv(reward="neg_loss", device="cpu"), PruningEnv(reward="neg_loss", device="auto")
    assert cuda.device.type == "cuda" and cuda.data.x_train.is_cuda
    for env in (cpu, cuda):
        env.reset(seed=1)
        env.step(valid_actions(env))
    np.testing.assert_array_equal(cpu.last_result.pruned_counts, cuda.last_result.pruned_counts)
    assert all(mask.is_cuda for mask in cuda.last_masks.values())
    cpu_obs, _ = cpu.reset(seed=1)
    cuda_obs, _ = cuda.reset(seed=1)
    np.testing.assert_allclose(np.stack(list(cpu_obs.values())), np.stack(list(cuda_obs.values())), atol=1e-3)
    _, cpu_reward, _, _, _ = cpu.step(valid_actions(cpu))
    _, cuda_reward, _, _, _ = cuda.step(valid_actions(cuda))
    assert abs(cpu_reward["layer_0"] - cuda_reward["layer_0"]) < 0.05


def test_step_trains_the_reward_even_under_no_grad() -> None:
    env = PruningEnv(reward="neg_loss", reward_steps=3)
    env.reset(seed=0)
    with torch.no_grad():
        _, rewards, _, _, infos = env.step(valid_actions(env))
    assert np.isfinite(rewards["layer_0"]) and infos["layer_0"]["diverged"] == 0.0


def test_a_pinned_initialization_keeps_theta0_while_targets_vary() -> None:
    env = PruningEnv(init=5, target_sparsity=(0.9, 0.99), reward="zero_cost")
    seen = set()
    for seed in range(3):
        _, infos = env.reset(seed=seed)
        assert infos["layer_0"]["init_seed"] == 5.0
        seen.add(infos["layer_0"]["target_sparsity"])
    assert len(seen) == 3
    with pytest.raises(ValueError, match="init must be"):
        PruningEnv(init=-1)
