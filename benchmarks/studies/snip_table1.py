"""SNIP's Table 1 (Lee et al. 2019) on real MNIST: global SNIP's plan, trained with the schedule we ship and with
the paper's, from our initialization and from the paper's, against the paper's test errors.

    python -m benchmarks.studies.snip_table1                            # LeNet-300-100 at 95% and 98%, seeds 0-2
    python -m benchmarks.studies.snip_table1 --tasks lenet5-mnist --seeds 0

The paper's set-up (section 5): SNIP scores on one batch of 100 and prunes globally; SGD, momentum 0.9, batch 100,
weight decay 5e-4, lr 0.1 decayed by 0.1 every 25k iterations (the total is not stated: ``paper`` trains 50k, two
decays), 10% of the training set held out; 20 runs per sparsity. Ours (``shipped``): the task's ``final_train``,
the same optimizer for 10k iterations with a cosine decay. Initializations: ``torch``, the task's network as
PyTorch initializes it (weights and biases uniform in ±1/sqrt(fan_in): weight std 1/sqrt(3 fan_in)); ``paper``,
the initialization of SNIP's code (``tf.variance_scaling_initializer``: weights from a normal truncated at two
standard deviations with std 1/sqrt(fan_in) after truncation, biases zero), 1.7x the weight scale. Every
combination prunes the seeded initialization with its global SNIP plan through the env's pipeline
(``FinalEvaluator``); records go to ``<out>/snip_table1.jsonl`` (resumable), the table to ``<out>/snip_table1.md``
(``--report-only`` rebuilds it from the records).
"""
from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import tyro
from torch import nn

import agents
from benchmarks.cells import cell_env, plan_of
from benchmarks.final_accuracy import FinalEvaluator
from benchmarks.intervals import signed_interval, t_interval
from benchmarks.provenance import git_describe, versions
from benchmarks.study import StudyArgs, check_known, open_records, publish
from benchmarks.suites import PUBLISHED
from pruning_env.data import Dataset, load_dataset
from pruning_env.models import build_model
from pruning_env.pools import JobPool
from pruning_env.registry import get_task
from pruning_env.training import TrainConfig

PAPER_ERRORS: dict[tuple[str, float], float] = {
    cell: round(100 - accuracy, 2) for cell, (source, accuracy) in PUBLISHED.items() if source.startswith("SNIP")
}
"""SNIP's Table 1: test error (%) by (task, sparsity), from the suites' published figures."""


def schedules(task: str, steps: int | None = None) -> dict[str, TrainConfig]:
    """The shipped schedule of ``task`` and the paper's (50k iterations, x0.1 every 25k); ``steps`` shortens both
    to that many iterations (the paper's decaying halfway)."""
    shipped = get_task(task).final_train
    paper = replace(shipped, steps=50_000, cosine=False, decay_every=25_000)
    if steps is not None:
        shipped, paper = replace(shipped, steps=steps), replace(paper, steps=steps, decay_every=max(1, steps // 2))
    return {"shipped": shipped, "paper": paper}


TRUNCATED_STD = 0.87962566103423978
"""Standard deviation of a unit normal truncated at ±2 (TF divides by it so that the truncated draw has the
intended std)."""


def paper_init(model: nn.Module, seed: int) -> nn.Module:
    """Re-initialize every Linear and Conv2d of ``model`` in place as SNIP's code does, from ``seed`` alone:
    weights truncated-normal at ±2 std with std 1/sqrt(fan_in) after truncation, biases zero."""
    generator = torch.Generator().manual_seed(seed)
    for layer in model.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d):
            std = math.sqrt(1 / layer.weight[0].numel()) / TRUNCATED_STD
            with torch.no_grad():
                nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std, generator=generator)
                if layer.bias is not None:
                    layer.bias.zero_()
    return model


def networks(task: str, data: Dataset) -> dict[str, Callable[[int], nn.Module] | None]:
    """The initializations by name, as ``seed -> network`` factories (None: the task's own)."""
    spec = get_task(task)
    return {"torch": None,
            "paper": lambda seed: paper_init(build_model(spec.model, num_classes=data.num_classes, seed=seed), seed)}


INITS = ("torch", "paper")
SAVE_EVERY = 1000
"""Iterations between the checkpoints of SNIP's code (``save_interval``)."""
KEPT = 5
"""Checkpoints its ``tf.train.Saver`` keeps (``max_to_keep``'s default): the last five."""


def code_report(record: dict[str, Any]) -> float | None:
    """The test accuracy SNIP's code reports for a run (``test.py``: the best test accuracy over the checkpoints
    kept, i.e. the last ``KEPT`` of every ``SAVE_EVERY`` iterations), or None for a record without checkpoints."""
    accuracies = record.get("checkpoint_accuracies")
    return max(accuracies[-KEPT:]) if accuracies else None


