"""The ground-truth store: every full training a benchmark or study ran, one JSON line each, reused by later studies.

    store = GroundTruth(Path("benchmarks/results/ground_truth.jsonl"))
    store.find(key)                     # a finished training of that key, or None (no torch needed to read)
    store.add(record)                   # appended as one line; a rerun reads it back instead of training again

Schema of a record (``FIELDS``; numbers are floats unless said):

- ``task``, ``target_sparsity``, ``budget`` (``"weights"`` or ``"flops"``), ``seed`` (the instance: the
  initialization θ0 and its masks), ``train_seed`` (the minibatch order of the full training), ``steps`` (int: the
  optimizer steps of the full training; the task's ``evaluation_train`` otherwise);
- ``requested`` and ``applied``: the plan as asked and after the env's projection onto the budget, ``(L,)`` lists;
- ``val_accuracy``, ``val_loss``, ``test_accuracy``, ``test_loss``: after that one training (accuracy in [0, 1],
  mean cross-entropy in nats); ``diverged`` (bool), ``seconds`` (the training's wall time);
- ``source``: what ran it (``"oracle"``, ``"bench:<suite>"``); ``code``: ``benchmarks.provenance.code_fingerprint``
  of the code that trained it; ``versions``: ``benchmarks.provenance.versions()``; ``finished``: ISO time.

A training is identified by ``key``: task, target, budget, seed, train seed, steps and the requested plan rounded to
float32 (what the env's actions hold). The code fingerprint is recorded, not part of the key: the store outlives
edits that do not change training (a change that does is a new task version, as in HPOBench).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT = Path("benchmarks/results/ground_truth.jsonl")
"""Where benchmarks and studies append by default (ignored by git; a study's reference copy is committed)."""

FIELDS: tuple[str, ...] = (
    "task", "target_sparsity", "budget", "seed", "train_seed", "steps", "requested", "applied", "val_accuracy",
    "val_loss", "test_accuracy", "test_loss", "diverged", "seconds", "source", "code", "versions", "finished",
)
"""The fields of every record, in the order they are written."""

Key = tuple[str, float, str, int, int, int, tuple[float, ...]]


def plan_key(requested: Sequence[float]) -> tuple[float, ...]:
    """A requested plan as the key holds it: rounded to float32 like the env's Box actions, as Python floats."""
    return tuple(float(v) for v in np.asarray(requested, dtype=np.float32))


def key(task: str, target_sparsity: float, budget: str, seed: int, train_seed: int, steps: int,
        requested: Sequence[float]) -> Key:
    """The identity of one full training (see the module docstring)."""
    return (task, float(target_sparsity), budget, int(seed), int(train_seed), int(steps), plan_key(requested))


def record_key(record: dict[str, Any]) -> Key:
    """``key`` of a stored record."""
    return key(record["task"], record["target_sparsity"], record["budget"], record["seed"], record["train_seed"],
               record["steps"], record["requested"])


class GroundTruth:
    """An append-only JSONL file of full trainings (``FIELDS``), indexed by ``key``, over the records of ``base``
    (another store, e.g. the committed reference: read, never written).

    Appends are single ``write`` calls of one line, so two processes appending to one store interleave whole lines.
    A record whose key is already stored (here or in ``base``) is not written again.
    """

    def __init__(self, path: Path, base: Path | None = None) -> None:
        self.path = Path(path)
        self.records: dict[Key, dict[str, Any]] = {}
        for source in (base, self.path):
            if source is not None and Path(source).exists():
                for line in Path(source).read_text().splitlines():
                    if line.strip():
                        record = json.loads(line)
                        self.records.setdefault(record_key(record), record)

    def __len__(self) -> int:
        return len(self.records)

    def find(self, training: Key) -> dict[str, Any] | None:
        """The stored record of ``training`` (a ``key``), or None."""
        return self.records.get(training)

    def add(self, record: dict[str, Any]) -> None:
        """Append ``record`` (every field of ``FIELDS``; a ValueError names the missing ones) unless its key is
        stored already."""
        missing = [field for field in FIELDS if field not in record]
        if missing:
            raise ValueError(f"a ground-truth record needs the fields {missing}")
        training = record_key(record)
        if training in self.records:
            return
        line = json.dumps({field: record[field] for field in FIELDS}) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as file:
            file.write(line)
        self.records[training] = record
