"""make bench: controllers x tasks x sparsities x seeds -> test accuracy after full training of the pruned init.

    python -m benchmarks.run                    # the quick suite (embedded digits data, no network)
    python -m benchmarks.run --suite mnist      # see benchmarks/suites.py for the suites and the protocol

Stage 1 gets every cell's plan (training each learning controller once per task and seed); stage 2 trains each
pruned initialization with the task's full schedule in worker processes. Both stages write JSONL records
atomically (``<suite>_plans.jsonl``, ``<suite>.jsonl``): an interrupted run resumes and skips finished work.
At the end the Markdown table (``<suite>.md``) and the plot (``<suite>.png``) are rebuilt from the records.
"""

from __future__ import annotations

import functools
import multiprocessing
import platform
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro
from tqdm import tqdm

import agents
from agents.base import stacked
from agents.random_search import RandomSearch
from benchmarks.final_accuracy import FinalEvaluator
from benchmarks.records import RecordFile, write_atomic
from benchmarks.report import caption, markdown_table, save_plot
from benchmarks.suites import DENSE, LEARNERS, SEARCH, Suite, get_suite
from pruning_env import __version__
from pruning_env.env import PruningEnv, resolve_device
from pruning_env.tasks import get_task

CELL_KEY = ("task", "controller", "sparsity", "seed")


@dataclass
class Args:
    suite: str = "quick"
    """Suite name (quick, mnist, cifar, tiny); the generalization benchmark is ``python -m benchmarks.generalize``."""
    out: Path = Path("benchmarks/results")
    """Folder of the records, table and plot."""
    device: str = "auto"
    """"auto" (CUDA when present), "cpu" or "cuda"."""
    seeds: tuple[int, ...] | None = None
    """Override the suite's seeds."""
    workers: int | None = None
    """Processes for the final trainings (the suite's default when omitted)."""
    progress: bool = True
    """Show progress bars."""


def versions() -> dict[str, str]:
    import gymnasium
    import pettingzoo

    return {
        "pruning_env": __version__, "torch": torch.__version__, "numpy": np.__version__,
        "gymnasium": gymnasium.__version__, "pettingzoo": pettingzoo.__version__, "python": platform.python_version(),
    }


def instance_env(
    task: str, target: float | tuple[float, float], seed: int, reward: str, reward_steps: int | None, device: str
) -> PruningEnv:
    """A new env on seed ``seed``'s initialization of ``task`` (``init=seed``: reset seeds then only vary the
    targets drawn from a range), with the given reward."""
    return PruningEnv(
        task, target_sparsity=target, reward=reward, reward_steps=reward_steps, init=seed, seed=seed, device=device
    )


def cell_env(suite: Suite, task: str, target: float | tuple[float, float], seed: int, device: str) -> PruningEnv:
    """The env a controller sees for one task and target (or target range) with the suite's reward; a new env
    every call: learners' factories must not share one."""
    return instance_env(task, target, seed, suite.reward, suite.reward_steps, device)


@functools.lru_cache(maxsize=16)
def shared_cell_env(suite: Suite, task: str, sparsity: float, seed: int, device: str) -> PruningEnv:
    """``cell_env`` kept for every controller of one cell: the seed's instance is scored once."""
    return cell_env(suite, task, sparsity, seed, device)


def plan_of(controller: Any, env: PruningEnv, seed: int) -> np.ndarray:
    """The requested sparsities ``(L,)`` a controller chooses on the seed's instance."""
    observations, infos = env.reset(seed=seed)
    actions = controller.act(observations, infos)
    return stacked({agent: np.asarray(a, dtype=np.float64).reshape(1) for agent, a in actions.items()})[:, 0]


def group_plans(suite: Suite, task: str, seed: int, controllers: list[str], device: str) -> Iterator[dict[str, Any]]:
    """Plan records of ``controllers`` for every sparsity of one (task, seed)."""
    for name in controllers:
        start = time.perf_counter()
        if name == DENSE:
            env = cell_env(suite, task, 0.0, seed, device)
            yield {"controller": name, "sparsity": 0.0, "requested": [0.0] * len(env.layers), "plan_seconds": 0.0}
            continue
        learner = None
        if name in LEARNERS:
            make_env = functools.partial(cell_env, suite, task, (min(suite.sparsities), max(suite.sparsities)), seed, device)
            learner = agents.make_controller(name, make_env(), **learner_options(name, seed))
            learner.train(make_env, suite.rl_episodes, seed)
        train_seconds = time.perf_counter() - start
        for sparsity in suite.sparsities:
            start = time.perf_counter()
            env = shared_cell_env(suite, task, sparsity, seed, device)
            if learner is not None:
                controller = learner
            elif name == SEARCH:
                controller = RandomSearch(env, episodes=suite.search_episodes_per_cell, seed=seed, progress=False)
                controller.train()
            else:
                controller = agents.make_controller(name, env, **({"seed": seed} if name == "random" else {}))
            plan = plan_of(controller, env, seed)
            seconds = time.perf_counter() - start + train_seconds / len(suite.sparsities)
            yield {"controller": name, "sparsity": sparsity, "requested": plan.tolist(), "plan_seconds": seconds}


