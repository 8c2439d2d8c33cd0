"""Reward throughput of the batched path: evaluations per second against the batch B of masked copies.

    python -m benchmarks.studies.reward_throughput                          # the default device, every task
    python -m benchmarks.studies.reward_throughput --device cuda --batches 1 4 16 64 128

For each task, precision (fp32, bf16 autocast) and B it times ``PruningEnv.evaluate_plans`` of B plans on one
instance (seed 0, plans drawn around ERK in logit space, K = ``--steps`` reward steps) after one warm-up pass,
and prints evaluations per second, the ratio to the sequential path (B = 1 trainer, timed in the same run),
the achieved dense TFLOP/s (2 FLOPs per multiply-accumulate x 3 for forward + backward x the prunable layers'
MACs per sample x batch x K, plus the evaluation's forward) against the device's matmul peak measured in the same
run (square ``--matmul-size`` matrices in that precision), and the memory per copy: measured peak allocation on
CUDA; on CPU the parameters, gradients and Adam state only (activations are not counted there).
A cell whose projected time (B x the sequential seconds) exceeds ``--max-cell-seconds`` is skipped and said so.

Then the fidelity of bf16: the Kendall tau between fp32 and bf16 rewards of ``--tau-plans`` plans of one task.
A CIFAR task falls back to synthetic CIFAR-shaped data when the archive is absent; ``--synthetic`` uses random data
of every task's real shape instead of its dataset (no data files needed: ``benchmarks.studies.gpu_check``). Results go to
``<out>/reward_throughput_<device><label>.md`` and ``.jsonl``.

On a 2-core CPU, ResNet-20 at K = 100 takes about a minute per evaluation; time it there with ``--steps 20``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro
from scipy.stats import kendalltau

from agents.heuristics import reference_sparsities
from agents.random_search import sample_plans
from benchmarks.provenance import git_describe, versions
from benchmarks.studies.env_speed import matmul_gflops, task_data
from pruning_env.compute import synchronize
from pruning_env.data import Dataset
from pruning_env.data.dataset import build_dataset
from pruning_env.device import resolve_device
from pruning_env.parallel import PruningEnv
from pruning_env.registry import get_task
from pruning_env.spaces import stack_observations


@dataclass
class Args:
    tasks: tuple[str, ...] = ("mlp-digits", "lenet5-mnist", "resnet20-cifar10")
    """Tasks to time."""
    batches: tuple[int, ...] = (1, 4, 16, 64)
    """Masked copies trained side by side."""
    precisions: tuple[str, ...] = ("fp32", "bf16")
    """Precisions of the forward passes."""
    steps: int = 100
    """K, the reward's training steps."""
    device: str = "auto"
    """"auto", "cpu" or "cuda"."""
    sequential_plans: int = 4
    """Plans the sequential baseline is timed on (per-evaluation seconds averaged)."""
    max_cell_seconds: float = 120.0
    """Skip a (task, precision, B) cell whose projected time is longer."""
    matmul_size: int = 2048
    """Side of the square matrices of the peak matmul."""
    tau_task: str = "mlp-digits"
    """Task of the bf16 vs fp32 reward fidelity check."""
    tau_plans: int = 30
    """Plans of that check (0 skips it)."""
    threads: int | None = None
    """torch CPU threads (torch's default when omitted; the benchmark's pool workers use 1)."""
    out: Path = Path("benchmarks/results")
    """Folder of the markdown and JSONL results."""
    label: str = ""
    """Appended to the file names (``reward_throughput_<device><label>``), to keep runs of other settings apart."""
    synthetic: bool = False
    """Random data of each task's real input shape and classes instead of its dataset (``synthetic_data``)."""


SYNTHETIC_SHAPES = {"mnist": ((1, 28, 28), 10), "cifar10": ((3, 32, 32), 10), "cifar100": ((3, 32, 32), 100)}
"""Input shape and classes of the datasets ``--synthetic`` can stand in for."""


