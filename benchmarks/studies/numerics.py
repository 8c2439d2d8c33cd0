"""Are full trainings reproducible, and across which machines? The same plans trained in fresh processes under
different CPU kernel selections of one machine.

    python -m benchmarks.studies.numerics                  # dense, uniform, ERK, global SNIP on mlp-digits at 0.99, seeds 0-2

Torch picks its vector kernels by the CPU's instruction set (``ATEN_CPU_CAPABILITY`` caps it) and MKL its GEMM
code path by the processor (``MKL_CBWR=COMPATIBLE`` forces its portable one). Two runs on one machine with the
same selection must agree to the bit; a processor of another kind runs other kernels, which this script imitates
by changing the selection: how far apart its trainings land is how far a committed table can move on another
machine. Records go to ``<out>/numerics.jsonl``, the table to ``<out>/numerics.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tyro
from tqdm import tqdm

from benchmarks.study import check_known, publish, write_records

KERNELS: dict[str, dict[str, str]] = {
    "as found": {},
    "as found, again": {},
    "torch AVX2 kernels": {"ATEN_CPU_CAPABILITY": "avx2"},
    "torch scalar kernels": {"ATEN_CPU_CAPABILITY": "default"},
    "MKL portable path": {"MKL_CBWR": "COMPATIBLE"},
}
"""Kernel selections: environment variables read when torch loads. "as found" twice checks the bitwise repeat."""


@dataclass
class Args:
    task: str = "mlp-digits"
    target: float = 0.99
    """The target sparsity of the pruned plans (dense is trained as it is)."""
    controllers: tuple[str, ...] = ("dense", "uniform", "erk", "global_snip")
    seeds: tuple[int, ...] = (0, 1, 2)
    """Init seeds (each also the minibatch order)."""
    kernels: tuple[str, ...] = tuple(KERNELS)
    """Which of ``KERNELS`` to run."""
    out: Path = Path("benchmarks/results")
    """Folder of the records and the table."""


def train_cells(task: str, target: float, controllers: list[str], seeds: list[int]) -> list[dict[str, Any]]:
    """Each controller's plan on each seed's instance, fully trained in this process (one thread): records with
    the test accuracy and loss and this process's versions (its ``cpu_capability`` among them)."""
    import agents
    from benchmarks.cells import cell_env, final_cells, plan_of
    from benchmarks.provenance import versions

    records = []
    for seed in seeds:
        for controller in controllers:
            cell_target = 0.0 if controller == "dense" else target
            env = cell_env(task, target, seed, "neg_loss", None, "cpu")
            plan = plan_of(agents.make_controller(controller, env), env, seed)
            env.close()
            result = final_cells(task, cell_target, seed, [plan.tolist()], None, "cpu")[0]
            records.append({"task": task, "controller": controller, "target_sparsity": cell_target, "seed": seed,
                            "test_accuracy": result["test_accuracy"], "test_loss": result["test_loss"],
                            "test_images": round(result["test_accuracy"] * _test_size(task)),
                            "versions": versions()})
    return records


def _test_size(task: str) -> int:
    from pruning_env.data import load_dataset
    from pruning_env.registry import get_task

    return len(load_dataset(get_task(task).dataset).y_test)


def run_kernels(name: str, args: Args) -> list[dict[str, Any]]:
    """``train_cells`` in a new Python process with the environment of ``KERNELS[name]``."""
    call = (f"import json; from benchmarks.studies.numerics import train_cells; "
            f"print(json.dumps(train_cells({args.task!r}, {args.target!r}, {list(args.controllers)!r}, "
            f"{list(args.seeds)!r})))")
    done = subprocess.run([sys.executable, "-c", call], env={**os.environ, **KERNELS[name]}, capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parents[2])
    if done.returncode != 0:
        raise RuntimeError(f"the trainings under {name!r} failed:\n{done.stderr[-3000:]}")
    return [{**record, "kernels": name, "environment": KERNELS[name]} for record in json.loads(done.stdout.splitlines()[-1])]


def table(records: list[dict[str, Any]]) -> str:
    """Correct test images per cell and kernel selection, with the test loss, and per selection how many cells
    differ from "as found" and by how many images at most."""
    names = list(dict.fromkeys(r["kernels"] for r in records))
    capability = {r["kernels"]: r["versions"]["cpu_capability"] for r in records}
    cells = list(dict.fromkeys((r["controller"], r["target_sparsity"], r["seed"]) for r in records))
    found = {(r["kernels"], r["controller"], r["target_sparsity"], r["seed"]): r for r in records}
    lines = ["| plan | target | seed | " + " | ".join(f"{n} ({capability[n]})" for n in names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for controller, target, seed in cells:
        entries = [found[(n, controller, target, seed)] for n in names]
        lines.append(f"| {controller} | {target:g} | {seed} | "
                     + " | ".join(f"{e['test_images']} ({e['test_loss']:.5f})" for e in entries) + " |")
    base = names[0]
    lines += ["", f"| kernels | cells whose accuracy differs from {base!r} | most test images apart | "
              "cells whose loss differs |", "|---|---|---|---|"]
    for name in names[1:]:
        pairs = [(found[(base, *cell)], found[(name, *cell)]) for cell in cells]
        apart = [abs(a["test_images"] - b["test_images"]) for a, b in pairs]
        lines.append(f"| {name} | {sum(d > 0 for d in apart)} of {len(cells)} | {max(apart)} | "
                     f"{sum(a['test_loss'] != b['test_loss'] for a, b in pairs)} of {len(cells)} |")
    return "\n".join(lines) + "\n"


def main(args: Args) -> None:
    check_known(args.kernels, KERNELS, "kernel selections")
    start = time.perf_counter()
    records = []
    for name in tqdm(args.kernels, desc="kernel selections"):
        records += run_kernels(name, args)
    path = args.out / "numerics.jsonl"
    write_records(path, records)
    text = publish(args.out, "numerics", f"Test images correct of {_test_size(args.task)} (test loss) after the full "
                   f"training, on {records[0]['versions']['cpu']}, torch {records[0]['versions']['torch']}:\n\n"
                   + table(records))
    print(text + f"\n{len(records)} trainings in {time.perf_counter() - start:.0f} s; records in {path}")


if __name__ == "__main__":
    main(tyro.cli(Args))
