"""Random CIFAR-shaped data from a fixed seed, for speed checks on a device when no CIFAR archive is at hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pruning_env.data.dataset import Dataset, build_dataset

NUM_POOL = 2_500
NUM_TEST = 500
DATA_SEED = 0


def load_synthetic_cifar10(root: Path, *, download: bool, val_fraction: float, split_seed: int) -> Dataset:
    """2,500 training-pool and 500 test samples ``(3, 32, 32)``, 10 balanced classes, the same on every call.

    A sample is its class's fixed random prototype plus unit Gaussian noise, so the classes are learnable
    but nothing is meaningful. ``split_seed`` only picks the validation hold-out (``val_fraction=0.2`` gives
    2,000 / 500 / 500). ``root`` and ``download`` are unused.
    """
    data_rng = np.random.default_rng(DATA_SEED)
    prototypes = data_rng.normal(0.0, 0.5, size=(10, 3, 32, 32)).astype(np.float32)
    labels = data_rng.permutation(np.arange(NUM_POOL + NUM_TEST) % 10)
    images = prototypes[labels] + data_rng.normal(size=(len(labels), 3, 32, 32)).astype(np.float32)
    return build_dataset(
        "synthetic-cifar10",
        images[:NUM_POOL],
        labels[:NUM_POOL],
        images[NUM_POOL:],
        labels[NUM_POOL:],
        num_classes=10,
        val_fraction=val_fraction,
        rng=np.random.default_rng(split_seed),
    )