def synthetic_data(task_name: str, device: torch.device) -> Dataset:
    """10,000 training-pool and 500 test samples of the task's dataset's shape and classes (a fixed random prototype
    per class plus unit Gaussian noise, as ``synthetic-cifar10``); the 10 % validation split covers the reward's
    1,000 evaluation samples."""
    dataset = get_task(task_name).dataset
    if dataset not in SYNTHETIC_SHAPES:
        raise ValueError(f"--synthetic: no shape known for dataset {dataset!r} (known: {sorted(SYNTHETIC_SHAPES)})")
    shape, classes = SYNTHETIC_SHAPES[dataset]
    rng = np.random.default_rng(0)
    prototypes = rng.normal(0.0, 0.5, size=(classes, *shape)).astype(np.float32)
    labels = rng.permutation(np.arange(10_500) % classes)
    images = prototypes[labels] + rng.normal(size=(len(labels), *shape)).astype(np.float32)
    return build_dataset(f"synthetic-{dataset}", images[:10_000], labels[:10_000], images[10_000:], labels[10_000:],
                         num_classes=classes, val_fraction=0.1, rng=np.random.default_rng(0)).to(device)


def matmul_tflops(size: int, device: torch.device, precision: str) -> float:
    """TFLOP/s of ``torch.mm`` of two ``(size, size)`` matrices in ``precision`` (``benchmarks.studies.env_speed``)."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    return matmul_gflops(size, device, repeats=10, dtype=dtype) / 1e3


def flops_per_evaluation(env: PruningEnv) -> float:
    """Dense FLOPs of one reward: K training steps (x3 of a forward) and the evaluation's forward pass."""
    evaluator = env.reward_evaluator
    macs = sum(layer.flops for layer in env.layers)
    config = evaluator.train_config
    return 2 * macs * (3 * config.batch_size * config.steps + len(evaluator.x_eval))


