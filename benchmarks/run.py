"""make bench: controllers x tasks x targets x seeds -> test accuracy after full training of the pruned init.

    python -m benchmarks.run                    # the quick suite (embedded digits data, no network)
    python -m benchmarks.run --suite mnist      # see benchmarks/suites.py for the suites and the protocol

Stage 1 gets every cell's plan; stage 2 trains each pruned initialization with the task's full schedule in worker
processes. Both stages write JSONL records atomically (``<suite>_plans.jsonl``, ``<suite>.jsonl``): an
interrupted run resumes and skips finished work; every record carries the settings its numbers depend on
(``cell_settings``: budgets, schedules, controller options, device, commit, versions) and their fingerprint, and a
resume under other settings refuses with what changed (``--fresh`` starts the suite again). At the end the Markdown table (``<suite>.md``) and the plot
(``<suite>.png``) are rebuilt from the records.

The protocol is a product of the controller registry's protocols (``agents.base``), not of names:
a ``TrainableController`` (learner) trains once per (task, seed) over the suite's target range with
``rl_episodes`` reward evaluations and then acts on every target; a ``SearchController`` searches every cell
with ``search_episodes_per_cell``; any other controller acts on every cell; a controller with a fixed target
(``agents.base.fixed_target``: the dense reference) is evaluated once per (task, seed), at that target.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro
from tqdm import tqdm

import agents
from agents.base import Controller, SearchController, TrainableController, describe_factory, fixed_target
from benchmarks.cells import instance_env, plan_of, run_finals
from benchmarks.outside import register_outside
from benchmarks.records import RecordFile, check_settings, fingerprint, write_atomic
from benchmarks.report import caption, markdown_table, paired_table, save_plot
from benchmarks.suites import Suite, get_suite
from pruning_env.device import resolve_device
from pruning_env.parallel import PruningEnv
from pruning_env.pools import make_pool
from pruning_env.provenance import git_describe, versions
from pruning_env.registry import get_task

CELL_KEY = ("task", "controller", "target_sparsity", "seed")


@dataclass
class Args:
    suite: str = "quick"
    """Suite name (quick, mnist, cifar, benchmarl, tiny); the generalization benchmark is ``python -m benchmarks.generalize``."""
    out: Path = Path("benchmarks/results")
    """Folder of the records, table and plot."""
    device: str = "auto"
    """"auto" (CUDA when present), "cpu" or "cuda"."""
    seeds: tuple[int, ...] | None = None
    """Override the suite's seeds."""
    sparsities: tuple[float, ...] | None = None
    """Override the suite's targets (e.g. a sweep for where the allocation matters)."""
    only: tuple[str, ...] = ()
    """Run only these of the suite's controllers (all when empty)."""
    workers: int | None = None
    """Processes for the final trainings (the suite's default when omitted)."""
    progress: bool = True
    """Show progress bars."""
    fresh: bool = False
    """Delete this suite's records in ``out`` first and start again (a resume under other settings refuses)."""
    controller: tuple[str, ...] = ()
    """Your own controllers, ``package.module:factory`` (``benchmarks.outside``), added to the suite's rows."""


FRESH_HINT = ("start this suite again with --fresh (make bench FRESH=1), which deletes its records in the results "
              "folder, or write to another folder with --out")


def cell_settings(suite: Suite, task: str, controller: str, device: str) -> dict[str, Any]:
    """Everything a cell's numbers depend on besides its key: the suite's budgets and schedules, the task, the
    controller and its options, the device, the code's commit and the versions."""
    spec = get_task(task)
    return {
        "suite": {"name": suite.name, "sparsities": list(suite.sparsities), "rl_episodes": suite.rl_episodes,
                  "reward": suite.reward, "reward_steps": suite.reward_steps, "final_steps": suite.final_steps},
        "task": {"model": str(spec.model), "dataset": spec.dataset, "scorer": spec.scorer, "proxies": list(spec.proxies),
                 "reward_train": asdict(spec.reward_train), "final_train": asdict(spec.final_train)},
        "controller": controller, "factory": describe_factory(agents.CONTROLLERS[controller]),
        "options": dict(suite.options.get(controller, {})), "device": device,
        "commit": git_describe(), "versions": versions(),
    }


def cell_env(suite: Suite, task: str, target: float | tuple[float, float], seed: int, device: str) -> PruningEnv:
    """The env a controller sees for one task and target (or target range) with the suite's reward; a new env
    every call: learners' factories must not share one."""
    return instance_env(task, target, seed, suite.reward, suite.reward_steps, device)


@functools.lru_cache(maxsize=16)
def _shared_env(task: str, target: float | tuple[float, float], seed: int, reward: str, reward_steps: int | None,
                device: str) -> PruningEnv:
    return instance_env(task, target, seed, reward, reward_steps, device)


def shared_cell_env(suite: Suite, task: str, target: float | tuple[float, float], seed: int, device: str) -> PruningEnv:
    """``cell_env`` kept for every controller of one cell: the seed's instance is scored once."""
    return _shared_env(task, target, seed, suite.reward, suite.reward_steps, device)


def controller_for(suite: Suite, name: str, env: PruningEnv, seed: int) -> Controller:
    """The registered controller ``name`` built for ``env`` with the suite's options for it."""
    return agents.make_controller(name, env, seed=seed, **suite.options.get(name, {}))


