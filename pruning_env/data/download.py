"""Cache directory, SHA-256-verified downloads, and the error raised when a file is missing offline.

Files live flat in the cache directory under their official names (``train-images-idx3-ubyte.gz``,
``cifar-10-python.tar.gz``, ...), so a file downloaded by hand only has to be dropped there.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.request import urlopen

from tqdm.auto import tqdm

from pruning_env.files import replacing

CACHE_ENV = "PRUNING_ENV_DATA"
TIMEOUT_S = 60.0
_CHUNK = 1 << 20

# Expected SHA-256 of every file we fetch, by file name. Tests replace entries with the digests of their own files.
SHA256: dict[str, str] = {
    # tensorflow/datasets, tensorflow_datasets/url_checksums/mnist.txt (same files on every MNIST mirror).
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    # pytorch/vision, torchvision/prototype/datasets/_builtin/cifar.py (CIFAR-100 also in keras/datasets/cifar100.py).
    "cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    "cifar-100-python.tar.gz": "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
}


class ChecksumError(OSError):
    """A cached or downloaded file does not have the expected SHA-256."""


def default_cache_dir() -> Path:
    """The data directory: ``$PRUNING_ENV_DATA`` if set, else ``~/.cache/pruning_env``."""
    override = os.environ.get(CACHE_ENV)
    return Path(override).expanduser() if override else Path.home() / ".cache" / "pruning_env"


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(name: str, urls: Sequence[str], directory: Path, *, download: bool, hint: str = "") -> Path:
    """Path of the verified file ``directory / name``, downloading it from the first ``urls`` that answers.

    Args:
        name: official file name; its digest is ``SHA256[name]``.
        urls: full URLs of the file, tried in order.
        directory: where the file is (or goes); created when downloading.
        download: if False, never touch the network.
        hint: an extra way to get the data, appended to the missing-file message.

    Raises:
        FileNotFoundError: the file is absent and ``download`` is False or no URL answered; the message names
            the expected path, the URLs and how to get the file.
        ChecksumError: the file's SHA-256 is not ``SHA256[name]`` (a failed download is deleted first).
    """
    path = directory / name
    if path.exists():
        _verify(path, name, f"replace or delete {path} and run again")
        return path
    errors: list[str] = []
    if download:
        directory.mkdir(parents=True, exist_ok=True)
        for url in urls:
            try:
                _download(url, path)
            except ChecksumError:
                raise
            except OSError as error:  # URLError, HTTPError and timeouts are OSErrors
                errors.append(f"{url}: {error}")
                continue
            return path
    reason = "download failed:\n  " + "\n  ".join(errors) if errors else "download=False"
    raise FileNotFoundError(
        f"{name} is not at {path} ({reason}).\nGet it from one of\n  " + "\n  ".join(urls) + "\n"
        f"and put it in {directory}, or point root= or ${CACHE_ENV} at a folder that holds it.{hint}"
    )


def _verify(path: Path, name: str, remedy: str) -> None:
    actual = sha256_of(path)
    if actual != SHA256[name]:
        raise ChecksumError(f"{path} has SHA-256 {actual}, expected {SHA256[name]}: {remedy}")


def _download(url: str, path: Path) -> None:
    """Stream ``url`` into a temporary file next to ``path``, verify it, then rename it into place."""
    with replacing(path) as temp:
        with temp.open("wb") as out, urlopen(url, timeout=TIMEOUT_S) as response:
            size = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=size, unit="B", unit_scale=True, desc=path.name, disable=None) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
        _verify(temp, path.name, f"the download from {url} was deleted")
