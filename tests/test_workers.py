"""``benchmarks.workers.WorkerPool``: every job's result once with its index, in this process for one worker and in
spawned processes for more."""

from __future__ import annotations

import operator
import os

import pytest

from benchmarks.workers import WorkerPool

JOBS = [(2, 3), (4, 5), (6, 7)]


@pytest.mark.parametrize("workers", [1, 2])
def test_run_gives_each_result_with_its_job_index_and_map_keeps_the_order(workers: int) -> None:
    with WorkerPool(workers) as pool:
        assert sorted(pool.run(operator.mul, JOBS, progress="products")) == [(0, 6), (1, 20), (2, 42)]
        assert pool.map(operator.mul, JOBS) == [6, 20, 42]


@pytest.mark.parametrize("workers", [1, 2])
def test_one_worker_runs_in_this_process_and_more_in_others(workers: int) -> None:
    with WorkerPool(workers) as pool:
        pids = pool.map(os.getpid, [()] * 4)
    if workers == 1:
        assert set(pids) == {os.getpid()}
    else:
        assert os.getpid() not in pids
