"""SNIP's Table 1 reproduction: the paper's initialization and the table against the paper's errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from benchmarks.studies.snip_table1 import PAPER_ERRORS, paper_init, table
from pruning_env.models import build_model


def test_paper_init_draws_snips_variance_scaling_with_zero_biases() -> None:
    model = paper_init(build_model("lenet300", seed=0), seed=3)
    for layer in (m for m in model.modules() if isinstance(m, nn.Linear)):
        fan_in = layer.weight.shape[1]
        weights = layer.weight.detach().flatten()
        assert weights.std().item() == pytest.approx(1 / math.sqrt(fan_in), rel=0.1 if fan_in < 200 else 0.02)
        assert weights.abs().max().item() <= 2 / math.sqrt(fan_in) / 0.87962566103423978 + 1e-6  # truncated at 2 std
        assert torch.count_nonzero(layer.bias) == 0
    torch_default = build_model("lenet300", seed=0).features[1][0].weight.std().item()
    assert model.features[1][0].weight.std().item() == pytest.approx(math.sqrt(3) * torch_default, rel=0.03)


def test_paper_init_depends_on_the_seed_alone() -> None:
    first = paper_init(build_model("lenet300", seed=0), seed=5).state_dict()
    torch.manual_seed(123)  # the global RNG plays no part
    again = paper_init(build_model("lenet300", seed=1), seed=5).state_dict()
    other = paper_init(build_model("lenet300", seed=0), seed=6).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["head.weight"], other["head.weight"])


def test_table_gives_the_error_and_its_distance_to_the_paper_per_init_and_schedule() -> None:
    cell = ("lenet300-mnist", 0.98)
    records = [{"task": cell[0], "target_sparsity": cell[1], "init": "torch", "schedule": "shipped", "seed": seed,
                "test_accuracy": accuracy} for seed, accuracy in enumerate((0.968, 0.969, 0.970))]
    # SNIP's code reports the best of the last five checkpoints: 0.977 here, though the run ends at 0.975
    checkpoints = [0.90, 0.977, 0.97, 0.96, 0.95, 0.975]
    records += [{"task": cell[0], "target_sparsity": cell[1], "init": "paper", "schedule": "shipped", "seed": seed,
                 "test_accuracy": 0.975, "checkpoint_accuracies": checkpoints} for seed in range(3)]
    rows = {line.split("|")[4].strip(): line for line in table(records).splitlines() if "| lenet300-mnist | 0.98 |" in line}
    assert PAPER_ERRORS[cell] == 2.4
    assert "| 3.10 ± 0.25 | +0.7 ± 0.2 | – | – | 3 |" in rows["torch"]  # no checkpoints recorded
    assert "| 2.50 ± 0.00 | +0.1 ± 0.0 | 2.30 ± 0.00 | -0.1 ± 0.0 | 3 |" in rows["paper"]
