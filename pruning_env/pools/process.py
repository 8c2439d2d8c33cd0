"""``ProcessPool``: spawned worker processes, each hosting its own copy of every source's env.

Each worker runs with one torch thread (the workers share the machine) and answers calls to its host (an
``EnvHost`` here, a ``pruning_env.pools.jobs.JobHost`` under ``JobPool``). Spawned workers re-import the main module:
a script that evaluates with workers > 1 needs the ``if __name__ == "__main__":`` guard. A worker that dies
(killed, out of memory) is replaced by a new process and its call resubmitted (see ``pruning_env.pools``).
"""

from __future__ import annotations

import functools
import multiprocessing
import pickle
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

import torch

from pruning_env.pools.protocol import EnvHost, EnvSource, PoolBase, WorkerLost, check_pool_arguments

START_TIMEOUT_S = 600.0


def _worker_main(connection: Connection, make_host: Callable[[], Any]) -> None:
    torch.set_num_threads(1)
    try:
        host = make_host()
        connection.send(("ok", host.infos))
    except Exception as error:  # the driver raises it
        connection.send(("error", error, traceback.format_exc()))
        return
    while (message := connection.recv()) != ("close",):
        try:
            connection.send(("ok", host.call(*message)))
        except Exception as error:
            connection.send(("error", error, traceback.format_exc()))
    connection.close()


class Processes:
    """A backend of spawned processes, each answering calls to the host ``make_host()`` (picklable) builds in it;
    a call's handle is its slot (one call per slot at a time). Built once every worker has sent its host's
    ``infos`` (the first worker's are kept); a worker that fails to start stops the others and raises."""

    def __init__(self, make_host: Callable[[], Any], workers: int) -> None:
        self.make_host = make_host
        self.context = multiprocessing.get_context("spawn")
        self.workers = workers
        self.processes: list[Any] = [None] * workers
        self.connections: list[Connection] = [None] * workers  # type: ignore[list-item]
        self.restarts = 0
        for slot in range(workers):
            self._start(slot)
        try:
            self.infos = [self.first_reply(slot) for slot in range(workers)][0]
        except BaseException:
            self.close()
            raise

    def _start(self, slot: int) -> None:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=_worker_main, args=(child, self.make_host), daemon=True)
        process.start()
        child.close()
        self.processes[slot], self.connections[slot] = process, parent

    def first_reply(self, slot: int) -> Any:
        """The infos the worker of ``slot`` sends once its envs are built."""
        if not self.connections[slot].poll(START_TIMEOUT_S):
            raise RuntimeError(f"pool worker {slot} did not start within {START_TIMEOUT_S:.0f} s")
        return self.result(slot)

    def submit(self, slot: int, call: Any) -> int:
        try:
            self.connections[slot].send(call)
        except (BrokenPipeError, OSError):
            pass  # the worker is gone: result() reports it
        return slot

    def wait(self, handles: list[int]) -> int:
        ready = wait([self.connections[slot] for slot in handles])
        return self.connections.index(ready[0])  # type: ignore[arg-type]

    def result(self, handle: int) -> Any:
        try:
            status, *payload = self.connections[handle].recv()
        except (EOFError, OSError) as error:
            raise WorkerLost(f"pool worker {handle} (pid {self.processes[handle].pid}) died") from error
        if status == "error":
            error, text = payload
            error.add_note(f"raised in pool worker {handle}:\n{text}")
            raise error
        return payload[0]

    def replace(self, slot: int) -> None:
        self._stop(slot)
        self._start(slot)
        self.first_reply(slot)
        self.restarts += 1

    def _stop(self, slot: int) -> None:
        process, connection = self.processes[slot], self.connections[slot]
        if process.is_alive():
            try:
                connection.send(("close",))
            except (BrokenPipeError, OSError):
                pass
            process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
        connection.close()

    def close(self) -> None:
        for slot in range(self.workers):
            if self.processes[slot] is not None:
                self._stop(slot)
        self.processes = [None] * self.workers


class ProcessPool(PoolBase):
    """``workers`` spawned processes over the env ``sources`` (picklable: keyword dicts or factories).

    Args:
        sources: the env sources (see ``pruning_env.pools.EnvSource``).
        workers: number of processes, >= 1.
        max_attempts: how many times one call may be started before its worker's failure is raised.
    """

    def __init__(self, sources: Sequence[EnvSource], workers: int = 2, max_attempts: int = 3) -> None:
        check_pool_arguments(workers, max_attempts)
        if not sources:
            raise ValueError("a pool needs at least one env source")
        try:
            pickle.dumps(list(sources))
        except Exception as error:
            raise ValueError(
                "a process pool needs picklable env sources (keyword dicts or e.g. functools.partial(PruningEnv, "
                f"...)), got {sources!r}: {error}"
            ) from error
        self.max_attempts = max_attempts
        self.backend = Processes(functools.partial(EnvHost, list(sources)), workers)
        self.infos = self.backend.infos

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers, by slot."""
        return [process.pid for process in self.backend.processes]

    def close(self) -> None:
        """Stop the workers (idempotent)."""
        self.backend.close()
