"""scikit-learn's digits (1,797 8x8 grey images of 0-9, shipped with scikit-learn): the offline default."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from pruning_env.data.dataset import Dataset, build_dataset, stratified_holdout

TEST_FRACTION = 0.2


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """``sklearn.datasets.load_digits(return_X_y=True)``: images ``(1797, 64)`` float64, labels ``(1797,)`` int.

    Read from the CSV that scikit-learn ships, as its loader reads it (``np.loadtxt`` of the gzip-compressed file),
    without importing scikit-learn: its imports (scipy, pandas) take 1-2 s, paid by every worker process and
    command that loads the digits. Falls back to scikit-learn's loader where the file is not found.
    """
    spec = importlib.util.find_spec("sklearn")  # finds the package without running its __init__
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(locations[0], "datasets", "data", "digits.csv.gz") if locations else None
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits as sklearn_digits

        return sklearn_digits(return_X_y=True)
    with gzip.open(path, mode="rt", encoding="utf-8") as file:
        data = np.loadtxt(file, delimiter=",")
    return data[:, :-1], data[:, -1].astype(int, copy=False)


def load_digits(root: Path, *, download: bool, val_fraction: float, split_seed: int) -> Dataset:
    """Digits with a stratified test split of 20 % and ``val_fraction`` of the rest as validation.

    Both splits are drawn from ``split_seed`` (digits has no official test split). With the default
    ``val_fraction=0.1``: 1,294 train / 144 val / 359 test; ``val_fraction=0.25`` gives 60 / 20 / 20 %.
    Pixels (0..16) are divided by 16, then standardized with the training split's mean and std.
    Shape ``(1, 8, 8)``. ``root`` and ``download`` are unused: the data ships with scikit-learn.
    """
    images, labels = digits_arrays()
    images = images.reshape(-1, 1, 8, 8)
    rng = np.random.default_rng(split_seed)
    pool, test = stratified_holdout(labels, TEST_FRACTION, rng, field="test fraction")
    return build_dataset(
        "digits",
        images[pool],
        labels[pool],
        images[test],
        labels[test],
        num_classes=10,
        val_fraction=val_fraction,
        rng=rng,
        scale=16.0,
    )
