"""make bench: controllers x tasks x targets x seeds -> test accuracy after full training of the pruned init.

    python -m benchmarks.run                    # the quick suite (embedded digits data, no network)
    python -m benchmarks.run --suite mnist      # see benchmarks/suites.py for the suites and the protocol
    python -m benchmarks.run --suite mnist --tasks lenet300-mnist --sparsities 0.95 0.98   # a part of one

Stage 1 gets every cell's plan; stage 2 trains each pruned initialization with the task's full schedule in worker
processes. Both stages write JSONL records atomically (``<suite>_plans.jsonl``, ``<suite>.jsonl``): an
interrupted run resumes and skips finished work; every record carries the settings its numbers depend on
(``cell_settings``: budgets, schedules, controller options, device, commit, versions) and their fingerprint, and a
resume under other settings refuses with what changed (``--fresh`` starts the suite again). Learners' and searchers'
plans read at ``CHECKPOINTS`` of their budget are trained too (sample efficiency), and each cell's best new plan
is a candidate for the best known plans (``benchmarks.best_known``). At the end the report (``<suite>.md``: the
table with intervals, the paired differences, the rliable aggregate of ``benchmarks.aggregate``, the sample
efficiency) and the plots are rebuilt from the records (``write_report``).

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
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro
from tqdm import tqdm

import agents
from agents.base import Controller, SearchController, TrainableController, describe_factory, fixed_target
from benchmarks.aggregate import (
    aggregate_caption,
    aggregate_table,
    best_heuristic,
    save_profile,
    score_matrices,
)
from benchmarks.best_known import REFERENCE, BestKnown, schedule_of
from benchmarks.cells import instance_env, plan_of, run_finals
from benchmarks.outside import register_outside
from benchmarks.records import RecordFile, check_settings, fingerprint, read_records, write_atomic
from benchmarks.report import (
    caption,
    efficiency_table,
    markdown_table,
    paired_table,
    save_efficiency_plot,
    save_plot,
    weight_sparsity_table,
)
from benchmarks.suites import Suite, get_suite
from pruning_env.device import resolve_device
from pruning_env.parallel import PruningEnv
from pruning_env.pools import make_pool
from pruning_env.provenance import git_describe, versions
from pruning_env.registry import get_task

CELL_KEY = ("task", "controller", "target_sparsity", "seed")
CHECKPOINT_KEY = (*CELL_KEY, "budget_fraction")
CHECKPOINTS: tuple[float, ...] = (0.25, 0.5)
"""Fractions of its evaluation budget at which a learner's and a searcher's plans are also trained fully (the
same run read early: sample efficiency)."""
CANDIDATE_KEY = ("task", "target_sparsity", "seed", "plan", "train_seed")


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
    tasks: tuple[str, ...] | None = None
    """Override the suite's tasks (e.g. ``--tasks lenet300-mnist`` of the mnist suite)."""
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
    best_known: Path = REFERENCE
    """The best known plans (``benchmarks.best_known``): read for the regrets, updated when the run finds better."""
    controller: tuple[str, ...] = ()
    """Your own controllers, ``package.module:factory`` (``benchmarks.outside``), added to the suite's rows."""
    train_checkpoints: bool = True
    """Fully train the plans at 25% and 50% of the budget (the sample-efficiency table); ``--no-train-checkpoints``
    records them untrained, to save two full trainings per learner and searcher cell where trainings are costly."""


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


class Checkpoints:
    """An ``on_update`` probe: reads a learner's or searcher's plans (``read()``) when its spent evaluations first
    reach each fraction of ``budget`` in ``CHECKPOINTS``; ``plans``: fraction -> (evaluations spent, plans)."""

    def __init__(self, budget: int, read: Callable[[], Any]) -> None:
        self.marks = {fraction: max(1, round(fraction * budget)) for fraction in CHECKPOINTS}
        self.read = read
        self.plans: dict[float, tuple[int, Any]] = {}

    def __call__(self, spent: int) -> None:
        reached = [f for f, mark in self.marks.items() if f not in self.plans and spent >= mark]
        if reached:
            plans = self.read()
            self.plans.update({fraction: (spent, plans) for fraction in reached})

    def probe(self, method: Callable[..., Any]) -> dict[str, Any]:
        """``{"on_update": self}`` when ``method`` takes it (ours do; an outside controller may not)."""
        return {"on_update": self} if "on_update" in inspect.signature(method).parameters else {}


