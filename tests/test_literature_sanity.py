"""Sanity against the pruning-at-initialization literature (SynFlow paper, Tanaka et al. 2020): at 99% sparsity,
global magnitude on an initialized ResNet-20 collapses layers; SynFlow's iterative pruning (100 rounds, the
paper's algorithm) keeps every layer connected, while one-shot SynFlow collapses too (the paper's argument for
iterating)."""

import numpy as np
import torch

from pruning_env.allocation import global_score
from pruning_env.layers import prunable_layers
from pruning_env.models import resnet20
from pruning_env.scorers import compute_scores


def test_resnet20_at_99_percent_magnitude_collapses_layers_iterative_synflow_does_not(capsys) -> None:
    model = resnet20(seed=0)
    batch = (torch.randn(100, 3, 32, 32, generator=torch.Generator().manual_seed(0)), torch.arange(100) % 10)
    layers = prunable_layers(model, batch[0][:2])
    densities = {
        name: 1.0 - global_score(compute_scores(name, model, layers, batch, sparsity=0.99), layers, 0.99)
        for name in ("magnitude", "synflow", "synflow_iterative")
    }
    with capsys.disabled():
        print("\nResNet-20 @ 0.99, per-layer density (%) by global ranking:")
        for name, density in densities.items():
            print(f"  {name:17s} " + " ".join(f"{100 * d:.2f}" for d in density))
    sizes = np.array([layer.num_weights for layer in layers])
    assert np.any(densities["magnitude"] * sizes < 1)  # some layer emptied
    assert np.any(densities["synflow"] * sizes < 1)
    assert np.all(densities["synflow_iterative"] * sizes >= 1)  # every layer keeps weights
