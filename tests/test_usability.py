"""What a new user hits: registration that survives re-running, every README CLI's --help, the env's docs where
users look, no module shadowed by a function, construction-time errors (a misspelt option through every entry
point), and AEC actions checked at each turn."""

from __future__ import annotations

import importlib
import pkgutil
import pydoc
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pettingzoo
import pytest
from torch import nn

import agents
import pruning_env
from agents.base import CONTROLLERS, register_controller
from pruning_env import MultiTaskPruningEnv, PruningEnv

ROOT = Path(__file__).resolve().parents[1]
FAST = {"reward": "neg_loss", "reward_steps": 2, "device": "cpu"}
README_CLIS = (
    "agents.mappo", "agents.pretrained", "agents.random_search_ray", "benchmarks.run", "benchmarks.studies.generalize",
    "benchmarks.studies.family_proxy", "benchmarks.studies.env_speed", "benchmarks.studies.fidelity", "benchmarks.studies.ray_scaling",
)


def mine_class() -> type:
    class Mine:
        name = "mine"

        def __init__(self, env: object, seed: int = 0) -> None:
            self.seed = seed

        def act(self, observations: dict, infos: dict) -> dict:
            return agents.to_actions(np.zeros(len(observations)))

    return Mine


@pytest.fixture
def registry():
    saved = dict(CONTROLLERS)
    yield
    CONTROLLERS.clear()
    CONTROLLERS.update(saved)


def test_registering_the_same_definition_again_replaces_it(registry) -> None:
    first, again = mine_class(), mine_class()  # a notebook cell run twice: two classes of the same definition
    register_controller("mine")(first)
    register_controller("mine")(again)
    assert CONTROLLERS["mine"] is again


def test_another_factory_under_a_taken_name_needs_replace(registry) -> None:
    register_controller("mine")(mine_class())

    def other(env: object, seed: int = 0) -> object:
        return mine_class()(env, seed)

    with pytest.raises(ValueError, match="'mine' is already registered .*replace=True"):
        register_controller("mine")(other)
    register_controller("mine", replace=True)(other)
    assert CONTROLLERS["mine"] is other


def test_registering_an_instance_fails_at_once_showing_the_right_use(registry) -> None:
    instance = mine_class()(None)
    with pytest.raises(ValueError, match=r"got Mine instance .*@register_controller\('mine'\) above 'class Mine:'"):
        register_controller("mine")(instance)
    with pytest.raises(ValueError, match="takes a controller class or a factory"):
        register_controller("mine")(42)
    assert "mine" not in CONTROLLERS


@pytest.mark.parametrize("module", README_CLIS)
def test_every_cli_module_of_the_readme_answers_help(module: str) -> None:
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage" in done.stdout.lower() and "--help" in done.stdout


def test_help_of_the_env_class_is_its_documentation() -> None:
    text = pydoc.render_doc(PruningEnv)
    for section in ("## Agents", "## Observation Space", "## Action Space", "## Rewards", "## Arguments", "## Seeding"):
        assert section in text


def test_no_submodule_is_shadowed_by_a_name_of_the_package() -> None:
    for info in pkgutil.iter_modules(pruning_env.__path__):
        module = importlib.import_module(f"pruning_env.{info.name}")
        attribute = getattr(pruning_env, info.name, module)
        assert attribute is module, f"pruning_env.{info.name} is {attribute!r}, not the module"


def test_construction_errors_name_what_was_given_and_what_is_expected() -> None:
    with pytest.raises(ValueError, match=r"outputs of shape \(N, 5\).*10 classes, so the head must give \(N, 10\)"):
        PruningEnv("mlp-digits", model=nn.Sequential(nn.Flatten(), nn.Linear(64, 5)), **FAST)
    with pytest.raises(ValueError, match="factory must return an nn.Module, it returned str"):
        PruningEnv("mlp-digits", model=lambda seed: "net", **FAST)
    with pytest.raises(ValueError, match="must be an nn.Module or a factory"):
        PruningEnv("mlp-digits", model="mlp", **FAST)
    with pytest.raises(ValueError, match=r"device must be 'auto', 'cpu', 'cuda'.*got 'gpu'"):
        PruningEnv("mlp-digits", **{**FAST, "device": "gpu"})


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"sparsity": 0.5}, r"action for layer_0 must be a number or shape \(1,\) array in \[0, 1\]"),
        ([0.5, 0.5], r"action for layer_0 must be a number or shape \(1,\) array"),
        (np.array([np.nan]), r"action for layer_0 must be finite"),
        (np.zeros(3), r"action for layer_0 must be a number or shape \(1,\) array"),
    ],
)
def test_aec_checks_each_action_at_its_turn_with_the_parallel_messages(action: object, message: str) -> None:
    env = pruning_env.env(**FAST)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)  # layer_0's turn: checked now, not after the last layer
    parallel = PruningEnv(**FAST)
    parallel.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        parallel.step({agent: action for agent in parallel.agents})


def test_aec_terminated_agent_needs_a_none_action() -> None:
    env = pruning_env.env(**FAST)
    env.reset(seed=0)
    for _ in env.possible_agents:
        env.step(np.array([0.9], dtype=np.float32))
    assert all(env.terminations.values())
    with pytest.raises(ValueError, match=r"layer_0 is terminated: step it with action None"):
        env.step(np.array([0.5], dtype=np.float32))
    env.step(None)  # the dead step PettingZoo expects


UNKNOWN_OPTION = r"PruningEnv got an unknown option 'reward_step'; did you mean 'reward_steps'"


@pytest.mark.parametrize(
    "make",
    [
        PruningEnv,
        pruning_env.parallel_env,
        pruning_env.raw_env,
        pruning_env.env,
        lambda **kwargs: gymnasium.make("pruning_env/MlpDigits-v1", **kwargs),
        lambda **kwargs: pettingzoo.make("aec", "pruning_env/CnnDigits-v1", **kwargs),
        lambda **kwargs: MultiTaskPruningEnv(("mlp-digits", "cnn-digits"), **kwargs),
    ],
    ids=["PruningEnv", "parallel_env", "raw_env", "env", "gymnasium.make", "pettingzoo.make", "MultiTaskPruningEnv"],
)
def test_an_unknown_option_names_the_closest_valid_ones(make) -> None:
    with pytest.raises(ValueError, match=UNKNOWN_OPTION) as raised:
        make(reward_step=5)
    assert "Valid options: task, model, data, target_sparsity, scorer" in str(raised.value)


def test_an_unknown_option_without_a_close_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown option 'colour'\. Valid options: task, model, data, .*, budget, reward_schedule, compute_limit$"):
        PruningEnv(colour="blue")
