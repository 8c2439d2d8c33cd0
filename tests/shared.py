"""Pieces several test modules share: a small conv-then-linear network and the budget projection's order check."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pruning_env.layers import PrunableLayer, prunable_layers


class ThreeLayerNet(nn.Module):
    """Conv2d 1->2 3x3 stride 2 on 5x5 (2x2 output: 8 features; 18 weights x 4 positions = 72 MACs), Linear 8->4
    (32 MACs), Linear 4->3 (12 MACs)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, stride=2)
        self.fc1 = nn.Linear(8, 4)
        self.fc2 = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(torch.relu(self.conv(x)).flatten(1))))


def three_layers() -> list[PrunableLayer]:
    """The prunable layers of a seeded ``ThreeLayerNet``."""
    torch.manual_seed(0)
    return prunable_layers(ThreeLayerNet(), torch.zeros(2, 1, 5, 5))


def assert_order(
    counts: np.ndarray, sizes: np.ndarray, requested: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> None:
    """For r_i > r_j: c_i/n_i >= c_j/n_j exactly, unless i prunes its maximum or j its minimum."""
    for i in range(len(sizes)):
        for j in range(len(sizes)):
            if requested[i] > requested[j] and counts[i] * sizes[j] < counts[j] * sizes[i]:
                assert counts[i] == hi[i] or counts[j] == lo[j], (i, j, counts, sizes, requested)