def group_plans(suite: Suite, task: str, seed: int, controllers: list[str], device: str) -> Iterator[dict[str, Any]]:
    """Plan records of ``controllers`` for every target of one (task, seed), and of each learner's and searcher's
    checkpoints (records with ``budget_fraction`` and ``spent``)."""
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
            checkpoints = Checkpoints(suite.rl_episodes, lambda c=controller: {
                target: plan_of(c, shared_cell_env(suite, task, target, seed, device), seed)
                for target in suite.sparsities})
            controller.train(make_env, suite.rl_episodes, seed, **checkpoints.probe(controller.train))
            for fraction, (spent, plans) in checkpoints.plans.items():
                for target, plan in plans.items():
                    yield {**record(name, target, plan, 0.0), "budget_fraction": fraction, "spent": spent}
        train_seconds = time.perf_counter() - start
        for target in suite.sparsities:
            start = time.perf_counter()
            env = shared_cell_env(suite, task, target, seed, device)
            if isinstance(controller, TrainableController):
                plan = plan_of(controller, env, seed)
            elif isinstance(controller, SearchController):
                plan, checkpoint_plans = search_plan(suite, name, task, target, seed, device)
                for fraction, (spent, early) in checkpoint_plans.items():
                    yield {**record(name, target, early, 0.0), "budget_fraction": fraction, "spent": spent}
            else:
                plan = plan_of(controller_for(suite, name, env, seed), env, seed)
            yield record(name, target, plan, time.perf_counter() - start + train_seconds / len(suite.sparsities))


def search_plan(suite: Suite, name: str, task: str, target: float, seed: int, device: str
                ) -> tuple[np.ndarray, dict[float, tuple[int, np.ndarray]]]:
    """A searcher's best plan after ``search_episodes_per_cell`` evaluations on one cell, and its best plans at
    the ``CHECKPOINTS`` (fraction -> (spent, plan)); a searcher that takes a ``pool`` (ours) evaluates on
    ``suite.workers`` processes (the same rewards as in this process), any other on the cell's env."""
    env = shared_cell_env(suite, task, target, seed, device)
    budget = suite.search_episodes_per_cell
    if "pool" not in inspect.signature(agents.CONTROLLERS[name]).parameters:
        searcher = controller_for(suite, name, env, seed)
        checkpoints = Checkpoints(budget, lambda: plan_of(searcher, env, seed))
        searcher.search(budget, seed, **checkpoints.probe(searcher.search))
        return plan_of(searcher, env, seed), checkpoints.plans
    source = functools.partial(cell_env, suite, task, target, seed, device)
    with make_pool([source], suite.workers) as pool:
        searcher = agents.make_controller(name, None, seed=seed, pool=pool, **suite.options.get(name, {}))
        checkpoints = Checkpoints(budget, lambda: plan_of(searcher, env, seed))
        searcher.search(budget, seed, **checkpoints.probe(searcher.search))
        return plan_of(searcher, env, seed), checkpoints.plans


def record(controller: str, target: float, plan: Any, seconds: float) -> dict[str, Any]:
    return {"controller": controller, "target_sparsity": target, "requested": plan.tolist(), "plan_seconds": seconds}


def cell_targets(suite: Suite, name: str) -> list[float]:
    """The targets ``name`` is evaluated at: its own fixed target, or the suite's."""
    own = fixed_target(name)
    return [own] if own is not None else list(suite.sparsities)