def learner_options(name: str, seed: int) -> dict[str, Any]:
    """Constructor options of a learning controller in the benchmark (SB3 PPO takes its seed in ``train``)."""
    if name.startswith("mappo"):
        return {"seed": seed, "progress": False, "tensorboard": False, "workers": 2}
    return {}


@functools.lru_cache(maxsize=4)
def _evaluator(task: str, sparsity: float, final_steps: int | None, device: str) -> FinalEvaluator:
    """One evaluator per worker process and cell kind: its env caches the seeds' instances."""
    torch.set_num_threads(1)
    final_train = None if final_steps is None else replace(get_task(task).final_train, steps=final_steps)
    return FinalEvaluator(task, sparsity, device=device, final_train=final_train)


def final_cell(task: str, sparsity: float, seed: int, requested: list[float], final_steps: int | None, device: str) -> dict[str, Any]:
    """Test accuracy of one plan on seed ``seed``'s instance after the task's full training (masks held)."""
    evaluator = _evaluator(task, sparsity, final_steps, device)
    outcome = evaluator(np.asarray(requested), seed)
    return {
        "applied": (np.asarray(outcome.pruned_counts) / evaluator.env.sizes).tolist(),
        "global_sparsity": outcome.global_sparsity,
        "test_accuracy": outcome.accuracy,
        "test_loss": outcome.loss,
        "diverged": outcome.diverged,
        "train_seconds": outcome.seconds,
    }


def run_finals(
    plans: list[dict[str, Any]], cells: RecordFile, workers: int, final_steps: int | None, device: str, bar: tqdm,
    **fields: Any,
) -> None:
    """Train every plan record (``task``, ``sparsity``, ``seed``, ``requested``) fully in ``workers`` processes and
    add each result to ``cells`` with the plan, ``fields``, the device and the versions, as it finishes."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures: dict[Future, dict[str, Any]] = {
            pool.submit(final_cell, p["task"], p["sparsity"], p["seed"], p["requested"], final_steps, device): p
            for p in plans
        }
        for future in as_completed(futures):
            cells.add({
                **futures[future], **future.result(), **fields, "device": device, "versions": versions(),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            })
            bar.update(1)


def run_suite(suite: Suite, out: Path, device: str, progress: bool = True) -> str:
    """Run (or resume) a suite; returns the Markdown table with its caption."""
    start = time.perf_counter()
    plans = RecordFile(out / f"{suite.name}_plans.jsonl", CELL_KEY)
    cells = RecordFile(out / f"{suite.name}.jsonl", CELL_KEY)
    total = sum(len(suite.tasks) * len(suite.seeds) * (1 if c == DENSE else len(suite.sparsities)) for c in suite.controllers)
    bar = tqdm(total=2 * total, desc=f"bench {suite.name} (plans, then full trainings)", unit="step", disable=not progress)
    bar.update(len(plans.records) + len(cells.records))
    for task in suite.tasks:
        for seed in suite.seeds:
            missing = [
                c for c in suite.controllers
                if any((task, c, s, seed) not in plans for s in ([0.0] if c == DENSE else suite.sparsities))
            ]
            for record in group_plans(suite, task, seed, missing, device):
                record.update(task=task, seed=seed)
                if (task, record["controller"], record["sparsity"], seed) not in plans:
                    plans.add(record)
                    bar.update(1)
    todo = [p for p in plans.records if plans.key(p) not in cells]
    run_finals(todo, cells, suite.workers, suite.final_steps, device, bar, suite=suite.name)
    bar.close()
    seconds = time.perf_counter() - start
    text = markdown_table(suite, cells.records) + "\n" + caption(suite, device, seconds) + "\n"
    write_atomic(out / f"{suite.name}.md", text)
    save_plot(suite, cells.records, out / f"{suite.name}.png")
    return text


def main(args: Args) -> None:
    torch.set_num_threads(1)  # the final trainings run in worker processes beside this one: no oversubscription
    overrides: dict[str, Any] = {}
    if args.seeds is not None:
        overrides["seeds"] = args.seeds
    if args.workers is not None:
        overrides["workers"] = args.workers
    suite = get_suite(args.suite, **overrides)
    device = str(resolve_device(args.device))
    start = time.perf_counter()
    print(run_suite(suite, args.out, device, args.progress))
    print(f"total time {time.perf_counter() - start:.0f} s; results in {args.out}/{suite.name}.{{jsonl,md,png}}")


if __name__ == "__main__":
    main(tyro.cli(Args))
