"""``JobPool``: any picklable function over many argument tuples, in the pools' spawned workers.

What is not a reward evaluation runs here (the benchmark's full trainings, a study's searches and traces): the
same workers as ``ProcessPool`` (one torch thread each, a dead worker replaced and its job resubmitted), or this
process for one worker (no interpreter to start); the numbers are the same either way.

    with JobPool(workers=2) as pool:
        for index, result in pool.run(train, [(task, seed), ...], progress="trainings"):   # as each job finishes
            ...
        results = pool.map(trace, jobs)                                                     # in the jobs' order

The function and its arguments must pickle (module-level functions); spawned workers re-import the main module,
so a script needs the ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from pruning_env.pools.local import InProcess
from pruning_env.pools.process import Processes
from pruning_env.pools.protocol import check_pool_arguments, dispatched

Result = TypeVar("Result")


class JobHost:
    """The body of a job worker: ``call(function, job)`` is ``function(*job)``."""

    infos = None

    def call(self, function: Callable[..., Result], job: tuple[Any, ...]) -> Result:
        return function(*job)


class JobPool:
    """``workers`` spawned processes (or this process for ``workers`` = 1) running jobs; a context manager.

    Args:
        workers: number of processes, >= 1; 1 runs every job in this process.
        max_attempts: how many times one job may be started before its worker's failure is raised.
    """

    def __init__(self, workers: int, max_attempts: int = 3) -> None:
        check_pool_arguments(workers, max_attempts)
        self.max_attempts = max_attempts
        self.backend: InProcess | Processes = InProcess(JobHost()) if workers == 1 else Processes(JobHost, workers)

    @property
    def workers(self) -> int:
        return self.backend.workers

    def run(self, function: Callable[..., Result], jobs: Sequence[tuple[Any, ...]], progress: str | None = None,
            unit: str = "job") -> Iterator[tuple[int, Result]]:
        """``(index in jobs, function(*job))`` of every job as it finishes (in order in this process), counted by
        a progress bar named ``progress`` when given."""
        yield from dispatched(self.backend, [(function, tuple(job)) for job in jobs], self.max_attempts, progress, unit)

    def map(self, function: Callable[..., Result], jobs: Sequence[tuple[Any, ...]], progress: str | None = None,
            unit: str = "job") -> list[Result]:
        """``function(*job)`` of every job, in the jobs' order (``run``)."""
        results = dict(self.run(function, jobs, progress, unit))
        return [results[index] for index in range(len(jobs))]

    def close(self) -> None:
        """Stop the worker processes (a running job is given 10 s, then killed); idempotent."""
        if isinstance(self.backend, Processes):
            self.backend.close()

    def __enter__(self) -> JobPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
