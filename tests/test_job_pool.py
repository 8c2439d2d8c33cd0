"""``pruning_env.pools.JobPool``: every job's result once with its index, in this process for one worker and in
spawned processes for more."""

from __future__ import annotations

import operator
import os
from pathlib import Path

import pytest

from pruning_env.pools import JobPool

JOBS = [(2, 3), (4, 5), (6, 7)]


@pytest.mark.parametrize("workers", [1, 2])
def test_run_gives_each_result_with_its_job_index_and_map_keeps_the_order(workers: int) -> None:
    with JobPool(workers) as pool:
        assert sorted(pool.run(operator.mul, JOBS, progress="products")) == [(0, 6), (1, 20), (2, 42)]
        assert pool.map(operator.mul, JOBS) == [6, 20, 42]


@pytest.mark.parametrize("workers", [1, 2])
def test_one_worker_runs_in_this_process_and_more_in_others(workers: int) -> None:
    with JobPool(workers) as pool:
        pids = pool.map(os.getpid, [()] * 4)
    if workers == 1:
        assert set(pids) == {os.getpid()}
    else:
        assert os.getpid() not in pids


def die_once(marker: str, value: int) -> int:
    """Kill this worker process the first time (no ``marker`` file yet), return ``value`` the second."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        os._exit(1)
    return value


def test_a_job_whose_worker_dies_is_run_again_on_a_new_worker(tmp_path: Path) -> None:
    with JobPool(2) as pool:
        results = pool.map(die_once, [(str(tmp_path / "marker"), 7), (str(tmp_path / "other"), 8)])
        assert results == [7, 8]
        assert pool.backend.restarts == 2


def test_a_job_that_raises_raises_in_the_caller_with_the_worker_traceback() -> None:
    with JobPool(2) as pool, pytest.raises(ZeroDivisionError) as raised:
        pool.map(operator.truediv, [(1, 0)])
    assert any("raised in pool worker" in note for note in raised.value.__notes__)


@pytest.mark.parametrize("workers", [0, 1.5])
def test_workers_must_be_a_positive_integer(workers: object) -> None:
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        JobPool(workers)  # type: ignore[arg-type]
