"""Trained instances (``prune_at="trained"``): the network trained from its seeded initialization, cached on disk.

With ``prune_at="trained"`` the weights a plan prunes are θ0 trained with the task's final schedule
(``Task.final_train``) by the masked trainer with every weight kept (no pruning), on the training split, in the
minibatch order of the init seed. That costs a full training (about 2 s for mlp-digits on 2 CPU cores, minutes for
the MNIST networks), so each trained network is kept on disk, one file per (task, init seed, fingerprint):

    <cache folder>/<task name>/seed<init seed>-<fingerprint[:16]>.pt

The cache folder is ``$PRUNING_ENV_TRAINED`` when set, else ``trained/`` in the data folder
(``pruning_env.data.download.default_cache_dir``: ``$PRUNING_ENV_DATA`` or ``~/.cache/pruning_env``). The
fingerprint hashes everything the trained weights depend on: the schedule, θ0 (which fixes the architecture and the
init seed's draw), the training and validation tensors, the source of the modules that define and train the network
(``models``, ``masking``, ``compute``, ``training`` and this one), the torch version and the device type. When any
of them changes the network is trained again under a new name; old files stay until the folder is deleted.

On a CPU the network trains on one thread whatever the calling process's thread count (``one_thread``): a
multi-threaded kernel sums in an order that depends on the thread count, and after 600 steps the digits CNN trained
on 2 threads is up to 1.05 away, weight by weight, from the one trained on 1 (its pruned plans then read other
accuracies), so without the pin the cached network would depend on which process trained it first.

Parallel workers: a worker trains under an exclusive lock on ``<file>.lock`` (``fcntl``, where the platform has
it), so a second worker that wants the same network waits and then reads the file; the file is written beside its
final name and renamed into place (``pruning_env.files.replacing``), so a reader sees a whole file or none. A
progress bar shows each training on first use (on a terminal).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from functools import cached_property
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from pruning_env import compute, masking, models, training
from pruning_env.data import Dataset
from pruning_env.data.download import default_cache_dir
from pruning_env.files import replacing
from pruning_env.layers import prunable_layers
from pruning_env.training import MaskedTrainer, TrainConfig

try:
    import fcntl
except ImportError:  # not POSIX: no lock, workers may train the same network twice (the file stays whole)
    fcntl = None  # type: ignore[assignment]

CACHE_ENV = "PRUNING_ENV_TRAINED"
TRAINING_MODULES = (compute, masking, models, training, sys.modules[__name__])
"""The modules whose source is part of the fingerprint: they define the network and train it."""


def trained_cache_dir() -> Path:
    """The folder of the trained networks: ``$PRUNING_ENV_TRAINED`` if set, else ``<data folder>/trained``."""
    override = os.environ.get(CACHE_ENV)
    return Path(override).expanduser() if override else default_cache_dir() / "trained"


def tensor_digest(digest: hashlib._Hash, tensors: Mapping[str, torch.Tensor]) -> None:
    """Feed every tensor's name, dtype, shape and bytes into ``digest``, in key order."""
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())


class TrainedWeights:
    """The trained weights of a network's initializations for one env: loaded from the cache, or trained and stored.

    Args:
        task_name: the task, for the cache's folder names (``"mlp-digits"``).
        schedule: the training schedule (the task's ``final_train``).
        data: the dataset on the device the network trains on.
        directory: the cache folder; None: ``trained_cache_dir()`` when first needed.
    """

    def __init__(self, task_name: str, schedule: TrainConfig, data: Dataset, directory: Path | None = None) -> None:
        self.task_name = task_name
        self.schedule = schedule
        self.data = data
        self.directory = directory
        self._trainer: MaskedTrainer | None = None

    def __call__(self, init_seed: int, model: nn.Module) -> dict[str, torch.Tensor]:
        """The trained state dict (on the data's device) of ``model``, which holds the init seed's θ0; ``model``
        itself is left as it is."""
        init_state = {key: value.detach().clone() for key, value in model.state_dict().items()}
        path = self.path(init_seed, init_state)
        if not path.exists():
            with exclusive(path.with_name(path.name + ".lock")):
                if not path.exists():  # another worker may have written it while this one waited
                    self._train(init_seed, model, init_state, path)
        payload = torch.load(path, map_location=self.data.device, weights_only=True)
        return payload["state"]

    def path(self, init_seed: int, init_state: Mapping[str, torch.Tensor]) -> Path:
        """The cache file of the network trained from ``init_state`` (θ0 of ``init_seed``)."""
        digest = hashlib.sha256(self._fixed_fingerprint.encode())
        tensor_digest(digest, init_state)
        folder = re.sub(r"[^A-Za-z0-9._-]+", "_", self.task_name)
        directory = self.directory if self.directory is not None else trained_cache_dir()
        return directory / folder / f"seed{init_seed}-{digest.hexdigest()[:16]}.pt"

    @cached_property
    def _fixed_fingerprint(self) -> str:
        """The fingerprint's part that every initialization shares (schedule, data, code, torch, device)."""
        digest = hashlib.sha256(repr(sorted(asdict(self.schedule).items())).encode())
        data = self.data
        tensor_digest(digest, {"x_train": data.x_train, "y_train": data.y_train, "x_val": data.x_val,
                               "y_val": data.y_val})
        for module in TRAINING_MODULES:
            digest.update(inspect.getsource(module).encode())
        digest.update(f"torch {torch.__version__} on {data.device.type}".encode())
        return digest.hexdigest()

    def _train(self, init_seed: int, model: nn.Module, init_state: dict[str, torch.Tensor], path: Path) -> None:
        """Train ``init_state`` with every weight kept and write the result to ``path`` in one rename."""
        if self._trainer is None:
            own = copy.deepcopy(model)
            self._trainer = MaskedTrainer(own, prunable_layers(own, self.data.x_train[:2]), self.data.x_train,
                                          self.data.y_train)
        trainer = self._trainer
        kept = {layer.name: torch.ones(layer.weight_shape, dtype=torch.bool, device=self.data.device)
                for layer in trainer.layers}
        description = f"training {self.task_name} seed {init_seed} ({self.schedule.steps} steps, once: cached)"
        with tqdm(total=1, desc=description, unit="network", disable=None) as bar, one_thread(self.data.device):
            result = trainer.run(init_state, kept, self.schedule, init_seed, self.data.x_val, self.data.y_val)
            bar.update(1)
        state = {key: value.detach().cpu().clone() for key, value in trainer.model.state_dict().items()}
        payload = {"state": state, "task": self.task_name, "init_seed": init_seed, "schedule": asdict(self.schedule),
                   "validation_accuracy": result.accuracy, "validation_loss": result.loss}
        with replacing(path) as temporary:
            torch.save(payload, temporary)


@contextmanager
def one_thread(device: torch.device) -> Iterator[None]:
    """Run the block on one intra-op CPU thread when ``device`` is the CPU (restoring the count after); else as is."""
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``lock`` (created with its folders) for the block; no-op without fcntl."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield  # closing the handle releases the lock

