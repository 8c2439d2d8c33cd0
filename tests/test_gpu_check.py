"""benchmarks.studies.gpu_check: the dry version on CPU end to end, and its pieces (what to install, what it parses)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.studies import gpu_check


def test_it_installs_only_what_is_missing_or_too_old(monkeypatch) -> None:
    assert gpu_check.missing() == []  # the venv has every package
    assert gpu_check.missing((("no_such_module_here", "no-such-dist"), ("pytest", "pytest"))) == ["no-such-dist"]
    monkeypatch.setitem(gpu_check.MINIMUM, "pytest", (10**6,))
    assert gpu_check.missing((("pytest", "pytest"),)) == ["pytest"]
    assert gpu_check.version_tuple("4.16.0rc1") == (4, 16, 0) and gpu_check.version_tuple("2.11.0+cu130") == (2, 11, 0)


def test_it_reads_the_cells_reward_throughput_prints() -> None:
    output = (
        "lenet5-mnist bf16: sequential 3.10 evaluations/s\n"
        "  B=16: 41.25 evaluations/s, x13.31 the sequential path, 0.512 TFLOP/s (0.1% of peak), 12.5 MiB per copy\n"
        "  B=256: skipped (projected 300 s > 120 s)\n"
    )
    assert gpu_check.parse_cells(output) == {
        16: {"evaluations_per_s": 41.25, "ratio_to_sequential": 13.31, "mib_per_copy": 12.5},
        256: {"note": "skipped (projected too slow)"},
    }


def test_it_finds_the_gpu_tests_and_those_that_need_ray() -> None:
    files, ray_tests = gpu_check.gpu_test_files()
    assert "tests/test_scorers.py" in files and "tests/test_gpu_check.py" not in files
    assert ray_tests == ["tests/test_pools.py::test_each_actor_gets_a_gpu"]


@pytest.mark.slow
def test_the_dry_version_runs_end_to_end_and_writes_the_table(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.studies.gpu_check", "--dry", "--out", str(tmp_path)],
                          cwd=gpu_check.ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = (tmp_path / "gpu_check.md").read_text()
    assert table in done.stdout and (tmp_path / "gpu_check.log").exists()
    assert "Dry run on CPU" in table and "FAILED" not in table
    assert "| model | dtype | B | evaluations/s | x sequential | peak MiB | MiB per copy |" in table
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| LeNet-5")]
    assert [(row[1].strip(), int(row[2])) for row in rows] == [("fp32", 1), ("fp32", 2)]
    assert all(float(row[3]) > 0 and float(row[4]) > 0 and float(row[6]) > 0 for row in rows)
    assert len((tmp_path / "gpu_check.jsonl").read_text().splitlines()) == 2  # the throughput records
