"""Append-safe JSONL records: a finished cell is written atomically and never lost; a rerun skips it.

Every record carries the ``settings`` that determine its numbers and their ``fingerprint``; resuming with other
settings refuses (``check_settings``) instead of mixing results made under different settings, except where only
the code that computed a record changed: such a record is dropped and computed again, never reported stale.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pruning_env.files import write_atomic


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every record of a JSONL file (none when it does not exist)."""
    if not path.exists():
        return []
    with path.open() as lines:
        return [json.loads(line) for line in lines if line.strip()]


class RecordFile:
    """A JSONL file of records keyed by some of their fields; ``add`` rewrites the file atomically."""

    def __init__(self, path: Path, key_fields: Iterable[str]) -> None:
        self.path = path
        self.key_fields = tuple(key_fields)
        self.records = read_records(path)
        self._keys = {self.key(record) for record in self.records}

    def key(self, record: dict[str, Any]) -> tuple:
        return tuple(record[field] for field in self.key_fields)

    def __contains__(self, key: tuple) -> bool:
        return key in self._keys

    def add(self, record: dict[str, Any]) -> None:
        """Store one record (a key already present is an error: every cell exactly once)."""
        key = self.key(record)
        if key in self._keys:
            raise ValueError(f"record {key} is already in {self.path}")
        self.records.append(record)
        self._keys.add(key)
        self._write()

    def discard(self, drop: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Remove the records for which ``drop`` is true (rewriting the file when there are any); returns them."""
        dropped = [record for record in self.records if drop(record)]
        if dropped:
            self.records = [record for record in self.records if not drop(record)]
            self._keys = {self.key(record) for record in self.records}
            self._write()
        return dropped

    def _write(self) -> None:
        write_atomic(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in self.records))


def fingerprint(settings: dict[str, Any]) -> str:
    """A short hash of ``settings`` (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def changed_settings(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """``"key: saved -> current"`` for every leaf that differs (nested dicts compared key by key)."""
    lines = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key, "(absent)"), current.get(key, "(absent)")
        if isinstance(old, dict) and isinstance(new, dict):
            lines += changed_settings(old, new, f"{prefix}{key}.")
        elif json.dumps(old, sort_keys=True, default=str) != json.dumps(new, sort_keys=True, default=str):
            lines.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return lines


def check_settings(files: Iterable[RecordFile], settings_of: Callable[[dict[str, Any]], dict[str, Any]],
                   fresh_hint: str, recompute: str = "code") -> dict[str, list[str]]:
    """Refuse to resume when a stored record was made under other settings than ``settings_of(record)`` now;
    records whose settings differ only under the key ``recompute`` (the code that computed them) are dropped
    from their files instead, to be computed again.

    Returns:
        What was dropped: ``"file: cell"`` -> the changed settings.

    Raises:
        ValueError: naming the file, the cell, what changed, and how to start fresh (``fresh_hint``); checked
            before anything is dropped, so a refusal changes no file.
    """
    files = list(files)
    stale: dict[int, dict[tuple, list[str]]] = {}
    for index, records in enumerate(files):
        for record in records.records:
            current = settings_of(record)
            if record.get("fingerprint") == fingerprint(current):
                continue
            changes = changed_settings(record.get("settings", {}), current) or ["(records made before fingerprints)"]
            if all(change.startswith(f"{recompute}.") or change.startswith(f"{recompute}:") for change in changes):
                stale.setdefault(index, {})[records.key(record)] = changes
                continue
            raise ValueError(
                f"{records.path} holds results made under other settings (cell {records.key(record)}): "
                + "; ".join(changes[:8]) + f". Nothing was mixed or overwritten; {fresh_hint}"
            )
    dropped: dict[str, list[str]] = {}
    for index, keys in stale.items():
        file = files[index]
        for record in file.discard(lambda r, file=file, keys=keys: file.key(r) in keys):
            dropped[f"{file.path.name}: {file.key(record)}"] = keys[file.key(record)]
    return dropped
