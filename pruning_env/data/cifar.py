"""CIFAR-10 and CIFAR-100 from the official python archives (downloaded once, SHA-256 verified).

The batches are read straight from the verified ``.tar.gz`` in one sequential pass: nothing is extracted, so no
archive member can write outside the cache, and a half-extracted folder can never be mistaken for data.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pruning_env.data.dataset import Dataset, build_dataset
from pruning_env.data.download import fetch
from pruning_env.data.safe_pickle import load_pickle

URL_BASE = "https://www.cs.toronto.edu/~kriz/"


@dataclass(frozen=True)
class CifarSpec:
    """Where one CIFAR variant's batches are in its archive, and its normalization statistics."""

    name: str
    archive: str
    folder: str
    train_members: tuple[str, ...]
    test_members: tuple[str, ...]
    label_key: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


# Per-channel mean and std of the training images in [0, 1].
CIFAR10 = CifarSpec(
    name="cifar10",
    archive="cifar-10-python.tar.gz",
    folder="cifar-10-batches-py",
    train_members=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_members=("test_batch",),
    label_key="labels",
    num_classes=10,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
)
CIFAR100 = CifarSpec(
    name="cifar100",
    archive="cifar-100-python.tar.gz",
    folder="cifar-100-python",
    train_members=("train",),
    test_members=("test",),
    label_key="fine_labels",
    num_classes=100,
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
)


def load_cifar(
    spec: CifarSpec, root: Path, *, download: bool, val_fraction: float, split_seed: int
) -> Dataset:
    """CIFAR ``(3, 32, 32)``, pixels ``/255`` normalized per channel with ``spec.mean`` and ``spec.std``.

    Validation: a stratified ``val_fraction`` of the 50,000 training images drawn from ``split_seed``
    (default 0.1: 45,000 / 5,000 / 10,000). CIFAR-100 uses the 100 fine labels.
    """
    archive = fetch(spec.archive, [URL_BASE + spec.archive], root, download=download)
    batches = read_batches(archive, spec)
    x_train, y_train = _join(batches, spec.train_members)
    x_test, y_test = _join(batches, spec.test_members)
    return build_dataset(
        spec.name,
        x_train,
        y_train,
        x_test,
        y_test,
        num_classes=spec.num_classes,
        val_fraction=val_fraction,
        rng=np.random.default_rng(split_seed),
        scale=255.0,
        mean=spec.mean,
        std=spec.std,
    )


def read_batches(archive: Path, spec: CifarSpec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Images uint8 ``(N, 3, 32, 32)`` and int64 labels of every train and test batch, by member name."""
    wanted = {f"{spec.folder}/{member}": member for member in spec.train_members + spec.test_members}
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for info in tar:
            file = tar.extractfile(info) if info.name in wanted else None
            if file is None:
                continue
            # Official batches are Python 2 pickles: keys load as str; bytes keys (Python 3 writers) are accepted.
            batch = {_text(key): value for key, value in load_pickle(file).items()}
            images = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            batches[wanted[info.name]] = images, np.asarray(batch[spec.label_key], dtype=np.int64)
    missing = sorted(set(wanted) - {f"{spec.folder}/{member}" for member in batches})
    if missing:
        raise ValueError(f"{archive} is not the official {spec.name} archive: it lacks {missing}")
    return batches


def _join(
    batches: dict[str, tuple[np.ndarray, np.ndarray]], members: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([batches[m][0] for m in members]), np.concatenate([batches[m][1] for m in members])


def _text(key: str | bytes) -> str:
    return key.decode("latin1") if isinstance(key, bytes) else key
