"""BenchMARL on the pruning env (``pruning_env.integrations.benchmarl``, ``agents.benchmarl_marl``): MAPPO and IPPO
(continuous sparsities) and IQL (discrete bins) run a few iterations on mlp-digits with BenchMARL's own
``Experiment``; the team reward BenchMARL collects is the env's reward of the same plan; seeds reproduce; the
controllers' plans are valid; the task's YAML loads; bad configs are clear errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from benchmarl.algorithms import IppoConfig, IqlConfig, MappoConfig
from benchmarl.experiment import Callback, Experiment
from benchmarl.models import MlpConfig

import agents
from pruning_env.integrations.benchmarl import PruningTask, PruningTaskClass, RewardHistory, experiment_config
from pruning_env.parallel import PruningEnv

OPTIONS = {"target_sparsity": 0.98, "reward_steps": 5, "init": 0, "device": "cpu"}
ALGORITHMS = {"mappo": MappoConfig, "ippo": IppoConfig, "iql": IqlConfig}


class Batches(Callback):
    """Keeps every collected batch's actions and team rewards (module level: BenchMARL pickles its callbacks)."""

    def __init__(self) -> None:
        super().__init__()
        self.actions: list[torch.Tensor] = []
        self.rewards: list[torch.Tensor] = []

    def on_batch_collected(self, batch) -> None:
        self.actions.append(batch.get(("layer", "action")).reshape(batch.numel(), 6, -1)[..., 0].clone())
        reward = batch.get(("next", "layer", "reward")).reshape(batch.numel(), 6)
        assert (reward == reward[:, :1]).all()  # one team reward for every layer agent
        self.rewards.append(reward[:, 0].clone())


def run(algorithm: str, seed: int, tmp_path, episodes: int = 16) -> tuple[Experiment, Batches, RewardHistory]:
    task = PruningTask.MLP_DIGITS.get_task(config=dict(OPTIONS))
    model = MlpConfig.get_from_yaml()
    model.num_cells = [16]
    batches, history = Batches(), RewardHistory()
    experiment = Experiment(
        task=task, algorithm_config=ALGORITHMS[algorithm].get_from_yaml(), model_config=model,
        critic_model_config=copy.deepcopy(model), seed=seed,
        config=experiment_config(episodes, tmp_path / f"{algorithm}-{seed}", frames_per_batch=8, minibatch_size=8,
                                 off_policy_steps=2, on_policy_epochs=1),
        callbacks=[batches, history],
    )
    experiment.run()
    return experiment, batches, history


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_benchmarl_trains_and_collects_the_envs_team_reward(algorithm: str, tmp_path) -> None:
    experiment, batches, history = run(algorithm, seed=0, tmp_path=tmp_path)
    assert experiment.n_iters_performed == 2 and experiment.total_frames == 16
    assert experiment.continuous_actions == (algorithm != "iql")
    assert [row["episodes"] for row in history.history] == [8.0, 16.0]
    env = PruningEnv("mlp-digits", **OPTIONS)
    actions, rewards = torch.cat(batches.actions), torch.cat(batches.rewards)
    assert len(set(rewards.tolist())) > 1  # different plans, different rewards
    for action, reward in zip(actions[:4], rewards[:4], strict=True):
        plan = action.double().numpy() if experiment.continuous_actions else action.double().numpy() / 20
        assert env.evaluate_plan(0, plan).reward == pytest.approx(float(reward), abs=1e-5)


@pytest.mark.parametrize("algorithm", ["mappo", "iql"])
def test_benchmarl_seeds_reproduce(algorithm: str, tmp_path) -> None:
    _, first, _ = run(algorithm, seed=3, tmp_path=tmp_path / "a")
    _, again, _ = run(algorithm, seed=3, tmp_path=tmp_path / "b")
    _, other, _ = run(algorithm, seed=4, tmp_path=tmp_path / "c")
    assert all(torch.equal(a, b) for a, b in zip(first.actions, again.actions, strict=True))
    assert torch.equal(torch.cat(first.rewards), torch.cat(again.rewards))
    assert not torch.equal(torch.cat(first.actions), torch.cat(other.actions))


@pytest.mark.parametrize("name", ["benchmarl_mappo", "benchmarl_iql"])
def test_benchmarl_controllers_train_with_the_budget_and_act_with_a_valid_plan(name: str) -> None:
    env = PruningEnv("mlp-digits", **OPTIONS)
    controller = agents.make_controller(name, env, seed=0, frames_per_batch=8)
    with pytest.raises(ValueError, match="train"):
        controller.act(*env.reset(seed=0))
    report = controller.train(lambda: PruningEnv("mlp-digits", **OPTIONS), episodes=20, seed=0)
    assert report.episodes == 16 and report.history[-1]["episodes"] == 16.0  # rounded down to whole batches
    observations, infos = env.reset(seed=0)
    actions = controller.act(observations, infos)
    plan = np.array([actions[agent][0] for agent in env.possible_agents])
    assert plan.shape == (6,) and ((plan >= 0) & (plan <= 1)).all()
    assert np.array_equal(plan, np.array([controller.act(observations, infos)[a][0] for a in env.possible_agents]))
    assert np.isfinite(env.evaluate_plan(0, plan).reward)


def test_task_yaml_and_bad_configs() -> None:
    task = PruningTask.LENET300_MNIST.get_from_yaml()
    assert isinstance(task, PruningTaskClass) and task.config["reward"] == "neg_loss"
    with pytest.raises(ValueError, match="action_type"):
        PruningTask.MLP_DIGITS.get_task(config={"action_type": "discrete"}).get_env_fun(1, True, 0, "cpu")
    with pytest.raises(ValueError, match="multiple of frames_per_batch"):
        experiment_config(10, "/tmp/unused-benchmarl", frames_per_batch=8)
    with pytest.raises(ValueError, match="unknown BenchMARL algorithm"):
        agents.benchmarl_marl.BenchMARLController(PruningEnv("mlp-digits", **OPTIONS), algorithm="qmix2")


@pytest.mark.parametrize("steps", [0, 3])
def test_the_task_config_rebuilds_the_envs_reward_steps(steps: int) -> None:
    """``reward_steps=0`` (no training: one forward pass) has no reward schedule; the config still says 0."""
    from agents.benchmarl_marl import task_config

    config = task_config(PruningEnv("mlp-digits", reward_steps=steps, proxies=()))
    assert config["reward_steps"] == steps and config["task"] == "mlp-digits"
    assert PruningEnv(**{k: v for k, v in config.items() if k != "task"}, task=config["task"]).config.reward_steps == steps
