"""The sensitivity heuristic (``agents.sensitivity``): its tolerance rule by hand, its probes, its budget."""

from __future__ import annotations

import numpy as np
import pytest

import agents
from agents.sensitivity import LEVELS, SensitivityController, tolerated_sparsity
from pruning_env.allocation import layer_costs
from pruning_env.parallel import PruningEnv


def test_the_tolerated_sparsity_by_hand() -> None:
    drops = np.array([0.0, 0.0, 0.01, 0.02, 0.04, 0.08, 0.2, 0.3, 0.5, 0.9])
    assert len(drops) == len(LEVELS)
    assert tolerated_sparsity(drops, 0.0) == 0.5  # the last level with no drop
    assert tolerated_sparsity(drops, 0.03) == pytest.approx(0.8 + 0.1 * 0.5)  # halfway from 0.8 (0.02) to 0.9 (0.04)
    assert tolerated_sparsity(drops, 0.9) == 1.0
    assert tolerated_sparsity(drops + 0.1, 0.05) == 0.0  # even the dense level is over: nothing


def test_the_probes_and_the_allocation_meet_the_target() -> None:
    env = PruningEnv("mlp-digits", target_sparsity=0.9, reward_steps=2, reward="accuracy", device="cpu")
    controller = agents.make_controller("sensitivity", env, seed=0)
    observations, infos = env.reset(seed=3)
    drops = controller.drops()
    assert drops.shape == (len(env.layers), len(LEVELS))
    assert (drops[:, 0] == 0).all() and (np.diff(drops, axis=1) >= 0).all()
    plan = controller.allocation(0.9)
    costs = layer_costs(env.layers, "weights").astype(float)
    assert (plan * costs).sum() >= 0.9 * costs.sum() - 1e-6  # the least tolerance that reaches the target
    assert ((plan >= 0) & (plan <= 1)).all()
    layer = int(np.argmin(drops[:, -1]))  # the layer that hurts least when emptied
    assert plan[layer] == plan.max()
    _, rewards, *_ = env.step(controller.act(observations, infos))
    assert env.last_result.global_sparsity == pytest.approx(0.9, abs=1e-3)
    assert controller.drops() is drops  # cached per instance
    with pytest.raises(ValueError, match="PruningEnv"):
        SensitivityController(object())  # type: ignore[arg-type]
