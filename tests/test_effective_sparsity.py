"""Effective sparsity: hand-counted dead weights on small Linear, conv (grouped, BatchNorm, max-pool) and residual
nets, a case where it equals the nominal sparsity, a deep net that would overflow unnormalized, and the env's
``effective_sparsity`` info and result."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pruning_env import PruningEnv
from pruning_env.effective import ConnectivityProbe, effective_sparsity


def bool_masks(**masks: list) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(mask, dtype=torch.bool) for name, mask in masks.items()}


def two_layer_net() -> nn.Sequential:
    """Linear(3, 2) -> ReLU -> Linear(2, 2), with biases (which must not keep a unit alive): 6 + 4 = 10 weights."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2))


def test_a_hidden_unit_without_inputs_kills_its_outputs() -> None:
    # hidden unit 1 lost all 3 inputs: its 2 outgoing weights (column 1 of the second layer) are dead
    masks = bool_masks(**{"0": [[1, 1, 1], [0, 0, 0]], "2": [[1, 1], [1, 1]]})
    effective = ConnectivityProbe(two_layer_net(), ["0", "2"], (3,)).effective_masks(masks)
    assert effective["0"].tolist() == masks["0"].tolist()
    assert effective["2"].tolist() == [[True, False], [True, False]]
    kept, alive = 3 + 4, 3 + 2
    assert kept / 10 == 0.7
    assert effective_sparsity(two_layer_net(), masks, (3,)) == 1 - alive / 10  # 0.5, nominal 0.3


def test_a_hidden_unit_without_outputs_kills_its_inputs() -> None:
    # hidden unit 1 feeds nothing: its 3 incoming weights (row 1 of the first layer) are dead
    masks = bool_masks(**{"0": [[1, 1, 1], [1, 1, 1]], "2": [[1, 0], [1, 0]]})
    effective = ConnectivityProbe(two_layer_net(), ["0", "2"], (3,)).effective_masks(masks)
    assert effective["0"].tolist() == [[True] * 3, [False] * 3]
    assert effective["2"].tolist() == masks["2"].tolist()
    assert effective_sparsity(two_layer_net(), masks, (3,)) == 1 - (3 + 2) / 10  # nominal 0.2


def test_every_unit_connected_gives_the_nominal_sparsity() -> None:
    masks = bool_masks(**{"0": [[1, 0, 1], [0, 1, 0]], "2": [[1, 0], [0, 1]]})
    assert effective_sparsity(two_layer_net(), masks, (3,)) == 1 - 5 / 10
    dense = bool_masks(**{"0": [[1] * 3] * 2, "2": [[1] * 2] * 2})
    assert effective_sparsity(two_layer_net(), dense, (3,)) == 0.0


