"""The README's benchmark and agent commands run end to end as the README gives them: ``python -m ...`` in a fresh
interpreter from the repository root, each on the smallest setting its options allow, its output checked.

Every command runs with a temporary HOME and TMPDIR (Ray, torch and matplotlib write there) and its ``--out`` in
the test's folder; the repository's state (``git status``, ignored files included, caches excluded) must be the
same after the command as before it, so no run writes into the working tree.

Commands run end to end elsewhere, in-process through their ``main``: ``benchmarks.studies.fidelity`` (test_fidelity),
``benchmarks.studies.learning_curves`` (test_learning_curves), ``benchmarks.studies.numerics`` (test_reproducibility),
``benchmarks.studies.generalize`` (test_generalize), ``agents.mappo`` (test_mappo: its command line parsed and run, resume,
two workers), ``benchmarks.run`` (test_bench, test_outside_controller), ``benchmarks.studies.env_speed`` and
``benchmarks.studies.reward_throughput`` (test_speed_benchmarks: their figures recomputed from their timings). ``make bench``
and ``make promote`` (``benchmarks.promote``) are tested with the suites.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_QUICK = ROOT / "benchmarks" / "results" / "reference" / "quick" / "quick.jsonl"
NOT_STATE = (".venv", ".hypothesis", ".pytest_cache", ".ruff_cache", "pruning_env.egg-info")
"""Folders of the work tree that are no output of a command (the environment and tool caches)."""

Run = Callable[..., subprocess.CompletedProcess]


def repository_state() -> set[str]:
    """``git status`` of the work tree with ignored and untracked files one by one, caches left out, and source
    files and the README too: no command writes those, and others may be editing them while the tests run."""
    pathspec = ["."] + [f":(exclude){name}" for name in NOT_STATE]
    done = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all", "--", *pathspec],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    return {line for line in done.stdout.splitlines()
            if "__pycache__" not in line and not line.endswith(".py") and line[3:] != "README.md"}


@pytest.fixture
def run() -> Iterator[Run]:
    """``run(module, *arguments, expect=0)``: ``python -m module arguments`` from the repository root with a fresh
    HOME and TMPDIR; asserts its exit status and gives the completed process (stdout and stderr as text)."""
    scratch = Path(tempfile.mkdtemp(prefix="cmd-", dir="/tmp"))  # short: Ray's unix socket paths live in TMPDIR
    (scratch / "home").mkdir()
    (scratch / "tmp").mkdir()
    env = dict(os.environ, HOME=str(scratch / "home"), TMPDIR=str(scratch / "tmp"), MPLBACKEND="Agg")
    before = repository_state()

    def command(module: str, *arguments: object, expect: int = 0, timeout: float = 300) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", module, *map(str, arguments)], cwd=ROOT, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == expect, f"exit status {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        return done

    try:
        yield command
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    changed = repository_state() ^ before
    assert not changed, (f"the repository changed while the command ran: {sorted(changed)} (another process "
                         "editing the work tree meanwhile shows here too)")


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_compare_exit_status_says_whether_a_cell_differs(run: Run, tmp_path: Path) -> None:
    same = run("benchmarks.compare", REFERENCE_QUICK, REFERENCE_QUICK)
    cells = len(jsonl(REFERENCE_QUICK))
    assert f"{cells} shared cells" in same.stdout and f"{cells} identical, 0 differ" in same.stdout
    records = jsonl(REFERENCE_QUICK)
    records[0]["test_accuracy"] -= 0.01
    (tmp_path / "run.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    differs = run("benchmarks.compare", tmp_path / "run.jsonl", REFERENCE_QUICK, expect=1)
    assert f"{cells - 1} identical, 1 differ" in differs.stdout
    assert f"controller={records[0]['controller']}" in differs.stdout


@pytest.mark.slow
def test_ray_scaling_finds_the_same_rewards_on_one_and_two_workers(run: Run, tmp_path: Path) -> None:
    done = run("benchmarks.studies.ray_scaling", "--task", "mlp-digits", "--reward-steps", "2", "--episodes", "4",
               "--workers", "1", "2", "--device", "cpu", "--out", tmp_path / "ray_scaling.json")
    record = json.loads((tmp_path / "ray_scaling.json").read_text())
    runs = record["runs"]
    assert [r["workers"] for r in runs] == [1, 2]
    assert all(r["same_rewards"] and len(r["rewards"]) == 4 and r["speedup"] > 0 for r in runs)
    assert runs[0]["speedup"] == 1.0 and all(math.isfinite(reward) for reward in runs[0]["rewards"])
    assert "same rewards" in done.stdout


@pytest.mark.slow
def test_ray_pool_random_search_on_lenet300(run: Run) -> None:
    done = run("agents.random_search_ray", "--task", "lenet300-mnist", "--episodes", "4", "--workers", "2",
               "--reward-steps", "2")
    summary = re.search(r"4 episodes on 2 workers in [\d.]+ s \((\d+) actors replaced\); best reward (\S+)", done.stdout)
    assert summary, done.stdout
    assert summary[1] == "0" and math.isfinite(float(summary[2]))
    plan = re.search(r"best plan \(requested sparsity per layer\): \[([^\]]*)\]", done.stdout)
    assert plan, done.stdout
    assert len(plan[1].split()) == 3 and all(0 <= float(value) <= 1 for value in plan[1].split())  # 3 layers


@pytest.mark.slow
def test_pretrained_trains_a_family_controller_that_family_proxy_reads(run: Run, tmp_path: Path) -> None:
    controller = tmp_path / "controller.pt"
    run("agents.pretrained", "--out", controller, "--recipe.episodes", "8", "--recipe.reward-steps", "2",
        "--recipe.mappo.workers", "1", "--recipe.mappo.episodes-per-update", "4")
    record = json.loads(controller.with_suffix(".json").read_text())
    assert record["episodes"] == 8 and record["recipe"]["reward_steps"] == 2
    assert len(record["training_members"]) == 8 and math.isfinite(record["final_mean_reward"])
    assert record["sha256"] == hashlib.sha256(controller.read_bytes()).hexdigest()

    done = run("benchmarks.studies.family_proxy", "--controller", controller, "--targets", "0.99", "--seeds", "1000",
               "--reward-steps", "2", "--members", "1")
    lines = re.findall(r"^(train|heldout)\s+0.99: proxy reward controller - snip ([-+][\d.]+) \(wins (\d)/1\), "
                       r"lamp - snip ([-+][\d.]+) \(wins (\d)/1\)$", done.stdout, re.MULTILINE)
    assert [line[0] for line in lines] == ["train", "heldout"], done.stdout


@pytest.mark.slow
def test_mappo_diagnosis_writes_its_records_and_table(run: Run, tmp_path: Path) -> None:
    run("benchmarks.studies.mappo_diagnosis", "--target", "0.9", "--episodes", "10", "--scales", "0", "0.3",
        "--perturbations", "2", "--orders", "1", "--variants", "default", "--reward-steps", "5", "--workers", "1",
        "--out", tmp_path)
    rugged, mappo, cma = jsonl(tmp_path / "mappo_diagnosis.jsonl")
    assert (rugged["kind"], mappo["kind"], cma["kind"]) == ("ruggedness", "mappo", "cma_es")
    assert [row["scale"] for row in rugged["rows"]] == [0.0, 0.3] and rugged["rows"][0]["std"] == 0.0
    for trace in (mappo, cma):
        assert [row["episodes"] for row in trace["rows"]] == [0, 10]
        assert trace["rows"][0]["mean_plan"] == pytest.approx(rugged["reference"])  # both start at global SNIP
        assert math.isfinite(trace["rows"][-1]["best"])
    text = (tmp_path / "mappo_diagnosis.md").read_text()
    assert "| mappo: default |" in text and "| cma_es |" in text

    from benchmarks.studies.mappo_diagnosis import Args, main

    with pytest.raises(SystemExit, match="unknown MAPPO variants"):
        main(Args(variants=("nonesuch",), out=tmp_path))


@pytest.mark.slow
def test_snip_table1_trains_each_cell_and_tabulates_it(run: Run, tmp_path: Path) -> None:
    run("benchmarks.studies.snip_table1", "--seeds", "0", "--inits", "paper", "--schedules", "paper", "--final-steps", "20",
        "--workers", "1", "--out", tmp_path)
    records = sorted(jsonl(tmp_path / "snip_table1.jsonl"), key=lambda r: r["target_sparsity"])
    assert [(r["task"], r["target_sparsity"], r["seed"], r["init"], r["schedule"]) for r in records] == [
        ("lenet300-mnist", 0.95, 0, "paper", "paper"), ("lenet300-mnist", 0.98, 0, "paper", "paper")]
    for record in records:
        assert record["train"]["steps"] == 20 and record["train"]["decay_every"] == 10
        assert 0 <= record["test_accuracy"] <= 1 and record["checkpoint_steps"] == []
        assert record["global_sparsity"] == pytest.approx(record["target_sparsity"], abs=1e-5)
    text = (tmp_path / "snip_table1.md").read_text()
    assert "| lenet300-mnist | 0.95 | 1.6 | paper | paper |" in text and "| lenet300-mnist | 0.98 |" in text

    from benchmarks.studies.snip_table1 import Args, main

    with pytest.raises(SystemExit, match="another number of iterations"):  # a resume under another length
        main(Args(out=tmp_path, final_steps=10))
