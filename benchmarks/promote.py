"""Make a run's results the committed reference: the one command that writes ``benchmarks/results/reference``.

    python -m benchmarks.promote default                # make promote: the default suites (short, short_trained)
    python -m benchmarks.promote short                  # make promote SUITE=short
    python -m benchmarks.promote quick --out /tmp/run   # a run written elsewhere

A benchmark run writes only into its output folder; this copies the suite's records, report and plots from there
into the suite's folder of the reference (``reference/<suite>/``, replacing its files), merges the run's best known plans
into the reference's (``benchmarks.best_known``: a run's file holds the reference's entries it started from plus
what it found, so its entry of a cell replaces the reference's) and adds the run's full trainings to the
reference's ground-truth store (``benchmarks.ground_truth``). Then review ``git diff`` and commit.

    python -m benchmarks.promote oracle                 # the oracle study (benchmarks.studies.oracle)
    python -m benchmarks.promote reward_validity --out DIR   # the reward-validity study
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from benchmarks.best_known import REFERENCE, BestKnown
from benchmarks.ground_truth import GroundTruth
from benchmarks.suites import suite_names

SUFFIXES: tuple[str, ...] = (
    ".jsonl", "_plans.jsonl", "_checkpoint_plans.jsonl", "_checkpoints.jsonl", "_candidates.jsonl", ".md", ".png",
    "_profile.png", "_efficiency.png", "_convergence.png", "_ranking.jsonl", "_zero_shot.jsonl", "_finals.jsonl",
)
"""The files a suite's run writes (``benchmarks.run.run_suite``; ``oracle``: ``benchmarks.studies.oracle``; the learning
curves' full trainings: ``benchmarks.studies.learning_curves``), after the suite's name."""


@dataclass
class Args:
    suite: Annotated[str, tyro.conf.Positional]
    """The suite whose run to promote (its files are ``<out>/<suite>*``; a group such as ``default``: each of its
    suites)."""
    out: Path = Path("benchmarks/results")
    """The run's output folder."""
    reference: Path = REFERENCE.parent
    """The reference folder (one folder per suite or study in it, the shared stores beside them)."""


def reference_folder(name: str, reference: Path = REFERENCE.parent) -> Path:
    """The folder of the suite or study ``name`` in the reference (``reference/<name>/``): its records, report and
    plots; the best known plans and the ground-truth store are shared, beside the folders."""
    return reference / name


def promote(suite: str, out: Path, reference: Path) -> list[Path]:
    """Copy the suite's run files from ``out`` into its ``reference_folder`` and merge the best known plans and the
    ground truth into the reference's; the files written.

    Raises:
        ValueError: when ``out`` holds no records of ``suite`` (nothing to promote).
    """
    if not (out / f"{suite}.jsonl").exists():
        raise ValueError(f"{out} holds no run of the suite {suite!r} ({out / f'{suite}.jsonl'} is missing): "
                         f"run it first (make bench SUITE={suite})")
    folder = reference_folder(suite, reference)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in SUFFIXES:
        source = out / f"{suite}{suffix}"
        if source.exists():
            written.append(Path(shutil.copy2(source, folder / source.name)))
    if (out / "best_known.jsonl").exists():
        merged = BestKnown(reference / "best_known.jsonl", base=None)
        merged.entries.update(BestKnown(out / "best_known.jsonl").entries)
        merged.write()
        written.append(merged.path)
    if (out / "ground_truth.jsonl").exists():
        store = GroundTruth(reference / "ground_truth.jsonl")
        for record in GroundTruth(out / "ground_truth.jsonl").records.values():
            store.add(record)
        written.append(store.path)
    return written


def main(args: Args) -> None:
    for name in suite_names(args.suite):
        for path in promote(name, args.out, args.reference):
            print(f"wrote {path}")
    print("review with git diff, then commit")


if __name__ == "__main__":
    main(tyro.cli(Args))
