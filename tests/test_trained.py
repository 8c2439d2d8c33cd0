"""Pruning trained networks (``prune_at="trained"``) and the zero-step reward (``reward_steps=0``), by hand.

A tiny MLP (64 -> 16 -> 10) on the embedded digits, trained 20 steps: the instance's weights are that training's
result, cached on disk once per (task, init seed, fingerprint) and reused; the zero-step reward is the accuracy or
minus the loss of the masked trained weights on the reward's validation subset, one forward pass.
"""

from __future__ import annotations

import inspect
import multiprocessing
from dataclasses import replace
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pruning_env  # noqa: F401  (registers the ids)
from pruning_env import training
from pruning_env.config import EnvConfig
from pruning_env.layers import prunable_layers
from pruning_env.parallel import PruningEnv
from pruning_env.registry import get_task
from pruning_env.tasks import Task
from pruning_env.trained import CACHE_ENV, TrainedWeights
from pruning_env.training import MaskedTrainer, TrainConfig

TINY = replace(get_task("mlp-digits"), final_train=TrainConfig(steps=20, lr=1e-2))
"""mlp-digits with a 20-step final schedule: the trained instance costs a fraction of a second."""
PLAN = np.array([0.6, 0.1])


def tiny_mlp(seed: int) -> nn.Module:
    """Flatten, then 64 -> 16 -> 10 with ReLU, drawn from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))


def tiny_env(task: Task = TINY, **options: object) -> PruningEnv:
    """The tiny MLP under ``prune_at="trained"`` with one cheap proxy, target 0.5, on the CPU."""
    settings = {"prune_at": "trained", "reward_steps": 0, "proxies": ("magnitude",), "target_sparsity": 0.5,
                "device": "cpu", **options}
    return PruningEnv(task, model=tiny_mlp, **settings)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test's trained networks go to its own folder."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "trained"))
    return tmp_path / "trained"


def cached_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.pt"))


def test_instance_is_the_network_trained_from_its_seeded_initialization() -> None:
    env = tiny_env()
    env.reset(seed=3)
    model = tiny_mlp(3)
    init_state = {key: value.clone() for key, value in model.state_dict().items()}
    layers = prunable_layers(model, env.data.x_train[:2])
    kept = {layer.name: torch.ones(layer.weight_shape, dtype=torch.bool) for layer in layers}
    trainer = MaskedTrainer(model, layers, env.data.x_train, env.data.y_train)
    trainer.run(init_state, kept, TINY.final_train, 3, env.data.x_val, env.data.y_val)
    for key, value in model.state_dict().items():
        assert torch.equal(env.instance.state[key], value), key
    assert not torch.equal(env.instance.state["1.weight"], init_state["1.weight"])
    assert env.config.scorer == "magnitude"
    assert PruningEnv(TINY, model=tiny_mlp, device="cpu", proxies=()).config.scorer == TINY.scorer


@pytest.mark.parametrize("kind", ["accuracy", "neg_loss"])
def test_zero_step_reward_is_the_masked_trained_network_read_by_hand(kind: str) -> None:
    env = tiny_env(reward=kind)
    result = env.evaluate_plan(0, PLAN)
    net = tiny_mlp(0)
    net.load_state_dict(env.instance.state)
    with torch.no_grad():
        for name, mask in env.last_masks.items():
            net.get_submodule(name).weight.mul_(mask)
        size = min(TINY.reward_eval_size, len(env.data.x_val))
        logits = net(env.data.x_val[:size])
    labels = env.data.y_val[:size]
    accuracy = (logits.argmax(dim=1) == labels).double().mean().item()
    loss = F.cross_entropy(logits.double(), labels).item()
    assert result.accuracy == pytest.approx(accuracy, abs=1e-12)
    assert result.loss == pytest.approx(loss, rel=1e-6)
    assert result.reward == pytest.approx(accuracy if kind == "accuracy" else -loss, rel=1e-6)
    # the masks are the within-layer magnitude top-k of the trained weights
    first = env.instance.state["1.weight"].abs().flatten()
    kept = env.last_masks["1"].flatten()
    assert first[kept].min() >= first[~kept].max()


def test_zero_step_reward_is_one_forward_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    env = tiny_env()
    env.reset(seed=0)

    def no_optimizer(*args: object, **kwargs: object) -> None:
        raise AssertionError("the zero-step reward built an optimizer")

    monkeypatch.setattr(training, "make_optimizer", no_optimizer)
    forwards: list[int] = []
    model = env.reward_evaluator.trainer.model
    model.register_forward_hook(lambda module, inputs, output: forwards.append(len(output)))
    result = env.evaluate_plan(0, PLAN)
    assert forwards == [min(TINY.reward_eval_size, len(env.data.x_val))]
    assert result.accuracy > 0.5 and env.config.reward_steps == 0 and env.reward_evaluator.train_config is None


def test_cache_is_reused_and_rebuilt_when_the_schedule_or_the_code_changes(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainings: list[int] = []
    train = TrainedWeights._train

    def counted(self: TrainedWeights, init_seed: int, *args: object) -> None:
        trainings.append(init_seed)
        train(self, init_seed, *args)

    monkeypatch.setattr(TrainedWeights, "_train", counted)
    first = tiny_env().evaluate_plan(0, PLAN)
    [path] = cached_files(cache_dir)
    written = path.stat().st_mtime_ns
    second = tiny_env().evaluate_plan(0, PLAN)
    assert trainings == [0] and path.stat().st_mtime_ns == written
    assert second.reward == first.reward
    longer = replace(TINY, final_train=replace(TINY.final_train, steps=21))
    tiny_env(longer).evaluate_plan(0, PLAN)
    assert trainings == [0, 0] and len(cached_files(cache_dir)) == 2
    tiny_env().evaluate_plan(1, PLAN)
    assert trainings == [0, 0, 1] and len(cached_files(cache_dir)) == 3
    source = inspect.getsource
    edited = {training: "\n# edited"}
    monkeypatch.setattr(inspect, "getsource", lambda module: source(module) + edited.get(module, ""))
    tiny_env().evaluate_plan(0, PLAN)  # the trainer's code changed: trained again
    assert trainings == [0, 0, 1, 0] and len(cached_files(cache_dir)) == 4


def test_the_trained_network_is_the_same_whatever_the_callers_thread_count(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    """The digits CNN's 20-step training differs by up to 7e-7 between 1 and 2 threads when not pinned to one."""
    cnn = get_task("cnn-digits-trained")
    task = replace(cnn, final_train=replace(cnn.final_train, steps=20))
    states = {}
    before = torch.get_num_threads()
    try:
        for threads in (2, 1):
            monkeypatch.setenv(CACHE_ENV, str(tmp_path / f"threads{threads}"))
            torch.set_num_threads(threads)
            env = PruningEnv(task, target_sparsity=0.8, device="cpu", proxies=("magnitude",))
            env.reset(seed=0)
            states[threads] = env.instance.state
            assert torch.get_num_threads() == threads  # the caller's count is restored
    finally:
        torch.set_num_threads(before)
    for key, value in states[1].items():
        assert torch.equal(value, states[2][key]), key