@dataclass
class Args(StudyArgs):
    """The study's options; ``workers`` run one training each."""

    tasks: tuple[str, ...] = ("lenet300-mnist",)
    """Tasks of ``PAPER_ERRORS``."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Init seeds (each also the minibatch order)."""
    schedules: tuple[str, ...] = ("shipped", "paper")
    """Which training schedules to run."""
    inits: tuple[str, ...] = INITS
    """Which initializations to run (``torch``, ``paper``)."""
    final_steps: int | None = None
    """Training iterations of both schedules (None: theirs, 10k and 50k); a few make a quick smoke run, not
    comparable with the paper (a resume refuses records of another length)."""


@functools.lru_cache(maxsize=1)
def _data(task: str) -> Dataset:
    return load_dataset(get_task(task).dataset)


@functools.lru_cache(maxsize=8)
def _evaluator(task: str, target: float, schedule: str, init: str, steps: int | None = None) -> FinalEvaluator:
    torch.set_num_threads(1)
    data = _data(task)
    return FinalEvaluator(task, target, device="cpu", final_train=schedules(task, steps)[schedule], data=data,
                          model=networks(task, data)[init])


def train(task: str, target: float, seed: int, schedule: str, init: str, steps: int | None = None) -> dict[str, Any]:
    """Global SNIP's plan on seed ``seed``'s instance under ``init``, trained with ``schedule`` (shortened to
    ``steps`` iterations when given): one record."""
    data = _data(task)
    env = cell_env(task, target, seed, "neg_loss", None, "cpu", model=networks(task, data)[init], data=data)
    plan = plan_of(agents.make_controller("global_snip", env), env, seed)
    env.close()
    config = schedules(task, steps)[schedule]
    checkpoints = list(range(SAVE_EVERY, config.steps + 1, SAVE_EVERY))
    result = _evaluator(task, target, schedule, init, steps)(plan, seed, eval_at=checkpoints)
    return {"task": task, "target_sparsity": target, "seed": seed, "schedule": schedule, "init": init,
            "train": asdict(config), "test_accuracy": result.test_accuracy,
            "checkpoint_steps": checkpoints, "checkpoint_accuracies": list(result.test_accuracy_at),
            "global_sparsity": result.global_sparsity, "requested": plan.tolist(), "applied": result.applied.tolist(),
            "train_seconds": result.seconds, "commit": git_describe(), "versions": versions()}


def table(records: list[dict[str, Any]]) -> str:
    """Test error (%) per (task, sparsity), initialization and schedule: mean ± 95% t-interval over seeds and its
    difference to the paper's figure, after the full training and as SNIP's code reports it (``code_report``)."""
    lines = ["| task | sparsity | SNIP paper error (%) | init | schedule | our error (%) | minus paper (points) | "
             f"best of the last {KEPT} checkpoints, as SNIP's code reports (%) | minus paper (points) | seeds |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (task, target), paper in PAPER_ERRORS.items():
        for init in INITS:
            for schedule in ("shipped", "paper"):
                runs = [r for r in records
                        if (r["task"], r["target_sparsity"], r["init"], r["schedule"]) == (task, target, init, schedule)]
                if not runs:
                    continue
                cells = []
                for accuracies in ([r["test_accuracy"] for r in runs], [code_report(r) for r in runs]):
                    if None in accuracies:
                        cells += ["–", "–"]
                        continue
                    mean, half = t_interval([100 * (1 - a) for a in accuracies])
                    cells += [f"{mean:.2f} ± {half:.2f}", signed_interval(mean - paper, half)]
                lines.append(f"| {task} | {target:g} | {paper:g} | {init} | {schedule} | " + " | ".join(cells)
                             + f" | {len(runs)} |")
    return "\n".join(lines) + "\n"


def main(args: Args) -> None:
    check_known(args.inits, INITS, "initializations")
    check_known(args.schedules, ("shipped", "paper"), "schedules")
    records, = open_records(args, [(args.out / "snip_table1.jsonl", ("task", "target_sparsity", "seed", "schedule",
                                                                     "init"))])
    other = [r for r in records.records if r["train"]["steps"] != schedules(r["task"], args.final_steps)[r["schedule"]].steps]
    if other and not args.report_only:
        raise SystemExit(f"{records.path} holds {len(other)} records trained for another number of iterations "
                         "(--final-steps): give another --out, or start again with --fresh")
    jobs = [(task, target, seed, schedule, init) for (task, target) in PAPER_ERRORS if task in args.tasks
            for init in args.inits for schedule in args.schedules for seed in args.seeds
            if (task, target, seed, schedule, init) not in records and not args.report_only]
    start = time.perf_counter()
    with JobPool(max(1, min(args.workers, len(jobs)))) as pool:
        for _, record in pool.run(train, [(*job, args.final_steps) for job in jobs],
                                  progress="SNIP Table 1" if args.progress else None):
            records.add(record)
    text = publish(args.out, "snip_table1", table(records.records))
    print(text + f"\n{len(jobs)} trainings in {time.perf_counter() - start:.0f} s; records in {records.path}")


if __name__ == "__main__":
    main(tyro.cli(Args))