class ConvNet(nn.Module):
    """conv1 2->4 3x3 (72 weights), BatchNorm, ReLU, max-pool 2, conv2 4->4 3x3 in 2 groups (72: outputs 0-1 read
    channels 0-1, outputs 2-3 read 2-3), ReLU, global average pool, fc 4->3 (12). 156 weights."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, groups=2)
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():  # statistics and an affine that would kill or fake units if they were not neutralized
            self.bn.running_mean.fill_(5.0)
            self.bn.running_var.fill_(0.1)
            self.bn.weight.copy_(torch.tensor([0.5, 2.0, 1.0, 3.0]))
            self.bn.bias.fill_(-3.0)
            self.conv1.bias.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.bn(self.conv1(x))), 2)
        return self.fc(torch.relu(self.conv2(x)).mean(dim=(2, 3)))


def test_conv_channels_grouped_conv_batchnorm_and_max_pool() -> None:
    model = ConvNet()
    conv1 = torch.ones(4, 2, 3, 3, dtype=torch.bool)
    conv1[3] = False  # channel 3 has no input: 18 removed
    conv1[2] = False
    conv1[2, 0, 0, 0] = True  # channel 2 keeps one corner entry, enough to be reached: 17 removed
    conv2 = torch.ones(4, 2, 3, 3, dtype=torch.bool)  # all 72 kept
    fc = torch.ones(3, 4, dtype=torch.bool)
    fc[:, 1] = False  # conv2's output channel 1 feeds nothing: 3 removed
    masks = {"conv1": conv1, "conv2": conv2, "fc": fc}
    kept = (72 - 18 - 17) + 72 + (12 - 3)
    # dead: conv2 outputs 2-3 reading the unreachable channel 3 (their in-group input 1): 2 x 9; conv2 output 1: 2 x 9
    alive = (72 - 18 - 17) + (72 - 18 - 18) + (12 - 3)
    effective = ConnectivityProbe(model, list(masks), (2, 6, 6)).effective_masks(masks)
    assert torch.equal(effective["conv1"], conv1) and torch.equal(effective["fc"], fc)
    expected_conv2 = conv2.clone()
    expected_conv2[2:, 1] = False
    expected_conv2[1] = False
    assert torch.equal(effective["conv2"], expected_conv2)
    assert effective_sparsity(model, masks, (2, 6, 6)) == pytest.approx(1 - alive / 156, abs=1e-15)
    assert kept - alive == 36


class ResidualNet(nn.Module):
    """fc_in 3->3, ReLU, h + ReLU(branch(h)) with branch 3->3, fc_out 3->2: 9 + 9 + 6 = 24 weights."""

    def __init__(self) -> None:
        super().__init__()
        self.fc_in, self.branch, self.fc_out = nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc_in(x))
        return self.fc_out(h + torch.relu(self.branch(h)))


@pytest.mark.parametrize(("branch", "alive"), [
    ([[0, 1, 0], [0, 0, 0], [0, 0, 0]], 6 + 1 + 6),  # the branch carries h1 into the sum's unit 0: all kept alive
    ([[0, 0, 0]] * 3, 6 + 0 + 4),  # no branch: the sum's unit 0 is unreachable, fc_out's column 0 is dead
])
def test_residual_sums_carry_connectivity(branch: list, alive: int) -> None:
    masks = bool_masks(fc_in=[[0, 0, 0], [1, 1, 1], [1, 1, 1]], branch=branch, fc_out=[[1, 1, 1]] * 2)
    assert effective_sparsity(ResidualNet(), masks, (3,)) == pytest.approx(1 - alive / 24, abs=1e-15)


def test_max_pool_picks_do_not_decide_which_kernel_entries_live() -> None:
    # On a 2x2 map every output of the 3x3 conv (padding 1) ties, so max-pool's gradient goes to one corner, whose
    # window misses 5 of the 9 kernel entries; per entry they would look dead, per channel pair they are alive.
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 2))
    masks = {"0": torch.ones(2, 1, 3, 3, dtype=torch.bool), "4": torch.ones(2, 2, dtype=torch.bool)}
    assert effective_sparsity(model, masks, (1, 2, 2)) == 0.0


def test_a_deep_net_neither_overflows_nor_underflows() -> None:
    # 250 layers, each unit keeping 32 of its 64 inputs: unnormalized, the all-ones activations would reach
    # 32^250 = 2^1250 (float64 overflows at 2^1024) and inf x 0 would make every weight NaN, hence dead
    deep = nn.Sequential(*[module for _ in range(250) for module in (nn.Linear(64, 64), nn.ReLU())])
    index = torch.arange(64)
    half = (index[:, None] + index[None, :]) % 2 == 0
    masks = {str(2 * i): half.clone() for i in range(250)}
    assert effective_sparsity(deep, masks, (64,)) == 0.5
    masks["0"] = (index[None, :] == 0).expand(64, 64).clone()  # every first-layer unit reads input 0 only
    effective = ConnectivityProbe(deep, list(masks), (64,)).effective_masks(masks)
    assert all(torch.equal(effective[name], mask) for name, mask in masks.items())


def test_the_model_is_unchanged_and_no_grad_does_not_matter() -> None:
    model = ConvNet()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    masks = {name: torch.ones_like(model.get_submodule(name).weight, dtype=torch.bool) for name in ("conv1", "conv2", "fc")}
    with torch.no_grad():
        assert effective_sparsity(model, masks, (2, 6, 6)) == 0.0
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())


def test_masks_must_match_the_probe() -> None:
    probe = ConnectivityProbe(two_layer_net(), ["0", "2"], (3,))
    with pytest.raises(ValueError, match=r"masks must name the probe's layers \['0', '2'\]"):
        probe.effective_masks(bool_masks(**{"0": [[1, 1, 1], [1, 1, 1]]}))
    with pytest.raises(ValueError, match=r"mask '2' must have shape \(2, 2\), got \(2, 3\)"):
        probe.effective_masks(bool_masks(**{"0": [[1, 1, 1]] * 2, "2": [[1, 1, 1]] * 2}))


def reachable_weights(masks: list[torch.Tensor]) -> list[torch.Tensor]:
    """The reference for a chain of Linear layers: units reached from the input forward, units reaching the output
    backward, by boolean matrix products; a kept weight is alive iff its input is reached and its output reaches."""
    reached = [torch.ones(masks[0].shape[1], dtype=torch.bool)]
    for mask in masks:
        reached.append((mask.double() @ reached[-1].double()) > 0)
    reaching = [torch.ones(masks[-1].shape[0], dtype=torch.bool)]
    for mask in reversed(masks):
        reaching.insert(0, (mask.double().T @ reaching[0].double()) > 0)
    return [mask & reaching[i + 1][:, None] & reached[i][None, :] for i, mask in enumerate(masks)]


@pytest.mark.parametrize("density", [0.02, 0.05, 0.2])
def test_a_random_mlp_matches_boolean_reachability(density: float) -> None:
    widths = [20, 30, 30, 30, 5]
    model = nn.Sequential(*[m for a, b in zip(widths, widths[1:], strict=False) for m in (nn.Linear(a, b), nn.ReLU())][:-1])
    generator = torch.Generator().manual_seed(1)
    masks = [torch.rand(b, a, generator=generator) < density for a, b in zip(widths, widths[1:], strict=False)]
    names = [str(2 * i) for i in range(len(masks))]
    effective = ConnectivityProbe(model, names, (20,)).effective_masks(dict(zip(names, masks, strict=True)))
    for name, expected in zip(names, reachable_weights(masks), strict=True):
        assert torch.equal(effective[name], expected), name


def test_the_env_reports_it_in_infos_and_result() -> None:
    env = PruningEnv("mlp-digits", reward="zero_cost", device="cpu")
    _, infos = env.reset(seed=0)
    assert infos["layer_0"]["effective_sparsity"] == 0.0  # as global_sparsity: 0 until a step
    plan = np.array([0.999, 0.5, 0.5, 0.5, 0.5, 0.5])  # the first layer nearly emptied: hidden units lose all inputs
    _, _, _, _, infos = env.step({agent: plan[i : i + 1] for i, agent in enumerate(env.possible_agents)})
    result = env.last_result
    assert all(info["effective_sparsity"] == result.effective_sparsity for info in infos.values())
    assert result.effective_sparsity == effective_sparsity(env.pruned_model(), env.last_masks, (1, 8, 8))
    assert result.effective_sparsity > result.global_sparsity + 0.01


@pytest.mark.parametrize("density", [0.05, 0.3])
def test_the_count_is_that_of_the_effective_masks_on_convolutions(density: float) -> None:
    model = ConvNet()
    generator = torch.Generator().manual_seed(int(density * 100))
    masks = {name: torch.rand(shape, generator=generator) < density
             for name, shape in (("conv1", (4, 2, 3, 3)), ("conv2", (4, 2, 3, 3)), ("fc", (3, 4)))}
    probe = ConnectivityProbe(model, list(masks), (2, 6, 6))
    effective = probe.effective_masks(masks)
    kept = sum(int(mask.sum()) for mask in effective.values())
    assert probe.effective_sparsity(masks) == 1 - kept / sum(mask.numel() for mask in masks.values())