def run_suite(suite: Suite, out: Path, device: str, progress: bool = True, fresh: bool = False,
              best_known: Path | None = None, train_checkpoints: bool = True) -> str:
    """Run (or resume) a suite; returns the Markdown report: the table with its caption, the paired differences,
    the rliable aggregate with regrets (``benchmarks.aggregate``) and the sample-efficiency table.

    Besides the cells (``<suite>_plans.jsonl``, ``<suite>.jsonl``) it writes the checkpoint plans and their full
    trainings (``<suite>_checkpoint_plans.jsonl``, ``<suite>_checkpoints.jsonl``; the trainings only with
    ``train_checkpoints``), the trainings of new best-plan candidates (``<suite>_candidates.jsonl``), updates the
    best known plans (``best_known``; default ``out/best_known.jsonl``) and draws ``<suite>.png``,
    ``<suite>_profile.png`` and ``<suite>_efficiency.png``.

    Raises:
        ValueError: when ``out`` holds records of this suite made under other settings (``cell_settings``) and
            ``fresh`` is False; nothing is changed then.
    """
    start = time.perf_counter()
    names = ("plans", "", "checkpoint_plans", "checkpoints", "candidates")
    paths = {name: out / f"{suite.name}{'_' if name else ''}{name}.jsonl" for name in names}
    if fresh:
        for path in paths.values():
            path.unlink(missing_ok=True)
    plans, cells = RecordFile(paths["plans"], CELL_KEY), RecordFile(paths[""], CELL_KEY)
    early_plans, early = RecordFile(paths["checkpoint_plans"], CHECKPOINT_KEY), RecordFile(paths["checkpoints"],
                                                                                            CHECKPOINT_KEY)
    candidates = RecordFile(paths["candidates"], CANDIDATE_KEY)

    def settings_of(record: dict[str, Any]) -> dict[str, Any]:
        if record["controller"] not in suite.controllers:  # e.g. an outside controller of an earlier run: kept
            return record.get("settings", {})
        return cell_settings(suite, record["task"], record["controller"], device)

    check_settings([plans, cells, early_plans, early], settings_of, FRESH_HINT)
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
                target = early_plans if "budget_fraction" in plan else plans
                if target.key(plan) not in target:
                    target.add(plan)
                    bar.update(target is plans)
    run_finals([p for p in plans.records if plans.key(p) not in cells], cells, suite.workers, suite.final_steps,
               device, bar, suite=suite.name)
    bar.close()
    todo = [p for p in early_plans.records if early_plans.key(p) not in early] if train_checkpoints else []
    with tqdm(total=len(todo), desc="checkpoint plans (full trainings)", disable=not progress or not todo) as more:
        run_finals(todo, early, suite.workers, suite.final_steps, device, more, suite=suite.name)
    best = BestKnown(best_known or out / "best_known.jsonl")
    schedules = {task: schedule_of(task, suite.final_steps) for task in suite.tasks}
    todo = [{**c, "plan": fingerprint({"requested": c["requested"]})}
            for c in best.candidates([*cells.records, *early.records], schedules)]
    todo = [c for c in todo if candidates.key(c) not in candidates]
    with tqdm(total=len(todo), desc="best-plan candidates (3 training seeds)", disable=not progress or not todo) as more:
        run_finals(todo, candidates, suite.workers, suite.final_steps, device, more)
    best.update(candidates.records, schedules)
    return write_report(suite, out, device, time.perf_counter() - start, best.path)


def write_report(suite: Suite, out: Path, device: str, seconds: float, best_known: Path) -> str:
    """Rebuild the suite's report from its records in ``out`` and the best known plans: ``<suite>.md`` (the
    table, the paired differences, the rliable aggregate, the sample efficiency) and the plots; returns the text."""
    cells = read_records(out / f"{suite.name}.jsonl")
    early = read_records(out / f"{suite.name}_checkpoints.jsonl")
    scores, regrets = score_matrices(suite, cells, BestKnown(best_known))
    report = aggregate_table(scores, regrets, best_heuristic(scores))
    cell_count = next(iter(scores.values())).shape[1] if scores else 0
    text = (markdown_table(suite, cells) + "\n" + caption(suite, device, seconds) + "\n\n"
            + paired_table(suite, cells) + "\n" + weight_sparsity_table(suite, cells) + "\n" + report + "\n" + aggregate_caption(suite, cell_count) + "\n"
            + efficiency_table(suite, cells, early))
    write_atomic(out / f"{suite.name}.md", text)
    save_plot(suite, cells, out / f"{suite.name}.png")
    if scores:
        save_profile(scores, out / f"{suite.name}_profile.png", f"{suite.name}: performance profile")
    save_efficiency_plot(suite, cells, early, out / f"{suite.name}_efficiency.png")
    return text


def main(args: Args) -> None:
    torch.set_num_threads(1)  # the final trainings run in worker processes beside this one: no oversubscription
    overrides: dict[str, Any] = {}
    if args.seeds is not None:
        overrides["seeds"] = args.seeds
    if args.workers is not None:
        overrides["workers"] = args.workers
    if args.tasks is not None:
        overrides["tasks"] = args.tasks
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
    print(run_suite(suite, args.out, device, args.progress, args.fresh, args.best_known, args.train_checkpoints))
    print(f"total time {time.perf_counter() - start:.0f} s; results in {args.out}/{suite.name}.{{jsonl,md,png}}")


if __name__ == "__main__":
    main(tyro.cli(Args))
