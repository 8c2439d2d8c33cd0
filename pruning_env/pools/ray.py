"""``RayPool``: Ray actors, each hosting its own copy of every source's env, on one machine or a cluster.

Each actor takes one CPU (and one GPU when the cluster has one per worker; fewer GPUs are shared evenly). Ray
already initialized in this process is used as it is (and left running); else ``ray_address`` is joined
(``"auto"``, ``"host:port"``, ``"ray://host:10001"``) or, when None, a local cluster with at least one CPU per
worker is started, and shut down by ``close``. An actor that dies mid-call is replaced in its slot and its call
resubmitted (see ``pruning_env.pools``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields, is_dataclass, replace
from typing import Any, Literal

import numpy as np
import ray
import torch
from ray.exceptions import RayActorError

from pruning_env.pools.protocol import Call, EnvHost, EnvSource, PoolBase, WorkerLost, check_pool_arguments

ACTOR_START_TIMEOUT_S = 600.0


class HostActor:
    """An ``EnvHost`` in a Ray actor (one torch thread: actors share the node)."""

    def __init__(self, sources: Sequence[EnvSource], slot: int) -> None:
        torch.set_num_threads(1)
        self.host = EnvHost(sources)
        self.slot = slot

    def describe(self) -> dict[str, Any]:
        """Process id, the envs' devices and the sources' ``EnvInfo``."""
        return {"pid": os.getpid(), "devices": [str(env.device) for env in self.host.envs], "infos": self.host.infos}

    def call(self, kind: str, source: int, payload: Any) -> Any:
        return self.host.call(kind, source, payload)


def owned(value: Any) -> Any:
    """A copy of Ray's read-only zero-copy numpy arrays (also inside results), writable by the caller."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):
        return [owned(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        return replace(value, **{f.name: owned(getattr(value, f.name)) for f in fields(value) if f.init})
    return value


def gpus_for(workers: int, gpus_per_worker: float | Literal["auto"]) -> float:
    """GPUs per actor: ``"auto"`` gives one each when the cluster has enough, else an even share, else 0."""
    if gpus_per_worker == "auto":
        return min(1.0, float(ray.cluster_resources().get("GPU", 0.0)) / workers)
    if not (isinstance(gpus_per_worker, int | float) and gpus_per_worker >= 0):
        raise ValueError(f"gpus_per_worker must be 'auto' or a number >= 0, got {gpus_per_worker!r}")
    return float(gpus_per_worker)


@contextmanager
def local_ray(num_cpus: int) -> Iterator[None]:
    """A local Ray cluster of ``num_cpus`` CPUs for the block, its files in a fresh short folder under /tmp (Ray's
    unix socket paths live in it: about 107 bytes at most)."""
    folder = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    try:
        ray.init(num_cpus=num_cpus, include_dashboard=False, _temp_dir=folder)
        try:
            yield
        finally:
            ray.shutdown()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class _Actors:
    """A backend of Ray actors in slots; a call's handle is its ObjectRef."""

    def __init__(self, sources: Sequence[EnvSource], workers: int, ray_address: str | None,
                 gpus_per_worker: float | Literal["auto"]) -> None:
        self.owns_ray = not ray.is_initialized()
        if self.owns_ray:
            num_cpus = None if ray_address is not None else max(workers, os.cpu_count() or 1)
            ray.init(address=ray_address, num_cpus=num_cpus, include_dashboard=False)
        self.remote_class = ray.remote(HostActor).options(num_cpus=1, num_gpus=gpus_for(workers, gpus_per_worker))
        self.sources = list(sources)
        self.workers = workers
        self.actors = [self.remote_class.remote(self.sources, slot) for slot in range(workers)]
        self.restarts = 0

    def describe(self) -> list[dict[str, Any]]:
        """Every actor's ``describe()``, waiting for them to start."""
        try:
            return ray.get([actor.describe.remote() for actor in self.actors], timeout=ACTOR_START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError as error:
            raise RuntimeError(
                f"Ray actors did not start within {ACTOR_START_TIMEOUT_S:.0f} s: does the cluster have 1 CPU "
                f"per worker? cluster resources: {ray.cluster_resources()}"
            ) from error

    def submit(self, slot: int, call: Call) -> Any:
        return self.actors[slot].call.remote(*call)

    def wait(self, handles: list[Any]) -> Any:
        ready, _ = ray.wait(handles, num_returns=1)
        return ready[0]

    def result(self, handle: Any) -> Any:
        try:
            return owned(ray.get(handle))
        except RayActorError as error:
            raise WorkerLost(str(error)) from error

    def replace(self, slot: int) -> None:
        ray.kill(self.actors[slot], no_restart=True)
        self.actors[slot] = self.remote_class.remote(self.sources, slot)
        self.restarts += 1

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
        if self.owns_ray and ray.is_initialized():
            ray.shutdown()
        self.owns_ray = False


class RayPool(PoolBase):
    """``workers`` Ray actors over the env ``sources`` (see the module docstring).

    Args:
        sources: the env sources (keyword dicts or picklable factories).
        workers: number of actors (one CPU each), >= 1.
        ray_address: cluster to join; None starts a local one (unless Ray is already initialized here).
        gpus_per_worker: GPUs per actor, or ``"auto"`` (one each when the cluster has enough, else shared).
        max_attempts: how many times one call may be started before its actors' failure is raised.
    """

    def __init__(self, sources: Sequence[EnvSource], workers: int = 1, ray_address: str | None = None,
                 gpus_per_worker: float | Literal["auto"] = "auto", max_attempts: int = 3) -> None:
        check_pool_arguments(workers, max_attempts)
        if not sources:
            raise ValueError("a pool needs at least one env source")
        self.max_attempts = max_attempts
        self.backend = _Actors(sources, workers, ray_address, gpus_per_worker)
        try:
            self.infos = self.backend.describe()[0]["infos"]
        except BaseException:
            self.backend.close()
            raise

    def describe(self) -> list[dict[str, Any]]:
        """Each live actor's process id, env devices and sources' infos."""
        return self.backend.describe()

    def close(self) -> None:
        """Kill the actors (and shut Ray down if this pool started it); idempotent."""
        self.backend.close()
