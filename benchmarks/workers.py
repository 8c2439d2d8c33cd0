"""The benchmarks' own parallel work (full trainings, a study's traces): jobs in spawned worker processes kept for
the pool's life, or in this process for one worker (no start-up of a spawned interpreter); the numbers are the
same. Reward evaluations go through ``pruning_env.pools`` instead.

    with WorkerPool(workers=2) as pool:
        for index, result in pool.run(train, [(task, seed), ...], progress="trainings"):   # as each job finishes
            ...
        results = pool.map(trace, jobs)                                                     # in the jobs' order
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from tqdm import tqdm

Result = TypeVar("Result")


def one_thread() -> None:
    """A worker's torch runs on one thread: the pool's processes share the cores (two threads each would make
    their OpenMP threads wait on each other)."""
    import torch

    torch.set_num_threads(1)


class WorkerPool:
    """``workers`` spawned processes (each torch on one thread, ``one_thread``) (a function and its arguments must pickle: module-level functions), or this
    process for ``workers`` <= 1."""

    def __init__(self, workers: int) -> None:
        self.executor = (None if workers <= 1 else
                         ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=one_thread))

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes (waiting for running jobs, cancelling the others)."""
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)

    def run(self, function: Callable[..., Result], jobs: Sequence[tuple[Any, ...]], progress: str | None = None,
            unit: str = "job") -> Iterator[tuple[int, Result]]:
        """``(index in jobs, function(*job))`` of every job as it finishes (in order in this process), counted
        by a progress bar named ``progress`` when given."""
        with tqdm(total=len(jobs), desc=progress, unit=unit, disable=progress is None) as bar:
            if self.executor is None:
                results: Iterator[tuple[int, Result]] = ((index, function(*job)) for index, job in enumerate(jobs))
            else:
                futures = {self.executor.submit(function, *job): index for index, job in enumerate(jobs)}
                results = ((futures[future], future.result()) for future in as_completed(futures))
            for index, result in results:
                yield index, result
                bar.update(1)

    def map(self, function: Callable[..., Result], jobs: Sequence[tuple[Any, ...]], progress: str | None = None,
            unit: str = "job") -> list[Result]:
        """``function(*job)`` of every job, in the jobs' order (``run``)."""
        results = dict(self.run(function, jobs, progress, unit))
        return [results[index] for index in range(len(jobs))]
