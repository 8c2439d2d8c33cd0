"""Reproducibility tooling: the machine in every record, the cell-by-cell comparison of two runs, and the bitwise
repeat of a full training in two fresh processes."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from benchmarks.compare import Args, compare, main, provenance
from benchmarks.provenance import versions
from benchmarks.studies.numerics import Args as NumericsArgs
from benchmarks.studies.numerics import main as numerics_main


def cell(controller: str, seed: int, accuracy: float, **extra) -> dict:
    return {"task": "mlp-digits", "controller": controller, "target_sparsity": 0.99, "seed": seed,
            "test_accuracy": accuracy, **extra}


def test_versions_name_the_processor_and_torch_cpu_kernels() -> None:
    found = versions()
    assert found["cpu"] and found["cpu"] != "unknown"
    assert found["cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_compare_matches_cells_by_key_and_orders_differences_largest_first() -> None:
    run = [cell("erk", 0, 0.90), cell("erk", 1, 0.80), cell("lamp", 0, 0.85), cell("uniform", 2, 0.5)]
    reference = [cell("erk", 1, 0.80), cell("erk", 0, 0.91), cell("lamp", 0, 0.75), cell("dense", 0, 0.97)]
    result = compare(run, reference)
    assert (result.shared, result.only_run, result.only_reference) == (3, 1, 1)
    assert [(dict(key)["controller"], a, b) for key, a, b in result.differing] == [("lamp", 0.85, 0.75),
                                                                                  ("erk", 0.90, 0.91)]


def test_compare_keeps_checkpoints_of_one_cell_apart() -> None:
    run = [cell("tpe", 0, 0.8, budget_fraction=0.25), cell("tpe", 0, 0.9, budget_fraction=0.5)]
    reference = [cell("tpe", 0, 0.9, budget_fraction=0.5), cell("tpe", 0, 0.8, budget_fraction=0.25)]
    assert compare(run, reference).differing == [] and compare(run, reference).shared == 2


def test_compare_exit_status_and_provenance(tmp_path, capsys) -> None:
    machine = {"cpu": "Some CPU", "cpu_capability": "AVX2"}
    same = [cell("erk", 0, 0.9, settings={"commit": "abc"}, versions=machine)]
    (tmp_path / "a.jsonl").write_text(json.dumps(same[0]) + "\n")
    (tmp_path / "b.jsonl").write_text(json.dumps({**same[0], "test_accuracy": 0.8, "versions": {}}) + "\n")
    assert main(Args(tmp_path / "a.jsonl", tmp_path / "a.jsonl")) == 0
    assert main(Args(tmp_path / "a.jsonl", tmp_path / "b.jsonl")) == 1
    printed = capsys.readouterr().out
    assert "commits abc (1); machines Some CPU / AVX2 (1)" in printed and "machines not recorded (1)" in printed
    assert "| task=mlp-digits, controller=erk, target_sparsity=0.99, seed=0 | 90.00 | 80.00 | +10.00 |" in printed
    assert provenance([{"test_accuracy": 1.0}]) == "commits not recorded (1); machines not recorded (1)"
    with pytest.raises(SystemExit, match="no records at"):
        main(Args(tmp_path / "a.jsonl", tmp_path / "missing.jsonl"))


@pytest.mark.slow
def test_a_full_training_repeats_to_the_bit_in_a_fresh_process(tmp_path) -> None:
    args = replace(NumericsArgs(), controllers=("erk",), seeds=(0,), kernels=("as found", "as found, again"),
                   out=tmp_path)
    numerics_main(args)
    first, again = [json.loads(line) for line in (tmp_path / "numerics.jsonl").read_text().splitlines()]
    assert first["kernels"] == "as found" and again["kernels"] == "as found, again"
    assert (first["test_accuracy"], first["test_loss"]) == (again["test_accuracy"], again["test_loss"])
    assert 0.3 < first["test_accuracy"] <= 1.0  # ERK at 0.99 learns (chance is 0.1)
    assert "| as found, again | 0 of 1 | 0 | 0 of 1 |" in (tmp_path / "numerics.md").read_text()
