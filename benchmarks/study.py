"""What every study shares: its run options, its records' settings, resuming from its records, and writing its
report and plot.

    @dataclass
    class Args(StudyArgs):                      # out, workers, progress, fresh, report_only and the study's own
        episodes: int = 300

    plans, cells = open_records(args, [(args.out / "x_plans.jsonl", KEY), (args.out / "x.jsonl", KEY)],
                                lambda record: settings_of(args, record), "start again with --fresh")
    cells.add(stamped(record, settings_of(args, record)))
    publish(args.out, "x", report_text, save_plot)     # x.md and x.png

A record's settings are what its numbers depend on (``run_options`` drop the options that only decide where and how
fast a study runs); its fingerprint is their hash (``benchmarks.records.fingerprint``), the code that computed it
``benchmarks.provenance.code_fingerprint``. Resuming refuses records made under other settings and recomputes those
where only the code changed (``benchmarks.records.check_settings``); a study that searches cell by cell drops only
the cells of this run recorded under other settings (``drop_superseded``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.records import RecordFile, check_settings, fingerprint
from pruning_env.files import write_atomic


@dataclass
class StudyArgs:
    """The options every study takes; a study's ``Args`` adds its own (and may change a default)."""

    out: Path = Path("benchmarks/results")
    """Folder of the study's records, report and plot."""
    workers: int = 2
    """Processes for the study's episodes and full trainings."""
    progress: bool = True
    """Show progress bars."""
    fresh: bool = False
    """Delete the study's records in ``out`` first and start again."""
    report_only: bool = False
    """Only rebuild the report and the plot from the stored records: nothing is computed, checked or dropped."""


RUN_OPTIONS: tuple[str, ...] = tuple(StudyArgs.__dataclass_fields__)
"""Options that decide where and how fast a study runs, never its numbers: no part of a record's settings."""


def run_options(args: StudyArgs, leave_out: Iterable[str] = ()) -> dict[str, Any]:
    """The study's own options as a record stores them (paths as strings), without ``RUN_OPTIONS`` and
    ``leave_out``."""
    skip = {*RUN_OPTIONS, *leave_out}
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items() if k not in skip}


def stamped(record: dict[str, Any], settings: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """``record`` with its ``settings``, their ``fingerprint`` and ``fields`` (e.g. the code's fingerprint)."""
    return {**record, "settings": settings, "fingerprint": fingerprint(settings), **fields}


def open_records(args: StudyArgs, files: Sequence[tuple[Path, Sequence[str]]],
                 settings_of: Callable[[dict[str, Any]], dict[str, Any]] | None = None, fresh_hint: str = ""
                 ) -> list[RecordFile]:
    """The study's record files ``(path, key fields)``, deleted first with ``--fresh``. With ``settings_of`` and
    unless ``--report-only``, a record made under other settings than ``settings_of(record)`` refuses (ValueError
    ending in ``fresh_hint``) and one whose settings differ only in ``code`` is dropped, to be computed again."""
    return open_record_files(files, args.fresh and not args.report_only,
                             None if args.report_only else settings_of, fresh_hint)


def open_record_files(files: Sequence[tuple[Path, Sequence[str]]], fresh: bool,
                      settings_of: Callable[[dict[str, Any]], dict[str, Any]] | None = None, fresh_hint: str = ""
                      ) -> list[RecordFile]:
    """``open_records`` with its options spelled out: ``fresh`` deletes the files first; with ``settings_of`` the
    records are checked (``benchmarks.records.check_settings``) and each record dropped because only the code changed
    is named on stdout ("computing again (what changed): key")."""
    if fresh:
        for path, _ in files:
            path.unlink(missing_ok=True)
    records = [RecordFile(path, key) for path, key in files]
    if settings_of is not None:
        for cell, changes in check_settings(records, settings_of, fresh_hint).items():
            print(f"computing again ({'; '.join(changes)}): {cell}")
    return records


def drop_superseded(records: RecordFile, in_run: Callable[[dict[str, Any]], bool], settings: dict[str, Any]
                    ) -> list[dict[str, Any]]:
    """Drop the records of this run's cells (``in_run``) made under other ``settings`` (to be computed again); the
    records of other cells stay, whatever their settings. Returns the dropped ones."""
    return records.discard(lambda record: in_run(record) and record["settings"] != settings)


def check_known(given: Iterable[str], known: Iterable[str], what: str) -> None:
    """Refuse (SystemExit: "unknown <what> [...]; known: [...]") any name of ``given`` not in ``known``."""
    known = list(known)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise SystemExit(f"unknown {what} {unknown}; known: {known}")


def write_records(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Write the records of a study that measures afresh every run (no resume) as JSONL, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "".join(json.dumps(record, sort_keys=True) + "\n" for record in records))


def publish(out: Path, name: str, text: str, plot: Callable[[Path], None] | None = None) -> str:
    """Write the report ``<out>/<name>.md`` and, with ``plot``, its plot ``<out>/<name>.png``; returns ``text``."""
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / f"{name}.md", text)
    if plot is not None:
        plot(out / f"{name}.png")
    return text
