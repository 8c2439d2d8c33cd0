"""The shipped controller: its record matches the file, and it prunes an unseen custom module exactly, with a plan of its own."""

import json
import time

import numpy as np
import pytest
import torch
from torch import nn

from agents import make_controller
from agents.pretrained import PRETRAINED_FILE, Recipe, load_pretrained, sha256
from benchmarks.cells import plan_of
from pruning_env import PruningEnv
from pruning_env.data import Dataset, load_dataset


class TwoBranchNet(nn.Module):
    """An architecture no family draws: a conv branch and a linear branch on 8x8 inputs, concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 24, 3, padding=1), nn.ReLU(), nn.Conv2d(24, 24, 3, groups=4),
                                  nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.dense = nn.Sequential(nn.Flatten(), nn.Linear(64, 300), nn.ReLU(), nn.Linear(300, 200), nn.ReLU())
        self.head = nn.Linear(24 * 4 + 200, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.conv(x), self.dense(x)], dim=1))


def test_shipped_file_matches_its_record() -> None:
    record = json.loads(PRETRAINED_FILE.with_suffix(".json").read_text())
    assert record["sha256"] == sha256(PRETRAINED_FILE)
    assert record["command"].startswith("python -m agents.pretrained")
    assert record["recipe"]["episodes"] == record["episodes"] == Recipe().episodes
    assert PRETRAINED_FILE.stat().st_size < 2_000_000


@pytest.fixture(scope="module")
def digits() -> Dataset:
    """The user's data, loaded before the clock starts (reading it is not part of pruning). Also imports what
    torch's TransformerEncoderLayer imports on its first call in a process (torch.fx.experimental.symbolic_shapes,
    with sympy: 0.3-0.7 s once per process), so the clock measures what every further network costs."""
    import torch.fx.experimental.symbolic_shapes  # noqa: F401

    return load_dataset("digits")


@pytest.mark.parametrize("target", [0.9, 0.98, 0.995])
def test_pretrained_prunes_an_unseen_module_exactly_with_its_own_plan(target: float, digits: Dataset) -> None:
    torch.manual_seed(0)
    module = TwoBranchNet()
    start = time.perf_counter()
    env = PruningEnv("mlp-digits", model=module, data=digits, target_sparsity=target, reward="zero_cost",
                     device="cpu")
    controller = make_controller("pretrained", env)
    observations, infos = env.reset(seed=0)
    env.step(controller.act(observations, infos))
    seconds = time.perf_counter() - start
    print(f"pretrained controller on TwoBranchNet at {target}: {seconds:.3f} s (env, controller load, proxies, act, masks)")
    assert controller.name == "pretrained"
    requested = env.last_result.requested.copy()
    pruned = int(env.last_result.pruned_counts.sum())
    assert pruned == round(target * env.sizes.sum())  # the budget, to the weight
    assert sum(int((~mask).sum()) for mask in env.last_masks.values()) == pruned
    assert len(env.last_masks) == 5 and all(mask.any() for mask in env.last_masks.values())
    plan = plan_of(controller, env, seed=0)
    np.testing.assert_array_equal(requested, plan)  # the env applied the controller's own plan
    lamp = plan_of(make_controller("lamp", env), env, seed=0)  # the controller's starting point (its reference)
    assert np.abs(plan - lamp).max() > 1e-3 and plan.std() > 0.01  # learned offsets, not LAMP, not one ratio


def test_pretrained_acts_unlike_uniform_and_refuses_other_observations() -> None:
    env = PruningEnv("cnn-digits", target_sparsity=0.99, reward="zero_cost", device="cpu")
    controller = load_pretrained(env)
    observations, infos = env.reset(seed=1)
    plan = np.array([a[0] for a in controller.act(observations, infos).values()])
    assert plan.std() > 0.01  # a layer-wise allocation, not one ratio for all
    with pytest.raises(ValueError, match="features"):
        load_pretrained(PruningEnv("cnn-digits", proxies=("snip",), reward="zero_cost", device="cpu"))
    with pytest.raises(ValueError, match="continuous"):
        load_pretrained(PruningEnv("cnn-digits", action_type="discrete", reward="zero_cost", device="cpu"))
