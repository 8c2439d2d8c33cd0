"""Did a run reproduce the committed one? Two record files compared cell by cell.

    python -m benchmarks.compare benchmarks/results/quick.jsonl benchmarks/results/reference/quick/quick.jsonl

Cells are matched by their key (task, controller, target, seed, and the checkpoint's budget fraction or the
candidate's plan and training seed where the records have them); each file's commits and machines (the processor
and torch's CPU kernels, from the records' versions) are printed beside the cells whose test accuracy differs.
Trainings repeat to the bit on one kind of machine, not across kinds (``python -m benchmarks.studies.numerics``), so
read a difference against the machines. Exit status 0 when every shared cell agrees, 1 when one differs.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import tyro

from benchmarks.records import read_records

KEY_FIELDS = ("task", "controller", "target_sparsity", "seed", "budget_fraction", "plan", "train_seed")
"""The fields that name a cell, in the order printed; a file's records use those they have."""


@dataclass
class Args:
    run: Annotated[Path, tyro.conf.Positional]
    """The records of the run to check (JSONL)."""
    reference: Annotated[Path, tyro.conf.Positional]
    """The records to check it against."""


@dataclass(frozen=True)
class Comparison:
    """The shared cells of two record files and those whose test accuracy differs (``(key, run, reference)``,
    accuracies in [0, 1], largest difference first)."""

    shared: int
    only_run: int
    only_reference: int
    differing: list[tuple[tuple, float, float]]


def cell_key(record: dict[str, Any]) -> tuple:
    return tuple((field, record[field]) for field in KEY_FIELDS if field in record)


def compare(run: list[dict[str, Any]], reference: list[dict[str, Any]]) -> Comparison:
    """Match the records by ``cell_key`` and compare their ``test_accuracy``."""
    ours = {cell_key(r): r["test_accuracy"] for r in run}
    theirs = {cell_key(r): r["test_accuracy"] for r in reference}
    shared = ours.keys() & theirs.keys()
    differing = sorted(((key, ours[key], theirs[key]) for key in shared if ours[key] != theirs[key]),
                       key=lambda item: (-abs(item[1] - item[2]), str(item[0])))
    return Comparison(len(shared), len(ours.keys() - theirs.keys()), len(theirs.keys() - ours.keys()), differing)


def provenance(records: list[dict[str, Any]]) -> str:
    """The commits and machines the records were made with, with their counts."""
    commits = Counter(str(r.get("settings", r).get("commit", "not recorded")) for r in records)
    machines = Counter(
        f"{r['versions']['cpu']} / {r['versions'].get('cpu_capability')}" if "cpu" in r.get("versions", {})
        else "not recorded" for r in records
    )
    return ("commits " + ", ".join(f"{c} ({n})" for c, n in commits.items())
            + "; machines " + ", ".join(f"{m} ({n})" for m, n in machines.items()))


def report(comparison: Comparison, run: Path, reference: Path, run_records: list[dict[str, Any]],
           reference_records: list[dict[str, Any]]) -> str:
    """The comparison as text: provenance of both files, counts, and a table of the differing cells."""
    lines = [f"run:       {run}: {provenance(run_records)}",
             f"reference: {reference}: {provenance(reference_records)}",
             f"{comparison.shared} shared cells ({comparison.only_run} only in the run, {comparison.only_reference} "
             f"only in the reference): {comparison.shared - len(comparison.differing)} identical, "
             f"{len(comparison.differing)} differ"]
    if comparison.differing:
        lines += ["", "| cell | run (%) | reference (%) | difference (points) |", "|---|---|---|---|"]
        lines += [f"| {', '.join(f'{k}={v}' for k, v in key)} | {100 * a:.2f} | {100 * b:.2f} | {100 * (a - b):+.2f} |"
                  for key, a, b in comparison.differing]
    return "\n".join(lines)


def main(args: Args) -> int:
    for path in (args.run, args.reference):
        if not path.is_file():
            raise SystemExit(f"no records at {path}")
    run_records, reference_records = read_records(args.run), read_records(args.reference)
    comparison = compare(run_records, reference_records)
    print(report(comparison, args.run, args.reference, run_records, reference_records))
    return 1 if comparison.differing else 0


if __name__ == "__main__":
    sys.exit(main(tyro.cli(Args)))
