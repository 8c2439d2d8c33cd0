"""A researcher's loop on the benchmark (``python -m benchmarks.run``, what ``make bench`` runs): run, rerun, edit
the controller, rerun. The second run reuses every cell, no run writes a tracked file, and an edited outside
controller's cells are computed again (never its old numbers) while the other rows are reused."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks.records import read_records

ROOT = Path(__file__).resolve().parent.parent

CONTROLLER = '''
import numpy as np
from agents.base import TrainingReport, stacked, to_actions

END_SHARE = {share}


class EndsDense:
    """The target everywhere but the first and last layers, which get END_SHARE of it (declared a heuristic)."""

    name = "ends_dense"
    kind = "heuristic"
    accepts_pool = False
    accepts_on_update = False

    def __init__(self, env, seed=0):
        self.target = env.feature_names.index("target_sparsity")

    def act(self, observations, infos):
        sparsity = stacked(observations)[:, self.target].astype(np.float64)
        sparsity[[0, -1]] *= END_SHARE
        return to_actions(sparsity)


class Shake:
    """A searcher without on_update and without declarations (read by its protocol): tries END_SHARE-scaled random
    plans and keeps the best."""

    name = "shake"

    def __init__(self, env, seed=0):
        self.env, self.best = env, None

    def search(self, episodes=None, seed=None):
        rng = np.random.default_rng(seed)
        best = -np.inf
        for _ in range(episodes):
            plan = np.clip(rng.uniform(0.2, 1.0, len(self.env.possible_agents)) * END_SHARE, 0.0, 1.0)
            reward = self.env.evaluate_plan(seed, plan).reward
            if reward > best:
                best, self.best = reward, plan
        return TrainingReport(episodes, 0.0, float(best))

    def act(self, observations, infos):
        return to_actions(self.best)
'''


def bench(out: Path, pythonpath: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{pythonpath}{os.pathsep}{ROOT}", "HOME": str(home), "TMPDIR": str(home)}
    command = [sys.executable, "-m", "benchmarks.run", "--suite", "tiny", "--out", str(out), "--no-progress",
               "--only", "global_snip", "--workers", "1", "--controller", "my_ctrl:EndsDense", "my_ctrl:Shake"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)


def tracked_changes() -> list[str]:
    """``git status --porcelain`` of the tracked files other than Python sources (which a developer may be editing
    while the tests run): results, references, docs, configuration."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    return [line for line in status.splitlines() if not line.endswith(".py")]


def cells_of(out: Path) -> dict[tuple, dict]:
    return {(r["controller"], r["target_sparsity"]): r for r in read_records(out / "tiny.jsonl")}


@pytest.mark.slow
def test_rerun_reuses_edit_recomputes_and_no_tracked_file_changes(tmp_path: Path) -> None:
    module = tmp_path / "lab" / "my_ctrl.py"
    module.parent.mkdir()
    module.write_text(textwrap.dedent(CONTROLLER.format(share=0.25)))
    out, before = tmp_path / "results", tracked_changes()

    first = bench(out, module.parent, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    cells = cells_of(out)
    assert {name for name, _ in cells} == {"global_snip", "ends_dense", "shake"}
    assert cells[("ends_dense", 0.5)]["settings"]["factory"] == "my_ctrl.EndsDense"
    assert all(0.0 <= cell["test_accuracy"] <= 1.0 for cell in cells.values())
    assert tracked_changes() == before  # the best known plans went to the run's folder, not the reference
    assert (out / "best_known.jsonl").exists()

    second = bench(out, module.parent, tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert cells_of(out) == cells  # every cell reused: the same records, their finishing times included
    assert "computing again" not in second.stdout
    assert tracked_changes() == before

    module.write_text(textwrap.dedent(CONTROLLER.format(share=0.75)))
    third = bench(out, module.parent, tmp_path)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "computing again" in third.stdout
    again = cells_of(out)
    for key, old in cells.items():
        if key[0] == "global_snip":
            assert again[key] == old  # the other rows are reused
        else:
            assert again[key]["finished"] != old["finished"]  # recomputed with the edited code
            assert again[key]["settings"]["code"]["controller"] != old["settings"]["code"]["controller"]
    target = 0.5
    assert again[("ends_dense", target)]["requested"][0] == pytest.approx(0.75 * target)
    assert cells[("ends_dense", target)]["requested"][0] == pytest.approx(0.25 * target)
    report = (out / "tiny.md").read_text()
    assert "| shake | searcher |" in report and "| ends_dense | heuristic |" in report
    assert "shake (no on_update: read at 100% only)" in report
    paired = report.split("Δ vs best heuristic")[1].split("\n\n")[0]
    assert "| shake |" in paired and "| ends_dense |" not in paired  # heuristics are never paired rows
    assert tracked_changes() == before
