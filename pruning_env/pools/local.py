"""``LocalPool``: the envs of every source in this process, one call at a time (no worker can die)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pruning_env.plan_env import PlanEnv
from pruning_env.pools.protocol import EnvHost, EnvSource, PoolBase


class InProcess:
    """A backend of one slot that runs each call to ``host`` (an ``EnvHost``, a ``JobHost``) when it is
    submitted."""

    workers = 1
    restarts = 0

    def __init__(self, host: Any) -> None:
        self.host = host
        self._done: dict[int, Any] = {}
        self._next = 0

    def submit(self, slot: int, call: Any) -> int:
        self._next += 1
        self._done[self._next] = self.host.call(*call)
        return self._next

    def wait(self, handles: list[int]) -> int:
        return handles[0]

    def result(self, handle: int) -> Any:
        return self._done.pop(handle)

    def replace(self, slot: int) -> None:
        raise AssertionError("an in-process worker cannot be lost")


class LocalPool(PoolBase):
    """The envs of ``sources`` in this process (sources may also be ready envs: ``PruningEnv``, ``MultiTaskPruningEnv``)."""

    def __init__(self, sources: Sequence[EnvSource | PlanEnv]) -> None:
        if not sources:
            raise ValueError("a pool needs at least one env source")
        self.host = EnvHost(sources)
        self.infos = self.host.infos
        self.max_attempts = 1
        self.backend = InProcess(self.host)

    def close(self) -> None:
        """Nothing to stop: the envs go with the pool."""