def group_plans(suite: Suite, task: str, seed: int, controllers: list[str], device: str) -> Iterator[dict[str, Any]]:
    """Plan records of ``controllers`` for every target of one (task, seed)."""
    target_range = (min(suite.sparsities), max(suite.sparsities))
    for name in controllers:
        start = time.perf_counter()
        controller = controller_for(suite, name, shared_cell_env(suite, task, target_range, seed, device), seed)
        own_target = fixed_target(controller)
        if own_target is not None:
            env = shared_cell_env(suite, task, own_target, seed, device)
            yield record(name, own_target, plan_of(controller, env, seed), time.perf_counter() - start)
            continue
        if isinstance(controller, TrainableController):
            make_env = functools.partial(cell_env, suite, task, target_range, seed, device)
            controller.train(make_env, suite.rl_episodes, seed)
        train_seconds = time.perf_counter() - start
        for target in suite.sparsities:
            start = time.perf_counter()
            env = shared_cell_env(suite, task, target, seed, device)
            if isinstance(controller, TrainableController):
                plan = plan_of(controller, env, seed)
            elif isinstance(controller, SearchController):
                plan = search_plan(suite, name, task, target, seed, device)
            else:
                plan = plan_of(controller_for(suite, name, env, seed), env, seed)
            yield record(name, target, plan, time.perf_counter() - start + train_seconds / len(suite.sparsities))


def search_plan(suite: Suite, name: str, task: str, target: float, seed: int, device: str) -> np.ndarray:
    """A searcher's best plan after ``search_episodes_per_cell`` evaluations on one cell; a searcher that takes a
    ``pool`` (ours) evaluates on ``suite.workers`` processes (the same rewards as in this process), any other on
    the cell's env."""
    env = shared_cell_env(suite, task, target, seed, device)
    if "pool" not in inspect.signature(agents.CONTROLLERS[name]).parameters:
        searcher = controller_for(suite, name, env, seed)
        searcher.search(suite.search_episodes_per_cell, seed)
        return plan_of(searcher, env, seed)
    source = functools.partial(cell_env, suite, task, target, seed, device)
    with make_pool([source], suite.workers) as pool:
        searcher = agents.make_controller(name, None, seed=seed, pool=pool, **suite.options.get(name, {}))
        searcher.search(suite.search_episodes_per_cell, seed)
        return plan_of(searcher, env, seed)


def record(controller: str, target: float, plan: Any, seconds: float) -> dict[str, Any]:
    return {"controller": controller, "target_sparsity": target, "requested": plan.tolist(), "plan_seconds": seconds}


def cell_targets(suite: Suite, name: str) -> list[float]:
    """The targets ``name`` is evaluated at: its own fixed target, or the suite's."""
    own = fixed_target(name)
    return [own] if own is not None else list(suite.sparsities)


def run_suite(suite: Suite, out: Path, device: str, progress: bool = True, fresh: bool = False) -> str:
    """Run (or resume) a suite; returns the Markdown table with its caption.

    Raises:
        ValueError: when ``out`` holds records of this suite made under other settings (``cell_settings``) and
            ``fresh`` is False; nothing is changed then.
    """
    start = time.perf_counter()
    paths = [out / f"{suite.name}_plans.jsonl", out / f"{suite.name}.jsonl"]
    if fresh:
        for path in paths:
            path.unlink(missing_ok=True)
    plans, cells = (RecordFile(path, CELL_KEY) for path in paths)

    def settings_of(record: dict[str, Any]) -> dict[str, Any]:
        if record["controller"] not in suite.controllers:  # e.g. an outside controller of an earlier run: kept
            return record.get("settings", {})
        return cell_settings(suite, record["task"], record["controller"], device)

    check_settings([plans, cells], settings_of, FRESH_HINT)
    total = sum(len(suite.tasks) * len(suite.seeds) * len(cell_targets(suite, c)) for c in suite.controllers)
    bar = tqdm(total=2 * total, desc=f"bench {suite.name} (plans, then full trainings)", unit="step", disable=not progress)
    bar.update(len(plans.records) + len(cells.records))
    for task in suite.tasks:
        for seed in suite.seeds:
            missing = [
                c for c in suite.controllers if any((task, c, t, seed) not in plans for t in cell_targets(suite, c))
            ]
            for plan in group_plans(suite, task, seed, missing, device):
                settings = cell_settings(suite, task, plan["controller"], device)
                plan.update(task=task, seed=seed, settings=settings, fingerprint=fingerprint(settings))
                if plans.key(plan) not in plans:
                    plans.add(plan)
                    bar.update(1)
    todo = [p for p in plans.records if plans.key(p) not in cells]
    run_finals(todo, cells, suite.workers, suite.final_steps, device, bar, suite=suite.name)
    bar.close()
    seconds = time.perf_counter() - start
    text = (markdown_table(suite, cells.records) + "\n" + caption(suite, device, seconds) + "\n\n"
            + paired_table(suite, cells.records) + "\n")
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
    if args.sparsities is not None:
        overrides["sparsities"] = args.sparsities
    if args.only:
        unknown = sorted(set(args.only) - set(get_suite(args.suite).controllers))
        if unknown:
            raise ValueError(f"--only names controllers the suite {args.suite!r} does not have: {', '.join(unknown)}")
        overrides["controllers"] = tuple(c for c in get_suite(args.suite).controllers if c in args.only)
    suite = get_suite(args.suite, **overrides)
    device = str(resolve_device(args.device))
    if args.controller:
        env = shared_cell_env(suite, suite.tasks[0], suite.sparsities[0], suite.seeds[0], device)
        names = [register_outside(path, env) for path in args.controller]
        suite = replace(suite, controllers=(*suite.controllers, *(n for n in names if n not in suite.controllers)))
    start = time.perf_counter()
    print(run_suite(suite, args.out, device, args.progress, args.fresh))
    print(f"total time {time.perf_counter() - start:.0f} s; results in {args.out}/{suite.name}.{{jsonl,md,png}}")


if __name__ == "__main__":
    main(tyro.cli(Args))