def trained_first_weight(cache: str) -> list[float]:
    """In a fresh process: the tiny env's trained first-layer weights of init seed 0 (cache folder ``cache``)."""
    import os

    os.environ[CACHE_ENV] = cache
    env = tiny_env()
    env.reset(seed=0)
    return env.instance.state["1.weight"].flatten().tolist()


def test_two_workers_building_one_instance_leave_one_valid_entry(cache_dir: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        weights = pool.map(trained_first_weight, [str(cache_dir)] * 2)
    [path] = cached_files(cache_dir)
    stored = torch.load(path, weights_only=True)["state"]["1.weight"].flatten().tolist()
    assert weights[0] == weights[1] == stored
    assert not list(cache_dir.rglob("*.tmp"))


@pytest.mark.parametrize(("options", "field"), [
    ({"prune_at": "pretrained"}, "prune_at"),
    ({"reward_steps": -1}, "reward_steps"),
])
def test_bad_inputs_raise_value_error_naming_the_option(options: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        PruningEnv(TINY, model=tiny_mlp, device="cpu", **options)


def test_trained_tasks_default_to_magnitude_masks_and_the_zero_step_reward() -> None:
    trained = EnvConfig.build("MlpDigitsTrained-v1", device="cpu")
    assert (trained.task.name, trained.prune_at, trained.scorer, trained.reward_steps) == (
        "mlp-digits-trained", "trained", "magnitude", 0)
    assert trained.reward_train is None and trained.target_range == (0.9, 0.9)
    switched = EnvConfig.build("mlp-digits", prune_at="trained", device="cpu")
    assert (switched.scorer, switched.reward_steps) == ("magnitude", 0)
    chosen = EnvConfig.build("mlp-digits", prune_at="trained", scorer="snip", reward_steps=7, device="cpu")
    assert (chosen.scorer, chosen.reward_steps) == ("snip", 7)
    assert EnvConfig.build("mlp-digits", prune_at="trained", reward="full", device="cpu").reward_steps == 600
    default = EnvConfig.build("mlp-digits", device="cpu")
    assert (default.prune_at, default.scorer, default.reward_steps) == ("init", "snip", 100)
    assert {"pruning_env/MlpDigitsTrained-v1", "pruning_env/CnnDigitsTrained-v1"} <= set(gymnasium.registry)


def test_the_final_evaluation_reads_the_pruned_trained_network_zero_shot_then_after_its_fine_tuning() -> None:
    from benchmarks.final_accuracy import FinalEvaluator

    finetune = TrainConfig(steps=5, batch_size=32, lr=1e-3)
    task = replace(TINY, prune_at="trained", scorer="magnitude", finetune=finetune)
    assert task.evaluation_train == finetune and TINY.evaluation_train == TINY.final_train
    outcome = FinalEvaluator(task, 0.5, model=tiny_mlp, device="cpu")(PLAN, seed=0)
    env = tiny_env(task)
    env.evaluate_plan(0, PLAN)
    masks = env.last_masks
    net = tiny_mlp(0)
    net.load_state_dict(env.instance.state)
    with torch.no_grad():
        for name, mask in masks.items():
            net.get_submodule(name).weight.mul_(mask)
        zero_shot = (net(env.data.x_test).argmax(dim=1) == env.data.y_test).double().mean().item()
    assert outcome.zero_shot_test_accuracy == pytest.approx(zero_shot, abs=1e-12)
    model = tiny_mlp(0)
    trainer = MaskedTrainer(model, prunable_layers(model, env.data.x_train[:2]), env.data.x_train, env.data.y_train)
    tuned = trainer.run(env.instance.state, masks, finetune, 0, env.data.x_test, env.data.y_test)
    assert outcome.test_accuracy == tuned.accuracy and outcome.test_accuracy != outcome.zero_shot_test_accuracy
    assert FinalEvaluator(TINY, 0.5, model=tiny_mlp, device="cpu")(PLAN, seed=0).zero_shot_test_accuracy is None


@pytest.mark.slow
def test_the_pretrained_controller_and_a_family_env_take_the_trained_setting() -> None:
    import agents
    from pruning_env.families import family_tasks
    from pruning_env.multi_task import MultiTaskPruningEnv
    from pruning_env.tasks import task_model

    env = PruningEnv("mlp-digits-trained", reward="accuracy", device="cpu")
    observations, infos = env.reset(seed=0)
    plan = agents.make_controller("pretrained", env).act(observations, infos)
    _, rewards, _, _, step_infos = env.step(plan)
    assert step_infos["layer_0"]["global_sparsity"] == pytest.approx(0.9, abs=1e-4) and 0.1 < rewards["layer_0"] <= 1
    family = MultiTaskPruningEnv(family_tasks("digits", "train")[:1], prune_at="trained", target_sparsity=(0.8, 0.9),
                                 proxies=("magnitude",), device="cpu")
    family.reset(seed=0)
    current = family.current
    assert current.config.prune_at == "trained" and current.config.reward_steps == 0
    theta0 = task_model(current.task, current.data.num_classes)(current.instance.init_seed).state_dict()
    weight = f"{current.layers[0].name}.weight"
    assert not torch.equal(current.instance.state[weight], theta0[weight])  # the member was trained first