def plans_around_erk(env: PruningEnv, count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` plans ``(L,)`` drawn around ERK in logit space (scale 1) on the instance of ``seed``."""
    observations, _ = env.reset(seed=seed)
    center = reference_sparsities(stack_observations(observations), env.feature_names, "erk")
    return list(sample_plans(center, 1.0, count, np.random.default_rng(seed)))


def state_mib_per_copy(env: PruningEnv) -> float:
    """Parameters, gradients and two Adam moments of one copy, plus its buffers, in MiB."""
    model = env.reward_evaluator.trainer.model
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    return (4 * parameters + buffers) / 2**20


def timed_batch(env: PruningEnv, plans: list[np.ndarray], copies: int, precision: str) -> tuple[float, float]:
    """Seconds of ``evaluate_plans`` of ``plans`` with ``copies`` side by side (after a warm-up), and the peak
    memory per copy in MiB (CUDA: measured; CPU: ``state_mib_per_copy``)."""
    trainer = env.reward_evaluator.trainer
    trainer.copies, trainer.precision = copies, precision  # one env, one scored instance, every setting
    episodes = [(0, plan) for plan in plans]
    env.evaluate_plans(episodes[: max(1, min(len(episodes), copies))])  # warm-up: kernels, allocator, caches
    device = env.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    synchronize(device)
    start = time.perf_counter()
    env.evaluate_plans(episodes)
    synchronize(device)
    seconds = time.perf_counter() - start
    if device.type == "cuda":
        memory = (torch.cuda.max_memory_allocated(device) - base) / 2**20 / min(copies, len(plans))
    else:
        memory = state_mib_per_copy(env)
    return seconds, memory


def throughput_rows(task: str, args: Args, device: torch.device, peaks: dict[str, float]) -> list[dict[str, Any]]:
    """One row per (precision, B) of ``task``: evaluations/s, ratio to sequential, TFLOP/s, % of peak, memory."""
    data = synthetic_data(task, device) if args.synthetic else task_data(task, device)
    env = PruningEnv(task, reward_steps=args.steps, device=device, data=data)
    flops = flops_per_evaluation(env)
    rows = []
    for precision in args.precisions:
        plans = plans_around_erk(env, max(max(args.batches), args.sequential_plans))
        sequential, _ = timed_batch(env, plans[: args.sequential_plans], 1, precision)
        sequential_per_eval = sequential / args.sequential_plans
        print(f"{task} {precision}: sequential {1 / sequential_per_eval:.2f} evaluations/s")
        for copies in args.batches:
            row: dict[str, Any] = {"task": task, "precision": precision, "batch": copies, "steps": args.steps,
                                   "device": str(device)}
            if copies * sequential_per_eval > args.max_cell_seconds:
                print(f"  B={copies}: skipped (projected {copies * sequential_per_eval:.0f} s > {args.max_cell_seconds:.0f} s)")
                rows.append({**row, "skipped": True})
                continue
            seconds, memory = timed_batch(env, plans[:copies], copies, precision)
            rate = copies / seconds
            tflops = rate * flops / 1e12
            row.update({"evaluations_per_s": rate, "ratio_to_sequential": rate * sequential_per_eval,
                        "tflops": tflops, "percent_of_peak": 100 * tflops / peaks[precision],
                        "mib_per_copy": memory, "skipped": False})
            print(f"  B={copies}: {rate:.2f} evaluations/s, x{row['ratio_to_sequential']:.2f} the sequential path, "
                  f"{tflops:.3f} TFLOP/s ({row['percent_of_peak']:.1f}% of peak), {memory:.1f} MiB per copy")
            rows.append(row)
    return rows


def bf16_fidelity(args: Args, device: torch.device) -> dict[str, Any]:
    """Kendall tau between the fp32 and the bf16 rewards of ``args.tau_plans`` plans of ``args.tau_task``."""
    env = PruningEnv(args.tau_task, reward_steps=args.steps, device=device, data=task_data(args.tau_task, device))
    plans = plans_around_erk(env, args.tau_plans)
    trainer = env.reward_evaluator.trainer
    rewards = {}
    for precision in ("fp32", "bf16"):
        trainer.precision = precision
        rewards[precision] = [r.reward for r in env.evaluate_plans([(0, plan) for plan in plans])]
    tau = kendalltau(rewards["fp32"], rewards["bf16"]).statistic
    gap = float(np.max(np.abs(np.subtract(rewards["fp32"], rewards["bf16"]))))
    print(f"bf16 vs fp32 rewards on {args.tau_task} ({args.tau_plans} plans, K={args.steps}, reward_batch "
          f"{trainer.copies}): Kendall tau {tau:.3f}, max |difference| {gap:.4f}")
    return {"task": args.tau_task, "plans": args.tau_plans, "steps": args.steps, "kendall_tau": float(tau),
            "max_abs_difference": gap, "reward_batch": trainer.copies, "device": str(device)}


def markdown(rows: list[dict[str, Any]], peaks: dict[str, float], fidelity: dict[str, Any] | None,
             device: torch.device) -> str:
    """The results as a markdown table with the peaks and the bf16 fidelity under it."""
    lines = [
        f"# Reward throughput on {device} (K = {rows[0]['steps'] if rows else '?'}, {torch.get_num_threads()} CPU "
        f"threads, commit {git_describe()})", "",
        "| task | precision | B | evaluations/s | x sequential | TFLOP/s | % of matmul peak | MiB per copy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["skipped"]:
            lines.append(f"| {row['task']} | {row['precision']} | {row['batch']} | skipped (too slow here) | | | | |")
            continue
        lines.append(
            f"| {row['task']} | {row['precision']} | {row['batch']} | {row['evaluations_per_s']:.2f} | "
            f"{row['ratio_to_sequential']:.2f} | {row['tflops']:.4f} | {row['percent_of_peak']:.2f} | "
            f"{row['mib_per_copy']:.1f} |"
        )
    lines += ["", "Matmul peak in the same run: " + ", ".join(f"{p} {v:.3f} TFLOP/s" for p, v in peaks.items()) + "."]
    if device.type != "cuda":
        lines.append("MiB per copy on CPU: parameters, gradients and Adam moments only (activations not counted).")
    if fidelity:
        lines.append(
            f"bf16 vs fp32 rewards, {fidelity['task']}, {fidelity['plans']} plans: Kendall tau "
            f"{fidelity['kendall_tau']:.3f}, max |difference| {fidelity['max_abs_difference']:.4f}."
        )
    return "\n".join(lines) + "\n"


def main(args: Args) -> None:
    device = resolve_device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"device {device}, {torch.get_num_threads()} CPU threads")
    peaks = {precision: matmul_tflops(args.matmul_size, device, precision) for precision in args.precisions}
    print("matmul peak: " + ", ".join(f"{p} {v:.3f} TFLOP/s" for p, v in peaks.items()))
    rows = [row for task in args.tasks for row in throughput_rows(task, args, device, peaks)]
    fidelity = bf16_fidelity(args, device) if args.tau_plans > 0 else None
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"reward_throughput_{device.type}{args.label}"
    with open(f"{stem}.jsonl", "w") as records:
        for row in rows:
            records.write(json.dumps({**row, "commit": git_describe(), "versions": versions()}) + "\n")
        if fidelity:
            records.write(json.dumps({"kind": "bf16_fidelity", **fidelity}) + "\n")
    Path(f"{stem}.md").write_text(markdown(rows, peaks, fidelity, device))
    print(f"wrote {stem}.md and {stem}.jsonl")


if __name__ == "__main__":
    main(tyro.cli(Args))
