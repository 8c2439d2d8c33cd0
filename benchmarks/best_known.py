"""The best plan known for every (task, target, seed) cell, and each controller's regret to it.

A cell's best known plan is the best plan any controller ever produced for it, re-trained with the training seeds
``TRAIN_SEEDS`` (minibatch orders) so that its accuracy is not the lucky single training that made it the best:

    best = BestKnown(Path("benchmarks/results/reference/best_known.jsonl"))
    entry = best.get("mlp-digits", 0.99, seed=0, schedule=schedule_of("mlp-digits", None))
    entry["mean"], entry["controller"], entry["requested"]     # mean test accuracy in [0, 1], who found it, the plan

After a suite's full trainings, ``candidates`` names each cell's best plan of that run when it was never tried;
the benchmark trains those with every training seed and ``update`` keeps, per cell, the candidate with the best
mean (every tried candidate stays in the entry's ``candidates``). A run reads the committed reference
(``REFERENCE``) beneath its own file and writes only its own (``<out>/best_known.jsonl``): a run never changes a
tracked file, and ``python -m benchmarks.promote`` makes a run's plans part of the reference. Entries are keyed by
the full training's schedule too (``schedule_of``): a plan trained with a shortened test schedule is never
compared with the real one.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import fixed_target
from benchmarks.records import fingerprint, read_records
from pruning_env.files import write_atomic
from pruning_env.registry import get_task

TRAIN_SEEDS: tuple[int, ...] = (0, 1, 2)
"""Minibatch orders each candidate is trained with."""
REFERENCE = Path(__file__).resolve().parent / "results" / "reference" / "best_known.jsonl"
"""The committed best known plans (found from any working directory)."""
CellKey = tuple[str, float, int, str]
"""(task, target sparsity, init seed, schedule fingerprint)."""


def schedule_of(task: str, final_steps: int | None) -> str:
    """Fingerprint of the full training a cell's accuracies come from (the task's, with ``final_steps``)."""
    train = get_task(task).evaluation_train
    return fingerprint(asdict(train if final_steps is None else replace(train, steps=final_steps)))


def entry_key(entry: dict[str, Any]) -> CellKey:
    return entry["task"], entry["target_sparsity"], entry["seed"], entry["schedule"]


class BestKnown:
    """The best known plans of one JSONL file (absent: none known yet) over those of ``base`` (read, never
    written; a cell in both takes the file's entry, which started from the base's)."""

    def __init__(self, path: Path, base: Path | None = None) -> None:
        self.path = path
        self.entries: dict[CellKey, dict[str, Any]] = {
            entry_key(e): e for source in (base, path) if source is not None for e in read_records(source)
        }

    def get(self, task: str, target: float, seed: int, schedule: str) -> dict[str, Any] | None:
        """The cell's entry: ``requested`` (the plan), ``controller``, ``suite``, ``accuracies`` (one per training
        seed), ``mean``, and every tried ``candidates``; None when the cell has none."""
        return self.entries.get((task, target, seed, schedule))

    def tried(self, key: CellKey, requested: Sequence[float]) -> bool:
        entry = self.entries.get(key)
        return entry is not None and any(c["requested"] == list(requested) for c in entry["candidates"])

    def candidates(self, cells: Iterable[dict[str, Any]], schedule: dict[str, str]) -> list[dict[str, Any]]:
        """Plan records (one per training seed, with ``train_seed``) of each cell's most accurate plan among
        ``cells`` (final records of a suite; ``schedule``: task -> ``schedule_of``) that was never tried.
        Controllers with a fixed target (dense) are not candidates."""
        best: dict[CellKey, dict[str, Any]] = {}
        for record in cells:
            if fixed_target(record["controller"]) is not None:
                continue
            key = (record["task"], record["target_sparsity"], record["seed"], schedule[record["task"]])
            if key not in best or record["test_accuracy"] > best[key]["test_accuracy"]:
                best[key] = record
        return [
            {"task": record["task"], "controller": record["controller"], "target_sparsity": record["target_sparsity"],
             "seed": record["seed"], "requested": record["requested"], "suite": record.get("suite"),
             "single_accuracy": record["test_accuracy"], "train_seed": train_seed}
            for key, record in best.items() if not self.tried(key, record["requested"]) for train_seed in TRAIN_SEEDS
        ]

    def update(self, trainings: Iterable[dict[str, Any]], schedule: dict[str, str]) -> list[CellKey]:
        """Add the candidates of ``trainings`` (final records of ``candidates``' plans, or any plan's full
        trainings with every seed of ``TRAIN_SEEDS``, e.g. the learning curves' finals) and rewrite the file;
        returns the cells whose best known plan changed."""
        groups: dict[tuple[CellKey, str], list[dict[str, Any]]] = defaultdict(list)
        for record in trainings:
            key = (record["task"], record["target_sparsity"], record["seed"], schedule[record["task"]])
            groups[(key, json.dumps(record["requested"]))].append(record)
        changed = []
        for (key, _), records in groups.items():
            if len(records) < len(TRAIN_SEEDS) or self.tried(key, records[0]["requested"]):
                continue
            records.sort(key=lambda r: r["train_seed"])
            accuracies = [r["test_accuracy"] for r in records]
            candidate = {"controller": records[0]["controller"], "suite": records[0].get("suite"),
                         "requested": records[0]["requested"], "train_seeds": [r["train_seed"] for r in records],
                         "accuracies": accuracies, "mean": float(np.mean(accuracies)),
                         "single_accuracy": records[0].get("single_accuracy")}
            entry = self.entries.get(key)
            tried = [*(entry["candidates"] if entry else []), candidate]
            top = max(tried, key=lambda c: c["mean"])
            if (entry is None or top is candidate) and key not in changed:
                changed.append(key)
            task, target, seed, fingerprint_ = key
            self.entries[key] = {"task": task, "target_sparsity": target, "seed": seed, "schedule": fingerprint_,
                                 **{k: top[k] for k in ("controller", "suite", "requested", "accuracies", "mean")},
                                 "candidates": tried}
        if groups:
            self.write()
        return changed

    def write(self) -> None:
        """Rewrite ``path`` with every entry."""
        write_atomic(self.path, "".join(json.dumps(self.entries[k], sort_keys=True) + "\n" for k in sorted(self.entries)))
