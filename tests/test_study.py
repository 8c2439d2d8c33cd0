"""benchmarks.study: the options every study shares, its records' settings and resuming; a --report-only rebuild
of each study's committed records gives the committed report."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.records import fingerprint, read_records
from benchmarks.study import (
    RUN_OPTIONS,
    StudyArgs,
    check_known,
    open_records,
    publish,
    run_options,
    stamped,
    write_records,
)

REFERENCE = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "reference"


@dataclass
class Args(StudyArgs):
    episodes: int = 3
    data: Path = Path("somewhere")


def test_a_records_settings_hold_the_studys_own_options_not_where_or_how_fast_it_runs() -> None:
    args = Args(out=Path("/elsewhere"), workers=7, progress=False, fresh=True, report_only=True, episodes=5)
    assert set(RUN_OPTIONS) == {"out", "workers", "progress", "fresh", "report_only"}
    assert run_options(args) == {"episodes": 5, "data": "somewhere"}
    assert run_options(args, leave_out=("data",)) == {"episodes": 5}
    settings = {"episodes": 5}
    assert stamped({"seed": 1}, settings, code="abc") == {"seed": 1, "settings": settings,
                                                         "fingerprint": fingerprint(settings), "code": "abc"}


def test_resuming_refuses_other_settings_and_fresh_or_report_only_do_not(tmp_path: Path) -> None:
    files = [(tmp_path / "cells.jsonl", ("seed",))]
    settings_of = lambda record: {"episodes": 3}  # noqa: E731
    cells, = open_records(Args(out=tmp_path), files, settings_of, "use --fresh")
    cells.add(stamped({"seed": 0}, {"episodes": 4}))
    with pytest.raises(ValueError, match="other settings.*episodes: 4 -> 3.*use --fresh"):
        open_records(Args(out=tmp_path), files, settings_of, "use --fresh")
    assert len(open_records(Args(out=tmp_path, report_only=True), files, settings_of)[0].records) == 1
    assert len(open_records(Args(out=tmp_path, fresh=True, report_only=True), files, settings_of)[0].records) == 1
    assert open_records(Args(out=tmp_path, fresh=True), files, settings_of, "use --fresh")[0].records == []
    assert not (tmp_path / "cells.jsonl").exists()


def test_publish_writes_the_report_and_its_plot_and_a_measurement_its_records(tmp_path: Path) -> None:
    assert publish(tmp_path / "new", "study", "# text\n", lambda path: path.write_bytes(b"png")) == "# text\n"
    assert (tmp_path / "new" / "study.md").read_text() == "# text\n"
    assert (tmp_path / "new" / "study.png").read_bytes() == b"png"
    write_records(tmp_path / "other" / "study.jsonl", [{"b": 1, "a": [0.5]}, {"a": 2}])
    assert (tmp_path / "other" / "study.jsonl").read_text() == '{"a": [0.5], "b": 1}\n{"a": 2}\n'
    assert read_records(tmp_path / "other" / "study.jsonl") == [{"a": [0.5], "b": 1}, {"a": 2}]


def test_unknown_names_refuse_with_what_is_known() -> None:
    check_known(("b",), {"a": 1, "b": 2}, "variants")
    with pytest.raises(SystemExit, match=r"unknown variants \['c', 'd'\]; known: \['a', 'b'\]"):
        check_known(("d", "b", "c"), {"a": 1, "b": 2}, "variants")


@pytest.mark.slow
@pytest.mark.parametrize("study", ["oracle", "generalize", "learning_curves", "snip_table1"])
def test_a_report_only_rebuild_of_the_committed_records_gives_the_committed_report(study: str, tmp_path: Path) -> None:
    """Every line but the run's wall time (not a record: the rebuild takes its own)."""
    from benchmarks.studies import generalize, learning_curves, oracle, snip_table1

    files = {"oracle": ["oracle.jsonl", "oracle_zero_shot.jsonl", "ground_truth.jsonl"],
             "generalize": ["generalize_plans.jsonl", "generalize.jsonl", "generalize_controllers"],
             "learning_curves": ["learning_curves.jsonl", "learning_curves_finals.jsonl"],
             "snip_table1": ["snip_table1.jsonl"]}[study]
    sources = {name: REFERENCE / name if name == "ground_truth.jsonl" else REFERENCE / study / name for name in files}
    for name, source in sources.items():  # the study's folder; the shared ground-truth store beside the folders
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    if study == "oracle":
        text = oracle.run_study(oracle.Args(out=tmp_path, reference=tmp_path / "none", report_only=True))
    elif study == "generalize":
        text = generalize.run(generalize.Args(out=tmp_path, report_only=True, progress=False))
    elif study == "learning_curves":
        text = learning_curves.main(learning_curves.Args(out=tmp_path, seeds_per_target=(3, 5), report_only=True))
    else:
        snip_table1.main(snip_table1.Args(out=tmp_path, report_only=True, progress=False))
        text = (tmp_path / "snip_table1.md").read_text()
    timed = ("min this run", "Wall time")
    committed = [line for line in (REFERENCE / study / f"{study}.md").read_text().splitlines() if not line.startswith(timed)]
    rebuilt = [line for line in text.splitlines() if not line.startswith(timed)]
    if study == "generalize":  # its wall time closes the last line
        committed[-1], rebuilt[-1] = (line.rsplit("; ", 1)[0] for line in (committed[-1], rebuilt[-1]))
    assert rebuilt == committed
    assert (tmp_path / f"{study}.md").read_text() == text
    for name, source in sources.items():  # nothing was dropped or rewritten
        if source.is_file():
            assert (tmp_path / name).read_bytes() == source.read_bytes()
