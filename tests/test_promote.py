"""A run's best known plans sit over the reference's without changing it; ``benchmarks.promote`` is the one command
that writes the reference: the suite's files copied, the best known plans merged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.best_known import BestKnown
from benchmarks.promote import promote
from benchmarks.records import read_records


def entry(seed: int, mean: float, suite: str) -> dict:
    return {"task": "mlp-digits", "target_sparsity": 0.99, "seed": seed, "schedule": "s", "mean": mean,
            "suite": suite, "controller": "erk", "requested": [0.9], "accuracies": [mean], "candidates": []}


def write(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_a_run_reads_the_reference_beneath_its_own_file_and_promote_merges_it(tmp_path: Path) -> None:
    reference, out = tmp_path / "reference", tmp_path / "run"
    write(reference / "best_known.jsonl", [entry(0, 0.80, "quick"), entry(1, 0.70, "quick")])
    write(out / "best_known.jsonl", [entry(1, 0.75, "short")])  # the run improved seed 1's cell
    write(out / "short.jsonl", [{"controller": "erk"}])
    (out / "short.md").write_text("report")
    (out / "quick.md").write_text("another suite's report")

    best = BestKnown(out / "best_known.jsonl", base=reference / "best_known.jsonl")
    assert best.get("mlp-digits", 0.99, 0, "s")["mean"] == 0.80 and best.get("mlp-digits", 0.99, 1, "s")["mean"] == 0.75
    reference_before = (reference / "best_known.jsonl").read_text()
    best.write()
    assert (reference / "best_known.jsonl").read_text() == reference_before  # the base is never written

    written = promote("short", out, reference)
    assert sorted(p.relative_to(reference).as_posix() for p in written) == [
        "best_known.jsonl", "short/short.jsonl", "short/short.md"]  # the suite's folder; the shared store beside it
    assert (reference / "short" / "short.md").read_text() == "report"
    assert not (reference / "quick.md").exists() and not (reference / "quick").exists()
    merged = {(e["seed"], e["mean"]) for e in read_records(reference / "best_known.jsonl")}
    assert merged == {(0, 0.80), (1, 0.75)}


def test_promoting_a_suite_that_was_not_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no run of the suite 'short'.*make bench SUITE=short"):
        promote("short", tmp_path, tmp_path / "reference")


def test_promote_adds_the_runs_trainings_to_the_reference_store_once(tmp_path: Path) -> None:
    from benchmarks.ground_truth import GroundTruth
    from tests.test_oracle import fake_training

    reference, out = tmp_path / "reference", tmp_path / "run"
    GroundTruth(reference / "ground_truth.jsonl").add(fake_training("mlp-digits", 0.99, 0, 0, [0.9], 0.5, 0.6))
    run = GroundTruth(out / "ground_truth.jsonl", base=reference / "ground_truth.jsonl")
    run.add(fake_training("mlp-digits", 0.99, 0, 0, [0.9], 0.1, 0.1))  # stored in the base already: not written
    run.add(fake_training("mlp-digits", 0.99, 1, 0, [0.9], 0.5, 0.7))
    assert len(run) == 2 and len((out / "ground_truth.jsonl").read_text().splitlines()) == 1
    write(out / "oracle.jsonl", [{"seed": 1}])
    assert "ground_truth.jsonl" in [p.name for p in promote("oracle", out, reference)]
    stored = GroundTruth(reference / "ground_truth.jsonl")
    assert sorted((r["seed"], r["test_accuracy"]) for r in stored.records.values()) == [(0, 0.6), (1, 0.7)]


def test_promoting_the_default_group_promotes_each_of_its_suites(tmp_path: Path, capsys) -> None:
    from benchmarks.promote import Args, main
    from benchmarks.suites import suite_names

    reference, out = tmp_path / "reference", tmp_path / "run"
    for name in suite_names("default"):
        write(out / f"{name}.jsonl", [{"controller": "erk"}])
        (out / f"{name}.md").write_text(f"report of {name}")
    main(Args("default", out, reference))
    assert suite_names("default") == ("short", "short_trained")
    for name in suite_names("default"):
        assert (reference / name / f"{name}.md").read_text() == f"report of {name}"
    assert not (reference / "default").exists()
    assert capsys.readouterr().out.count("wrote ") == 4
