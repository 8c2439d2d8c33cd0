"""The quick table's paired comparison (``benchmarks.report.paired_table``) on hand-made records."""

from __future__ import annotations

import pytest

from benchmarks.intervals import signed_interval, t_interval
from benchmarks.report import effective_sparsity_table, paired_table, weight_sparsity_table
from benchmarks.suites import get_suite


def records(controller: str, accuracies: dict[float, list[float]]) -> list[dict]:
    return [{"task": "mlp-digits", "controller": controller, "target_sparsity": target, "seed": seed,
             "test_accuracy": accuracy}
            for target, values in accuracies.items() for seed, accuracy in enumerate(values)]


def test_each_learner_is_paired_with_the_best_heuristic_of_its_column() -> None:
    suite = get_suite("quick", controllers=("dense", "erk", "global_snip", "cma_es", "mappo"))
    rows = (records("erk", {0.98: [0.90, 0.91, 0.92], 0.99: [0.86, 0.87, 0.85]})
            + records("global_snip", {0.98: [0.93, 0.94, 0.95], 0.99: [0.84, 0.85, 0.83]})
            + records("cma_es", {0.98: [0.94, 0.93, 0.97], 0.99: [0.87, 0.88, 0.84]})
            + records("dense", {0.0: [0.97, 0.97, 0.97]}))
    text = paired_table(suite, rows)
    assert "0.98 (global_snip) | 0.99 (erk)" in text  # the best mean per column
    mean, half = t_interval([1.0, -1.0, 2.0])  # cma_es - global_snip at 0.98, in points
    assert f"| cma_es | {signed_interval(mean, half)} (2/3 ahead) | " in text
    assert mean == pytest.approx(2 / 3)
    assert "| mappo | – | – |" in text  # no records: no cells
    assert "| dense |" not in text and "| erk |" not in text  # heuristics and fixed-target rows are not paired


def test_the_oracle_row_and_each_rows_share_of_its_headroom() -> None:
    suite = get_suite("quick", controllers=("dense", "erk", "cma_es"), sparsities=(0.98,))
    rows = records("erk", {0.98: [0.50, 0.60, 0.70]}) + records("cma_es", {0.98: [0.60, 0.80, 0.70]})
    oracle = {("mlp-digits", 0.98, 0): 90.0, ("mlp-digits", 0.98, 1): 80.0}  # seed 2 has no oracle cell
    text = paired_table(suite, rows, oracle=oracle)
    assert f"| oracle | {signed_interval(*t_interval([40.0, 20.0]))} (2/2 ahead) |" in text
    # cma_es's differences on the oracle's seeds (10 + 20) over the oracle's (40 + 20): half its headroom
    assert f"| cma_es | {signed_interval(*t_interval([10.0, 20.0, 0.0]))} (2/3 ahead; 50% of the oracle's) |" in text
    assert "oracle" not in paired_table(suite, rows)


def test_a_flops_task_reports_the_weight_sparsity_each_controller_reached() -> None:
    suite = get_suite("flops", controllers=("dense", "erk", "global_snip"))
    rows = [{"task": "cnn-digits-flops", "controller": c, "target_sparsity": t, "seed": seed, "test_accuracy": 0.9,
             "global_sparsity": g}
            for c, t, seed, g in [("erk", 0.95, 0, 0.95), ("erk", 0.95, 1, 0.96), ("global_snip", 0.98, 0, 0.9),
                                  ("dense", 0.0, 0, 0.0)]]
    text = weight_sparsity_table(suite, rows)
    assert "| erk | 95.5 | – |" in text and "| global_snip | – | 90.0 |" in text and "dense" not in text
    assert weight_sparsity_table(get_suite("quick"), rows) == ""  # a weight budget: the target is the sparsity


def test_the_effective_sparsity_table_sits_beside_the_nominal_target() -> None:
    suite = get_suite("quick", controllers=("dense", "uniform", "global_snip"))
    rows = [{"task": "mlp-digits", "controller": c, "target_sparsity": t, "seed": seed, "effective_sparsity": e}
            for c, t, seed, e in [("uniform", 0.98, 0, 0.9812), ("uniform", 0.98, 1, 0.9816),
                                  ("global_snip", 0.99, 0, 0.995), ("dense", 0.0, 0, 0.0)]]
    rows.append({"task": "mlp-digits", "controller": "uniform", "target_sparsity": 0.99, "seed": 0})  # not recorded
    text = effective_sparsity_table(suite, rows)
    assert "| mlp-digits: effective sparsity (%) | 0.98 nominal | 0.99 nominal |" in text
    assert "| uniform | 98.14 | – |" in text and "| global_snip | – | 99.50 |" in text and "dense" not in text
