"""benchmarks.studies.family_proxy on its tiniest setting (one member per split, one target, one seed, K = 1), in this
process: every printed difference to global SNIP, and its win count, is recomputed here by another path, each
controller acting through the env's reset and step instead of the script's plan and ``evaluate_plan``.

tests/test_commands.py runs the command as a user does (with a controller it trains), its output's shape checked."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import agents
from agents.pretrained import load_pretrained
from benchmarks.studies import family_proxy
from pruning_env.families import family_tasks
from pruning_env.parallel import PruningEnv


def reward_of(env: PruningEnv, controller: object, seed: int) -> float:
    observations, infos = env.reset(seed=seed)
    return env.step(controller.act(observations, infos))[1]["layer_0"]


def test_each_difference_to_snip_is_the_envs_reward_difference(monkeypatch, capsys):
    # the script sets 2 torch threads for the whole process: this process keeps its one (two threads on a busy
    # 2-core machine made the test 6x slower), so the script and the recomputation below run alike
    monkeypatch.setattr(torch, "set_num_threads", lambda threads: None)
    family_proxy.main(family_proxy.Args(targets=(0.99,), seeds=(1000,), reward_steps=1, members=1))
    lines = re.findall(r"^(train|heldout)\s+0.99: proxy reward controller - snip (\S+) \(wins (\d)/1\), "
                       r"lamp - snip (\S+) \(wins (\d)/1\)$", capsys.readouterr().out, re.M)
    assert [line[0] for line in lines] == ["train", "heldout"]
    for split, controller_diff, controller_wins, lamp_diff, lamp_wins in lines:
        [task] = family_tasks("digits", split)[:1]
        env = PruningEnv(task, target_sparsity=0.99, reward="neg_loss", init=1000, seed=1000, reward_steps=1)
        rewards = {name: reward_of(env, controller, 1000) for name, controller in (
            ("controller", load_pretrained(env)), ("snip", agents.make_controller("global_snip", env)),
            ("lamp", agents.make_controller("lamp", env)))}
        for shown, wins, name in ((controller_diff, controller_wins, "controller"), (lamp_diff, lamp_wins, "lamp")):
            difference = rewards[name] - rewards["snip"]
            assert float(shown) == pytest.approx(difference, abs=5e-5 + 1e-9), (split, name, rewards)
            assert int(wins) == int(difference > 0), (split, name, rewards)
        assert np.isfinite(list(rewards.values())).all()
