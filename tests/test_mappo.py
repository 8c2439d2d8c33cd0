"""Transformer MAPPO: known answers for the PPO pieces, the policy's distributions, training, resume, transfer."""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
import types
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import tyro
from torch import nn

from agents.base import CONTROLLERS, make_controller, stacked
from agents.mappo import MappoConfig, MappoController, TokenPolicy
from agents.mappo import train as train_module
from agents.mappo.__main__ import Args, main
from agents.mappo.policy import DENSITY_FLOOR, sparsity_log_prob
from agents.mappo.ppo import (
    RunningMeanStd,
    clipped_policy_loss,
    group_advantages,
    one_step_targets,
    standardize,
)
from agents.mappo.rollout import episode_plan
from agents.mappo.train import CHECKPOINT, CURVE, PROGRESS
from benchmarks.cells import plan_of
from pruning_env.data import load_dataset
from pruning_env.parallel import PruningEnv

FEATURES = ("magnitude", "snip")
TINY = MappoConfig(embed_dim=16, num_blocks=1, num_heads=2, episodes_per_update=2, progress=False, tensorboard=False)


def tiny_mlp(seed: int) -> nn.Module:
    """Three Linear layers on digits: cheap to score and to train."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))


def tiny_env(**options) -> PruningEnv:
    kwargs = {"model": tiny_mlp, "proxies": FEATURES, "reward": "neg_loss", "reward_steps": 2,
              "target_sparsity": 0.9, "seed": 0, **options}
    return PruningEnv("mlp-digits", **kwargs)


def random_policy(config: MappoConfig, num_features: int = 6, bins: int | None = None) -> TokenPolicy:
    """A policy over made-up features whose actor head is not zero (so outputs depend on the tokens)."""
    names = [f"f{i}" for i in range(num_features - 1)] + ["snip_density"]
    torch.manual_seed(0)
    policy = TokenPolicy(names, config, bins)
    nn.init.normal_(policy.actor[-1].weight, std=0.5)
    return policy


def made_up_obs(count: int, length: int, num_features: int = 6) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    obs = torch.randn(count, length, num_features, generator=generator)
    obs[..., -1] = torch.rand(count, length, generator=generator) * 0.2  # densities in [0, 0.2)
    return obs


# --- PPO pieces with known answers ------------------------------------------------------------------------
def test_one_step_targets_with_running_normalization_by_hand():
    # the normalizer has seen [-1, 3] (mean 1, var 4); the batch [1, 3] makes [-1, 3, 1, 3]: mean 1.5, var 2.75
    normalizer = RunningMeanStd(mean=1.0, var=4.0, count=2)
    advantages, returns = one_step_targets(np.array([1.0, 3.0]), np.array([0.1, -0.2]), normalizer)
    assert normalizer.mean == pytest.approx(1.5) and normalizer.var == pytest.approx(2.75) and normalizer.count == 4
    std = math.sqrt(2.75 + 1e-8)
    np.testing.assert_allclose(returns, [-0.5 / std, 1.5 / std])
    np.testing.assert_allclose(advantages, [-0.5 / std - 0.1, 1.5 / std + 0.2])


def test_one_step_targets_without_normalization_are_reward_minus_value():
    advantages, returns = one_step_targets(np.array([-2.0, -1.5]), np.array([-1.8, -1.8]), None)
    np.testing.assert_allclose(returns, [-2.0, -1.5])
    np.testing.assert_allclose(advantages, [-0.2, 0.3])


def test_running_mean_std_merges_like_one_pass():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=50)
    stats = RunningMeanStd()
    for chunk in np.split(data, [7, 20, 21]):
        stats.update(chunk)
    assert stats.mean == pytest.approx(data.mean()) and stats.var == pytest.approx(data.var())


def test_clipped_policy_loss_on_a_hand_made_batch():
    # ratios: episode 0 -> [1.5, 0.9] with A = 2; episode 1 -> [0.5, padding] with A = -1; clip 0.2
    old = torch.zeros(2, 2)
    new = torch.log(torch.tensor([[1.5, 0.9], [0.5, 3.0]]))
    mask = torch.tensor([[True, True], [True, False]])
    loss, clip_fraction, approx_kl = clipped_policy_loss(new, old, torch.tensor([2.0, -1.0]), mask, 0.2)
    # per token max(-A r, -A clip(r)): max(-3, -2.4) = -2.4; max(-1.8, -1.8) = -1.8; max(0.5, 0.8) = 0.8
    assert loss.item() == pytest.approx((-2.4 - 1.8 + 0.8) / 3)
    assert clip_fraction.item() == pytest.approx(2 / 3)
    kl = ((0.5 - math.log(1.5)) + (-0.1 - math.log(0.9)) + (-0.5 - math.log(0.5))) / 3
    assert approx_kl.item() == pytest.approx(kl, rel=1e-5)


def test_clipped_policy_loss_gradient_vanishes_outside_the_clip_range():
    new = torch.log(torch.tensor([[1.5, 0.9]])).requires_grad_()
    loss, _, _ = clipped_policy_loss(new, torch.zeros(1, 2), torch.tensor([2.0]), torch.ones(1, 2, dtype=torch.bool), 0.2)
    loss.backward()
    # d/dlog r of -A r / 2 tokens = -A r / 2 for the unclipped token, 0 for the clipped one
    np.testing.assert_allclose(new.grad.numpy(), [[0.0, -2.0 * 0.9 / 2]], rtol=1e-6)


def test_standardize():
    np.testing.assert_allclose(standardize(torch.tensor([1.0, 3.0])).numpy(), [-1 / math.sqrt(2), 1 / math.sqrt(2)], rtol=1e-6)
    assert standardize(torch.tensor([5.0])).item() == 0.0


# --- the policy's distributions ---------------------------------------------------------------------------
@pytest.mark.parametrize("autoregressive", [False, True])
def test_continuous_log_prob_matches_torch_distributions(autoregressive):
    policy = random_policy(MappoConfig(embed_dim=16, num_blocks=1, num_heads=2, autoregressive=autoregressive))
    obs, mask = made_up_obs(3, 4), torch.ones(3, 4, dtype=torch.bool)
    actions, log_prob, _ = policy.act(obs, mask, generator=torch.Generator().manual_seed(0))
    evaluated, entropy, _ = policy.evaluate(obs, mask, actions)
    # the mean by hand: logit of the reference sparsity + the head on the head's input
    density = obs[..., -1].clamp(DENSITY_FLOOR, 1 - DENSITY_FLOOR)
    tokens = policy.encode(obs, mask)
    head_input = policy._head_input(obs, tokens, mask, actions)
    mean = torch.log((1 - density) / density) + policy.actor(head_input).squeeze(-1)
    expected = torch.distributions.Normal(mean, policy.log_std.exp())
    torch.testing.assert_close(evaluated, expected.log_prob(actions))
    torch.testing.assert_close(log_prob, evaluated)  # sampling and evaluation agree (also layer by layer)
    torch.testing.assert_close(entropy, expected.entropy())


def test_sparsity_log_prob_is_the_change_of_variables():
    mean, std = torch.tensor([0.5, 3.0]), torch.tensor([0.4, 1.2])
    sparsity = torch.tensor([0.7, 0.98])
    squashed = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, std), [torch.distributions.transforms.SigmoidTransform()]
    )
    torch.testing.assert_close(sparsity_log_prob(mean, std, sparsity), squashed.log_prob(sparsity))


def test_discrete_log_prob_matches_categorical_with_the_reference_prior():
    policy = random_policy(MappoConfig(embed_dim=16, num_blocks=1, num_heads=2, prior_width=0.7), bins=5)
    obs, mask = made_up_obs(2, 3), torch.ones(2, 3, dtype=torch.bool)
    actions, log_prob, _ = policy.act(obs, mask, generator=torch.Generator().manual_seed(0))
    assert set(actions.flatten().tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    head = policy.actor(policy.encode(obs, mask))
    bins = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]).clamp(DENSITY_FLOOR, 1 - DENSITY_FLOOR)
    reference = torch.logit(1 - obs[..., -1].clamp(DENSITY_FLOOR, 1 - DENSITY_FLOOR))
    prior = -0.5 * ((torch.logit(bins) - reference.unsqueeze(-1)) / 0.7) ** 2
    expected = torch.distributions.Categorical(logits=head + prior)
    torch.testing.assert_close(log_prob, expected.log_prob(actions.long()))


def test_initial_policy_is_the_reference_allocation():
    policy = TokenPolicy(["x", "snip_density"], MappoConfig())
    obs = torch.tensor([[[0.3, 0.02], [0.1, 0.5], [0.0, 0.0]]])
    actions, _, _ = policy.act(obs, torch.ones(1, 3, dtype=torch.bool), deterministic=True)
    np.testing.assert_allclose(torch.sigmoid(actions).numpy(), [[0.98, 0.5, 1 - DENSITY_FLOOR]], rtol=1e-5)


def test_autoregressive_layer_only_depends_on_earlier_actions():
    policy = random_policy(MappoConfig(embed_dim=16, num_blocks=1, num_heads=2, autoregressive=True))
    obs, mask = made_up_obs(1, 5), torch.ones(1, 5, dtype=torch.bool)
    actions, _, _ = policy.act(obs, mask, generator=torch.Generator().manual_seed(0))
    changed = actions.clone()
    changed[0, 2] += 1.0
    before, _, _ = policy.evaluate(obs, mask, actions)
    after, _, _ = policy.evaluate(obs, mask, changed)
    torch.testing.assert_close(before[0, :2], after[0, :2])
    assert not torch.allclose(before[0, 3:], after[0, 3:])


@pytest.mark.parametrize("autoregressive", [False, True])
def test_padding_does_not_change_a_network_outputs(autoregressive):
    policy = random_policy(MappoConfig(embed_dim=16, num_blocks=1, num_heads=2, autoregressive=autoregressive))
    short, long = made_up_obs(1, 3), made_up_obs(1, 6)
    padded = torch.zeros(2, 6, 6)
    padded[0, :3], padded[1] = short[0], long[0]
    mask = torch.tensor([[True] * 3 + [False] * 3, [True] * 6])
    actions = torch.randn(2, 6, generator=torch.Generator().manual_seed(2))
    log_prob, _, value = policy.evaluate(padded, mask, actions)
    alone, _, alone_value = policy.evaluate(short, torch.ones(1, 3, dtype=torch.bool), actions[:1, :3])
    torch.testing.assert_close(log_prob[0, :3], alone[0])
    torch.testing.assert_close(value[0], alone_value[0])


def test_reference_feature_must_be_an_env_feature():
    with pytest.raises(ValueError, match="reference_feature"):
        TokenPolicy(["a", "b"], MappoConfig())


@pytest.mark.parametrize(("field", "value"), [("num_heads", 3), ("episodes_per_update", 0), ("learning_rate", 0.0),
                                              ("episode_seeds", "sometimes"), ("ent_coef", -1.0),
                                              ("group_size", 0)])
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        MappoConfig(**{field: value})


def test_episode_plan_is_a_function_of_seed_and_index():
    whole = episode_plan(7, 0, 6, [False, True])
    assert episode_plan(7, 4, 2, [False, True]) == whole[4:]
    assert {episode.task for episode in whole} <= {0, 1}
    assert all(episode.reset_seed == 7 for episode in whole if episode.task == 0)


def test_episode_plan_groups_share_an_instance_but_not_a_sample():
    plan = episode_plan(7, 2, 8, [True, True], group_size=4)  # episodes 2-3 end group 0, 4-7 group 1, 8-9 group 2
    groups = [plan[0:2], plan[2:6], plan[6:8]]
    for group in groups:
        assert len({(episode.task, episode.reset_seed) for episode in group}) == 1
        assert len({episode.sample_seed for episode in group}) == len(group)
    assert groups[1][0].reset_seed != groups[2][0].reset_seed
    assert episode_plan(7, 0, 4, [True, True], group_size=4)[2:] == plan[:2]


def test_group_advantages_leave_one_out_by_hand():
    rewards = np.array([1.0, 2.0, 6.0, 5.0, -1.0, 4.0])
    groups = np.array([0, 0, 0, 1, 1, 2])
    # group 0: 1 - (2+6)/2 = -3, 2 - (1+6)/2 = -1.5, 6 - (1+2)/2 = 4.5; group 1: 5 - (-1) = 6, -1 - 5 = -6; alone: 0
    np.testing.assert_allclose(group_advantages(rewards, groups), [-3.0, -1.5, 4.5, 6.0, -6.0, 0.0])


# --- controllers on the env -------------------------------------------------------------------------------
def test_registered_and_acts_within_the_budget_initially_as_global_snip():
    assert {"mappo", "mappo_ar"} <= set(CONTROLLERS)
    env = tiny_env()
    controller = make_controller("mappo_ar", env, embed_dim=16)
    assert controller.name == "mappo_ar" and controller.config.autoregressive
    observations, infos = env.reset(seed=3)
    actions = controller.act(observations, infos)
    requested = np.array([actions[f"layer_{i}"][0] for i in range(3)])
    snip_density = stacked(observations)[:, env.feature_names.index("snip_density")]
    np.testing.assert_allclose(requested, 1 - np.clip(snip_density, DENSITY_FLOOR, 1 - DENSITY_FLOOR), rtol=1e-4)
    infos = env.step(actions)[4]
    assert infos["layer_0"]["global_sparsity"] == pytest.approx(0.9, abs=1e-3)


def test_training_writes_logs_checkpoint_curve_and_a_loadable_controller(tmp_path):
    env = tiny_env()
    controller = MappoController(env, TINY, out=str(tmp_path), checkpoint_every=1, tensorboard=True)
    report = controller.train(tiny_env, episodes=5, seed=0)
    assert report.episodes == 5 and len(report.history) == 3  # updates of 2, 2 and 1 episodes
    assert report.best_reward == max(row["reward_max"] for row in report.history)
    rows = list(csv.DictReader(open(tmp_path / PROGRESS)))
    assert [int(row["episodes"]) for row in rows] == [2, 4, 5]
    assert {"reward_mean", "entropy", "policy_loss", "value_loss"} <= set(rows[0])
    assert (tmp_path / CHECKPOINT).exists() and (tmp_path / CURVE).stat().st_size > 0
    has_tensorboard = any(importlib.util.find_spec(name) for name in ("tensorboardX", "tensorboard"))
    assert (tmp_path / "tensorboard").exists() == has_tensorboard
    if has_tensorboard:  # one subfolder per run
        assert [path.name[:4] for path in (tmp_path / "tensorboard").iterdir()] == ["run-"]
    loaded = MappoController.load(tmp_path / "controller.pt")
    observations, infos = env.reset(seed=5)
    expected, got = controller.act(observations, infos), loaded.act(observations, infos)
    assert all(np.array_equal(expected[agent], got[agent]) for agent in expected)


def test_a_run_folder_is_never_overwritten_by_accident_and_the_curve_says_what_ran(tmp_path, monkeypatch):
    titles = []
    monkeypatch.setattr(train_module, "plot_learning_curve", lambda history, path, title: titles.append(
        (len(history), title)))
    MappoController(tiny_env(), TINY, out=str(tmp_path)).train(tiny_env, episodes=2, seed=0)
    assert titles == [(1, "transformer MAPPO: mlp-digits, target 0.9, reward neg_loss K=2")]
    before = {path.name: path.stat().st_mtime_ns for path in tmp_path.iterdir()}
    with pytest.raises(ValueError, match=r"already holds a run \(checkpoint\.pt, controller\.pt, .*resume.*overwrite"):
        MappoController(tiny_env(), TINY, out=str(tmp_path)).train(tiny_env, episodes=2, seed=1)
    assert {path.name: path.stat().st_mtime_ns for path in tmp_path.iterdir()} == before
    MappoController(tiny_env(), TINY, out=str(tmp_path), overwrite=True).train(tiny_env, episodes=2, seed=1)
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["seed"] == 1
    with pytest.raises(ValueError, match="exclude each other"):
        replace(TINY, out=str(tmp_path), resume=True, overwrite=True)


def test_each_run_logs_to_a_tensorboard_folder_of_its_own(tmp_path, monkeypatch):
    folders = []

    class Writer:  # stands in for tensorboardX's SummaryWriter
        def __init__(self, logdir: str, purge_step: int) -> None:
            folders.append(Path(logdir))

        def add_scalar(self, *args: object) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setitem(sys.modules, "tensorboardX", types.SimpleNamespace(SummaryWriter=Writer))
    config = replace(TINY, out=str(tmp_path), tensorboard=True)
    MappoController(tiny_env(), config).train(tiny_env, episodes=2, seed=0)
    MappoController(tiny_env(), replace(config, overwrite=True)).train(tiny_env, episodes=2, seed=0)
    assert len(folders) == len(set(folders)) == 2
    assert all(folder.parent == tmp_path / "tensorboard" and folder.name.startswith("run-") for folder in folders)


def test_discrete_controller_trains_and_acts_with_bins():
    env = tiny_env(action_type="discrete", action_bins=11)
    controller = MappoController(env, TINY)
    controller.train(partial(tiny_env, action_type="discrete", action_bins=11), episodes=2, seed=0)
    actions = controller.act(*env.reset(seed=0))
    assert all(np.issubdtype(np.asarray(a).dtype, np.integer) and 0 <= a <= 10 for a in actions.values())
    env.step(actions)


def test_training_on_envs_with_other_features_fails_by_name():
    controller = MappoController(tiny_env(), TINY)
    with pytest.raises(ValueError, match="features"):
        controller.train(partial(tiny_env, proxies=("snip",)), episodes=2, seed=0)


def test_resume_after_the_first_checkpoint_reaches_the_episode_count_with_a_continuous_log(tmp_path, monkeypatch):
    config = replace(TINY, checkpoint_every=2)
    uninterrupted = MappoController(tiny_env(), config).train_on([tiny_env], 8, seed=1)

    real_update, calls = train_module.run_update, []

    def stop_in_fourth_update(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # after the checkpoint at update 2 and the logged update 3
            raise KeyboardInterrupt
        return real_update(*args, **kwargs)

    monkeypatch.setattr(train_module, "run_update", stop_in_fourth_update)
    out = str(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        MappoController(tiny_env(), config, out=out).train_on([tiny_env], 8, seed=1)
    assert len(list(csv.DictReader(open(tmp_path / "run" / PROGRESS)))) == 3
    monkeypatch.setattr(train_module, "run_update", real_update)

    report = MappoController(tiny_env(), config, out=out, resume=True).train_on([tiny_env], 8, seed=1)
    rows = list(csv.DictReader(open(tmp_path / "run" / PROGRESS)))
    assert report.episodes == 8
    assert [int(row["update"]) for row in rows] == [1, 2, 3, 4]
    assert [int(row["episodes"]) for row in rows] == [2, 4, 6, 8]
    np.testing.assert_allclose([float(row["reward_mean"]) for row in rows],
                               [row["reward_mean"] for row in uninterrupted.history])


def test_resume_with_another_config_fails(tmp_path):
    MappoController(tiny_env(), TINY, out=str(tmp_path)).train_on([tiny_env], 2, seed=0)
    with pytest.raises(ValueError, match="learning_rate"):
        MappoController(tiny_env(), TINY, out=str(tmp_path), resume=True, learning_rate=0.1).train_on([tiny_env], 4, seed=0)


@pytest.mark.slow
def test_two_worker_processes_give_the_same_run_as_one():
    spec = partial(PruningEnv, "mlp-digits", reward="neg_loss", reward_steps=2, target_sparsity=0.99,
                             proxies=FEATURES, seed=0)
    one = MappoController(spec(), TINY).train(spec, 4, seed=0)
    two = MappoController(spec(), TINY, workers=2).train(spec, 4, seed=0)
    assert [row["reward_mean"] for row in one.history] == [row["reward_mean"] for row in two.history]


def second_task() -> str:
    """lenet300-mnist when MNIST is on this machine (never downloaded in tests), else cnn-digits."""
    try:
        load_dataset("mnist", download=False)
    except FileNotFoundError:
        return "cnn-digits"
    return "lenet300-mnist"


@pytest.mark.slow
def test_controller_trained_on_two_tasks_acts_on_resnet20_with_its_learned_plan():
    options = {"reward": "neg_loss", "reward_steps": 2, "target_sparsity": (0.9, 0.99)}
    specs = [partial(PruningEnv, "mlp-digits", **options), partial(PruningEnv, second_task(), **options)]
    config = replace(TINY, episodes_per_update=4)  # 2 episodes per minibatch: a standardized advantage is not 0
    untrained = MappoController(specs[0](), config)
    controller = MappoController(specs[0](), config)
    report = controller.train_on(specs, 4, seed=0)
    assert report.episodes == 4
    env = PruningEnv("resnet20-cifar10", data=load_dataset("synthetic-cifar10"), reward_steps=1, target_sparsity=0.9)
    assert len(env.possible_agents) > 6
    start, plan = plan_of(untrained, env, seed=0), plan_of(controller, env, seed=0)
    snip = plan_of(make_controller("global_snip", env), env, seed=0)
    np.testing.assert_allclose(start, snip, atol=1e-6)  # the untrained policy is its reference, global SNIP
    assert np.abs(plan - start).max() > 1e-4  # the training moved the plan on a network it never saw
    result = env.evaluate_plan(0, plan)
    np.testing.assert_array_equal(result.requested, plan)
    assert result.global_sparsity == pytest.approx(0.9, abs=1e-4)


# --- command line -----------------------------------------------------------------------------------------
def test_cli_help_lists_the_config_fields(capsys):
    with pytest.raises(SystemExit):
        tyro.cli(Args, args=["--help"], config=(tyro.conf.OmitArgPrefixes,))
    text = capsys.readouterr().out
    assert all(flag in text for flag in ("--episodes-per-update", "--reference-feature", "--out", "--resume"))


def test_cli_run_writes_the_run_folder(tmp_path):
    args = tyro.cli(Args, config=(tyro.conf.OmitArgPrefixes,), args=[
        "--episodes", "2", "--reward-steps", "2", "--episodes-per-update", "2", "--embed-dim", "16",
        "--no-progress", "--no-tensorboard", "--out", str(tmp_path),
    ])
    main(args)
    assert (Path(tmp_path) / "controller.pt").exists() and (Path(tmp_path) / PROGRESS).exists()


def test_act_plan_best_returns_the_best_episode_on_its_instance_and_the_mean_elsewhere(tmp_path):
    env = tiny_env(init=0)  # one instance: every episode of the run sees the same observation
    controller = MappoController(env, TINY, act_plan="best")
    report = controller.train(partial(tiny_env, init=0), episodes=6, seed=0)
    observations, infos = env.reset(seed=0)
    best = plan_of(controller, env, 0)
    assert env.evaluate_plan(0, best).reward == pytest.approx(report.best_reward, abs=1e-6)
    mean = plan_of(controller, env, 0, controller.mean_actions)
    assert not np.allclose(best, mean)  # the best sample is not the mean
    other = tiny_env(init=0, target_sparsity=0.8)  # another observation (the target is a feature): the mean
    np.testing.assert_array_equal(plan_of(controller, other, 0), plan_of(controller, other, 0, controller.mean_actions))
    controller.save(tmp_path / "c.pt")
    np.testing.assert_array_equal(plan_of(MappoController.load(tmp_path / "c.pt"), env, 0), best)
    default = MappoController(env, TINY)  # act_plan="mean": the policy's mean after the same training
    default.train(partial(tiny_env, init=0), episodes=6, seed=0)
    np.testing.assert_array_equal(plan_of(default, env, 0), mean)


def test_act_plan_must_be_mean_or_best():
    with pytest.raises(ValueError, match="act_plan"):
        MappoConfig(act_plan="last")
