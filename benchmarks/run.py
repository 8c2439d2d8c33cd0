"""make bench: controllers x tasks x targets x seeds -> test accuracy after full training of the pruned init.

    python -m benchmarks.run                    # the default suite (embedded digits data, no network)
    python -m benchmarks.run --suite tiny --controller my_lab.pruners:Mine   # does my controller plug in?
    python -m benchmarks.run --suite mnist      # see benchmarks/suites.py for the suites and the protocol
    python -m benchmarks.run --suite mnist --tasks lenet300-mnist --sparsities 0.95 0.98   # a part of one

Stage 1 gets every cell's plan; stage 2 trains each pruned initialization with the task's full schedule in worker
processes. Both stages write JSONL records atomically (``<suite>_plans.jsonl``, ``<suite>.jsonl``): an
interrupted run resumes and skips finished work (each full training is also appended to the ground-truth store
``<out>/ground_truth.jsonl``, ``benchmarks.ground_truth``); every record carries the settings its numbers depend on
(``cell_settings``: budgets, schedules, controller options, device, versions, and the hash of the code that computes
them: this project's packages and an outside controller's module) and their fingerprint. A resume under other
settings refuses with what changed (``--fresh`` starts the suite again); where only the code changed (an edited
controller), the cells it computed are computed again and the others reused. Learners' and searchers'
plans read at ``CHECKPOINTS`` of their budget are trained too (sample efficiency), and each cell's best new plan
is a candidate for the best known plans (``benchmarks.best_known``: the run's own ``best_known.jsonl`` over the
committed reference, which only ``python -m benchmarks.promote`` changes). At the end the report (``<suite>.md``: the
table with intervals, the paired differences, the rliable aggregate of ``benchmarks.aggregate``, the sample
efficiency) and the plots are rebuilt from the records (``write_report``).

The protocol is a product of what the registered controllers declare (``agents.base.Declaration``, read before
anything is built), not of names or signatures: a learner is built once per (task, seed), trains over the suite's
target range with ``episodes_per_seed`` reward evaluations and then acts on every target; a searcher is built once
per cell and searches it with ``search_episodes_per_cell`` (on the cell's evaluation pool when it accepts one); a
heuristic is built once per cell and acts; a reference (a fixed target, ``agents.base.fixed_target``: the dense row)
is built and evaluated once per (task, seed), at that target.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro

import agents
from agents.base import (
    Controller,
    controller_kind,
    declaration_of,
    describe_factory,
    fixed_target,
    has_update_probe,
    kind_of,
)
from benchmarks.aggregate import (
    aggregate_caption,
    aggregate_table,
    best_heuristic,
    save_profile,
    score_matrices,
)
from benchmarks.best_known import REFERENCE, BestKnown, schedule_of
from benchmarks.cells import cell_env, plan_of, run_finals
from benchmarks.ground_truth import GroundTruth
from benchmarks.outside import controller_source, register_outside
from benchmarks.progress import Progress
from benchmarks.promote import reference_folder
from benchmarks.provenance import code_fingerprint, versions
from benchmarks.records import fingerprint, read_records
from benchmarks.report import (
    caption,
    effective_sparsity_table,
    efficiency_table,
    markdown_table,
    paired_table,
    recorded_kinds,
    rows_table,
    save_efficiency_plot,
    save_plot,
    weight_sparsity_table,
)
from benchmarks.study import RUN_OPTIONS, StudyArgs, open_record_files, publish
from benchmarks.suites import (
    CHECKPOINTS,
    DEFAULT_SUITE,
    STUDY_SUITES,
    Suite,
    as_recorded,
    get_suite,
    suite_names,
)
from pruning_env.device import resolve_device
from pruning_env.parallel import PruningEnv
from pruning_env.pools import EvaluationPool, make_pool
from pruning_env.registry import get_task

CELL_KEY = ("task", "controller", "target_sparsity", "seed")
CHECKPOINT_KEY = (*CELL_KEY, "budget_fraction")
CANDIDATE_KEY = ("task", "target_sparsity", "seed", "plan", "train_seed")
BENCH_CODE: tuple[str, ...] = ("benchmarks/run.py", "benchmarks/cells.py", "benchmarks/final_accuracy.py")
"""The benchmark modules that make a cell's plan and train it (hashed with the packages into every cell's settings)."""


@dataclass
class Args(StudyArgs):
    """``make bench``'s options: the study options (``benchmarks.study.StudyArgs``: out, workers, progress, fresh,
    report_only) and the suite's."""

    suite: str = DEFAULT_SUITE
    """Suite (``benchmarks.suites``): default (``make bench``: short, then short_trained), short (mlp-digits at
    0.995 at initialization, 5 seeds, 48 evaluations), short_trained (cnn-digits-trained at 0.8 zero-shot, 5 seeds,
    600 one-forward-pass evaluations), quick (mlp-digits at 0.98 and 0.99, 5 seeds, 200 evaluations, 44 min), tiny
    (does a controller plug in: plumbing, not ranking; about 1 min), flops (cnn-digits under a FLOPs budget), mnist
    (real MNIST: LeNet-300-100, LeNet-5), cifar (ResNet-20, VGG-19; a GPU's work), posttrain and posttrain_mnist
    (trained networks pruned one-shot: the digits networks, the MNIST LeNets), benchmarl (BenchMARL's MAPPO, IPPO, IQL
    beside ours), generalize (zero-shot on unseen networks: ``benchmarks.studies.generalize``, which takes ``--seeds``
    as its held-out init seeds and ``--sparsities`` as its targets)."""
    workers: int | None = None
    """Processes for the final trainings and the searchers' rewards (default: the CPU cores this process may use);
    the numbers are the same for any count."""
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
    best_known: Path | None = None
    """The run's best known plans (``benchmarks.best_known``; default ``<out>/best_known.jsonl``), read over the
    committed reference for the regrets and updated when the run finds better; the reference itself changes only
    with ``python -m benchmarks.promote``."""
    controller: tuple[str, ...] = ()
    """Your own controllers, ``package.module:factory`` (``benchmarks.outside``), added to the suite's rows."""
    train_checkpoints: bool | None = None
    """Fully train the plans at 25% and 50% of the budget (the sample-efficiency table; the suite's choice when
    omitted: all but the default suite do); ``--train-checkpoints False`` records them untrained, to save two full
    trainings per learner and searcher cell where trainings are costly."""


FRESH_HINT = ("start this suite again with --fresh (make bench FRESH=1), which deletes its records in the results "
              "folder, or write to another folder with --out")


def cell_settings(suite: Suite, task: str, controller: str, device: str) -> dict[str, Any]:
    """Everything a cell's numbers depend on besides its key: the suite's budgets and schedules, the task, the
    controller and its options, the device, the versions, and the code (``code.package``: this project's packages
    and ``BENCH_CODE``; ``code.controller``: an outside controller's module, None for ours)."""
    spec = get_task(task)
    return {
        "suite": {"name": suite.name, "sparsities": list(suite.sparsities),
                  "episodes_per_seed": suite.episodes_per_seed, "reward": suite.reward,
                  "reward_steps": suite.reward_steps, "final_steps": suite.final_steps},
        "task": {"model": str(spec.model), "dataset": spec.dataset, "scorer": spec.scorer, "proxies": list(spec.proxies),
                 "reward_train": asdict(spec.reward_train), "final_train": asdict(spec.final_train),
                 **({"finetune": asdict(spec.evaluation_train)} if spec.prune_at == "trained" else {})},
        "controller": controller, "factory": describe_factory(agents.CONTROLLERS[controller]),
        "options": dict(suite.options.get(controller, {})), "device": device,
        "versions": versions(),
        "code": {"package": code_fingerprint(*BENCH_CODE), "controller": controller_source(controller)},
    }


def recorded_settings(suite: Suite, record: dict[str, Any], device: str) -> dict[str, Any]:
    """The settings a stored record's cell has now (``cell_settings``), its keys spelled as the record spells them
    (``benchmarks.suites.as_recorded``: a record written before a key was renamed reads without a refusal); a
    controller the suite no longer has (e.g. an outside controller of an earlier run) keeps the record's own."""
    recorded = record.get("settings", {})
    if record["controller"] not in suite.controllers:
        return recorded
    return as_recorded(cell_settings(suite, record["task"], record["controller"], device), recorded)


@functools.lru_cache(maxsize=16)
def _shared_env(task: str, target: float | tuple[float, float], seed: int, reward: str, reward_steps: int | None,
                device: str) -> PruningEnv:
    return cell_env(task, target, seed, reward, reward_steps, device)


def shared_cell_env(suite: Suite, task: str, target: float | tuple[float, float], seed: int, device: str) -> PruningEnv:
    """The env a controller sees for one task and target (or target range) with the suite's reward
    (``benchmarks.cells.cell_env``), kept for every controller of one cell: the seed's instance is scored once."""
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

    def probe(self, controller: Controller | Callable[..., Any]) -> dict[str, Any]:
        """``{"on_update": self}`` when the controller (an object or its factory) declares ``accepts_on_update``
        (ours do, except BenchMARL's; without it its plans are read at the end of its budget only)."""
        return {"on_update": self} if has_update_probe(controller) else {}


def group_plans(suite: Suite, task: str, seed: int, controllers: list[str], device: str,
                starting: Callable[[str], None] = lambda name: None) -> Iterator[dict[str, Any]]:
    """Plan records of ``controllers`` for every target of one (task, seed), and of each learner's and searcher's
    checkpoints (records with ``budget_fraction`` and ``spent``). Every record names the controller's ``kind``
    (``agents.base.KINDS``) and whether it accepts the ``on_update`` probe (``probe``), as it declares them
    (``agents.base.declaration_of``), and its reward ``evaluations`` for the cell. ``starting(name)`` is called as
    each controller starts."""
    with CellPools(suite, task, seed, device) as pools:
        yield from _group_plans(suite, task, seed, controllers, device, starting, pools)


def _group_plans(suite: Suite, task: str, seed: int, controllers: list[str], device: str,
                 starting: Callable[[str], None], pools: CellPools) -> Iterator[dict[str, Any]]:
    for name in controllers:
        starting(name)
        declared = declaration_of(agents.CONTROLLERS[name])
        if declared.kind == "learner":
            plans = learned_plans(suite, name, task, seed, device)
        elif declared.kind == "searcher":
            plans = searched_plans(suite, name, task, seed, device, pools)
        else:
            plans = acted_plans(suite, name, task, seed, device)
        for plan in plans:
            yield {**plan, "kind": declared.kind, "probe": declared.accepts_on_update}


def acted_plans(suite: Suite, name: str, task: str, seed: int, device: str) -> Iterator[dict[str, Any]]:
    """A heuristic's or a reference's plan records: built on each cell's env (``cell_targets``) and acting there."""
    for target in cell_targets(suite, name):
        start = time.perf_counter()
        env = shared_cell_env(suite, task, target, seed, device)
        plan = plan_of(controller_for(suite, name, env, seed), env, seed)
        yield {**record(name, target, plan, time.perf_counter() - start), "evaluations": 0}


def learned_plans(suite: Suite, name: str, task: str, seed: int, device: str) -> Iterator[dict[str, Any]]:
    """A learner's plan records: built once for the (task, seed), trained over the suite's target range, then acting
    on every target; and its plans at the ``CHECKPOINTS`` of its budget when it accepts ``on_update``."""
    start = time.perf_counter()
    target_range = (min(suite.sparsities), max(suite.sparsities))
    learner = controller_for(suite, name, shared_cell_env(suite, task, target_range, seed, device), seed)
    make_env = functools.partial(cell_env, task, target_range, seed, suite.reward, suite.reward_steps, device)  # a new env per call
    checkpoints = Checkpoints(suite.episodes_per_seed, lambda: {
        target: plan_of(learner, shared_cell_env(suite, task, target, seed, device), seed)
        for target in suite.sparsities})
    learner.train(make_env, suite.episodes_per_seed, seed, **checkpoints.probe(agents.CONTROLLERS[name]))
    for fraction, (spent, plans) in checkpoints.plans.items():
        for target, plan in plans.items():
            yield {**record(name, target, plan, 0.0), "budget_fraction": fraction, "spent": spent}
    train_seconds = time.perf_counter() - start
    for target in suite.sparsities:
        start = time.perf_counter()
        plan = plan_of(learner, shared_cell_env(suite, task, target, seed, device), seed)
        yield {**record(name, target, plan, time.perf_counter() - start + train_seconds / len(suite.sparsities)),
               "evaluations": suite.episodes_per_seed}


def searched_plans(suite: Suite, name: str, task: str, seed: int, device: str,
                   pools: CellPools) -> Iterator[dict[str, Any]]:
    """A searcher's plan records on every cell (``search_plan``), each after its plans at the ``CHECKPOINTS``."""
    for target in suite.sparsities:
        start = time.perf_counter()
        plan, checkpoint_plans = search_plan(suite, name, task, target, seed, device, pools)
        for fraction, (spent, early) in checkpoint_plans.items():
            yield {**record(name, target, early, 0.0), "budget_fraction": fraction, "spent": spent}
        yield {**record(name, target, plan, time.perf_counter() - start), "evaluations": suite.search_episodes_per_cell}


class CellPools:
    """The searchers' evaluation pools of one (task, seed): one per target on ``suite.workers`` processes, opened
    at first use and shared by every searcher of that cell (a pool's rewards do not depend on what it evaluated
    before: ``tests/test_bench.py``), closed together; a context manager."""

    def __init__(self, suite: Suite, task: str, seed: int, device: str) -> None:
        self.suite, self.task, self.seed, self.device = suite, task, seed, device
        self.stack = contextlib.ExitStack()
        self.pools: dict[float, EvaluationPool] = {}

    def __call__(self, target: float) -> EvaluationPool:
        if target not in self.pools:
            source = functools.partial(cell_env, self.task, target, self.seed, self.suite.reward, self.suite.reward_steps,
                                           self.device)
            self.pools[target] = self.stack.enter_context(make_pool([source], self.suite.workers))
        return self.pools[target]

    def __enter__(self) -> CellPools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()


def search_plan(suite: Suite, name: str, task: str, target: float, seed: int, device: str,
                pools: CellPools | None = None) -> tuple[np.ndarray, dict[float, tuple[int, np.ndarray]]]:
    """A searcher's best plan after ``search_episodes_per_cell`` evaluations on one cell, and its best plans at
    the ``CHECKPOINTS`` (fraction -> (spent, plan)); a searcher that declares ``accepts_pool`` (ours) is built on,
    and evaluates on, the cell's pool of ``pools`` (one of its own when None; ``suite.workers`` processes, the same
    rewards as in this process), any other on the cell's env. One whose ``budget_unit`` is ``"compute"`` gets the
    same budget in sample-steps (``search_compute``)."""
    env = shared_cell_env(suite, task, target, seed, device)
    factory = agents.CONTROLLERS[name]
    declared = declaration_of(factory)
    budget = search_compute(suite, env) if declared.budget_unit == "compute" else suite.search_episodes_per_cell
    with contextlib.ExitStack() as stack:
        if declared.accepts_pool:
            pool = (pools or stack.enter_context(CellPools(suite, task, seed, device)))(target)
            searcher = agents.make_controller(name, None, seed=seed, pool=pool, **suite.options.get(name, {}))
        else:
            searcher = controller_for(suite, name, env, seed)
        checkpoints = Checkpoints(budget, lambda: plan_of(searcher, env, seed))
        searcher.search(budget, seed, **checkpoints.probe(factory))
        return plan_of(searcher, env, seed), checkpoints.plans


def search_compute(suite: Suite, env: PruningEnv) -> int:
    """A searcher's budget on one cell in sample-steps (``pruning_env.fidelity``): its ``search_episodes_per_cell``
    times the cost of one evaluation at the env's fidelity (the suite's reward)."""
    return suite.search_episodes_per_cell * env.cost_of(env.config.fidelity)


def record(controller: str, target: float, plan: Any, seconds: float) -> dict[str, Any]:
    return {"controller": controller, "target_sparsity": target, "requested": plan.tolist(), "plan_seconds": seconds}


def cell_targets(suite: Suite, name: str) -> list[float]:
    """The targets ``name`` is evaluated at: its own fixed target, or the suite's."""
    own = fixed_target(name)
    return [own] if own is not None else list(suite.sparsities)


@dataclass(frozen=True)
class RunCost:
    """A suite run's compute in masked training steps, the progress bar's unit: a reward evaluation costs K steps,
    a full training its schedule's steps, a heuristic's plan nothing."""

    suite: Suite
    train_checkpoints: bool

    def reward_steps(self, task: str) -> int:
        return self.suite.reward_steps or get_task(task).reward_train.steps

    def train_steps(self, task: str) -> int:
        return self.suite.final_steps or get_task(task).evaluation_train.steps

    def plan(self, record: dict[str, Any]) -> float:
        """The steps a plan record's cell cost (a learner's training is shared by its targets)."""
        kind = record.get("kind") or kind_of(record["controller"])
        share = len(self.suite.sparsities) if kind == "learner" else 1
        return record.get("evaluations", 0) * self.reward_steps(record["task"]) / share

    def train(self, record: dict[str, Any]) -> float:
        return float(self.train_steps(record["task"]))

    def total(self) -> tuple[float, int]:
        """(steps, cells) of the whole run before the best-plan candidates (known only after the trainings)."""
        steps, cells = 0.0, 0
        for task in self.suite.tasks:
            for name in self.suite.controllers:
                kind = controller_kind(agents.CONTROLLERS[name])
                targets = len(cell_targets(self.suite, name))
                evaluations = {"learner": self.suite.episodes_per_seed / targets,
                               "searcher": self.suite.search_episodes_per_cell}.get(kind, 0)
                trainings = targets * (1 + len(CHECKPOINTS) * (kind in ("learner", "searcher") and self.train_checkpoints))
                steps += len(self.suite.seeds) * (targets * evaluations * self.reward_steps(task)
                                                  + trainings * self.train_steps(task))
                cells += len(self.suite.seeds) * trainings
        return steps, cells


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
    files = [(out / f"{suite.name}{suffix}.jsonl", key) for suffix, key in (
        ("_plans", CELL_KEY), ("", CELL_KEY), ("_checkpoint_plans", CHECKPOINT_KEY), ("_checkpoints", CHECKPOINT_KEY))]
    plans, cells, early_plans, early = open_record_files(files, fresh,
                                                         functools.partial(recorded_settings, suite, device=device),
                                                         FRESH_HINT)
    candidates, = open_record_files([(out / f"{suite.name}_candidates.jsonl", CANDIDATE_KEY)], fresh)
    package = code_fingerprint(*BENCH_CODE)
    candidates.discard(lambda record: record.get("code") != package)
    cost = RunCost(suite, train_checkpoints)
    bar = Progress(*cost.total(), progress, desc=f"bench {suite.name}")
    finished = [*cells.records, *(early.records if train_checkpoints else [])]
    bar.advance(sum(map(cost.plan, plans.records)) + sum(map(cost.train, finished)), cells=len(finished))
    for task in suite.tasks:
        for seed in suite.seeds:
            missing = [
                c for c in suite.controllers if any((task, c, t, seed) not in plans for t in cell_targets(suite, c))
            ]
            for plan in group_plans(suite, task, seed, missing, device,
                                    lambda name, t=task, s=seed: bar.phase(f"plans: {name} on {t} seed {s}")):
                settings = cell_settings(suite, task, plan["controller"], device)
                plan.update(task=task, seed=seed, settings=settings, fingerprint=fingerprint(settings))
                target = early_plans if "budget_fraction" in plan else plans
                if target.key(plan) not in target:
                    target.add(plan)
                    bar.advance(cost.plan(plan) if target is plans else 0)
    bar.phase("full trainings of the plans")
    train = functools.partial(run_finals, workers=suite.workers, final_steps=suite.final_steps, device=device,
                              done=lambda plan: bar.advance(cost.train(plan), cells=1),
                              store=GroundTruth(out / "ground_truth.jsonl"), source=f"bench:{suite.name}", code=package)
    train([p for p in plans.records if plans.key(p) not in cells], cells, suite=suite.name)
    if train_checkpoints:
        bar.phase("full trainings of the checkpoint plans")
        train([p for p in early_plans.records if early_plans.key(p) not in early], early, suite=suite.name)
    best = BestKnown(best_known or out / "best_known.jsonl", base=REFERENCE)
    schedules = {task: schedule_of(task, suite.final_steps) for task in suite.tasks}
    todo = [{**c, "plan": fingerprint({"requested": c["requested"]})}
            for c in best.candidates([*cells.records, *early.records], schedules)]
    todo = [c for c in todo if candidates.key(c) not in candidates]
    bar.grow(sum(map(cost.train, todo)), cells=len(todo))
    bar.phase("best-plan candidates (3 training seeds each)")
    train(todo, candidates, code=package)
    bar.close()
    best.update(candidates.records, schedules)
    return write_report(suite, out, device, time.perf_counter() - start, best)


def zero_shot_oracle(out: Path) -> dict[tuple[str, float, int], float]:
    """(task, target, seed) -> the zero-shot test accuracy (%) of the oracle plan of the zero-shot oracle study
    (``benchmarks.studies.oracle --zero-shot``), from the committed reference's cells and then ``out``'s."""
    cells = [*read_records(reference_folder("oracle") / "oracle_zero_shot.jsonl"),
             *read_records(out / "oracle_zero_shot.jsonl")]
    return {(c["task"], c["target_sparsity"], c["seed"]): 100 * c["readings"]["oracle"]["test_accuracy"] for c in cells}


def write_report(suite: Suite, out: Path, device: str, seconds: float, best: BestKnown) -> str:
    """Rebuild the suite's report from its records in ``out`` and the best known plans: ``<suite>.md`` (the
    table, the rows' kinds and budgets, the paired differences, the rliable aggregate, the sample efficiency) and
    the plots; returns the text."""
    cells = read_records(out / f"{suite.name}.jsonl")
    early = read_records(out / f"{suite.name}_checkpoints.jsonl")
    kinds = recorded_kinds(cells)
    scores, regrets = score_matrices(suite, cells, best)
    report = aggregate_table(scores, regrets, best_heuristic(scores, kinds), kinds=kinds)
    cell_count = next(iter(scores.values())).shape[1] if scores else 0
    zero_shot = "" if not any("zero_shot_test_accuracy" in cell for cell in cells) else (
        markdown_table(suite, cells, "zero_shot_test_accuracy", ": zero-shot (no fine-tuning)") + "\n"
        + paired_table(suite, cells, kinds, "zero_shot_test_accuracy", " zero-shot", zero_shot_oracle(out)) + "\n")
    text = (markdown_table(suite, cells) + "\n" + caption(suite, device, seconds, kinds) + "\n\n" + zero_shot
            + effective_sparsity_table(suite, cells) + "\n" + rows_table(suite, cells) + "\n"
            + paired_table(suite, cells, kinds) + "\n" + weight_sparsity_table(suite, cells) + "\n" + report + "\n" + aggregate_caption(suite, cell_count) + "\n"
            + efficiency_table(suite, cells, early))
    publish(out, suite.name, text, lambda path: save_plot(suite, cells, path))
    if scores:
        save_profile(scores, out / f"{suite.name}_profile.png", f"{suite.name}: performance profile")
    save_efficiency_plot(suite, cells, early, out / f"{suite.name}_efficiency.png")
    return text


def previous_wall_time(report: Path) -> float:
    """The wall time (s) the report at ``report`` states for the run that computed its records (NaN without)."""
    found = re.search(r"wall time ([0-9.]+) min", report.read_text()) if report.exists() else None
    return 60 * float(found.group(1)) if found else float("nan")


def study_suite_args(args: Args) -> Any:
    """The ``Args`` of the study that runs the suite ``args.suite`` (``benchmarks.suites.STUDY_SUITES``), given
    the runner's options; SystemExit naming the options that study does not take."""
    module_name, renamed = STUDY_SUITES[args.suite]
    study = importlib.import_module(module_name)
    defaults = Args()
    given = {name: getattr(args, name) for name in Args.__dataclass_fields__ if name != "suite"
             and (name in RUN_OPTIONS or getattr(args, name) != getattr(defaults, name))}  # what the user set
    fields = {renamed.get(name, name): value for name, value in given.items() if value is not None}
    known = set(study.Args.__dataclass_fields__)
    refused = sorted(name for name in fields if name not in known)
    if refused:
        runner_name = {new: old for old, new in renamed.items()}
        flags = ", ".join("--" + runner_name.get(name, name).replace("_", "-") for name in refused)
        raise SystemExit(f"the {args.suite} suite ({module_name}) takes no {flags}")
    return study.Args(**fields)


def main(args: Args) -> None:
    torch.set_num_threads(1)  # the final trainings run in worker processes beside this one: no oversubscription
    if args.suite in STUDY_SUITES:
        importlib.import_module(STUDY_SUITES[args.suite][0]).main(study_suite_args(args))
        return
    names = suite_names(args.suite)
    if len(names) > 1 and (args.tasks is not None or args.sparsities is not None):
        raise SystemExit(f"--tasks and --sparsities change one suite's cells; {args.suite!r} runs the suites "
                         f"{', '.join(names)}: name one of them (--suite {names[0]})")
    suites = [get_suite(name) for name in names]
    unknown = sorted(set(args.only) - {c for suite in suites for c in suite.controllers})
    if unknown:
        raise ValueError(f"--only names controllers the suite {args.suite!r} does not have: {', '.join(unknown)}")
    for suite in suites:
        run_one(args, suite)


def run_one(args: Args, suite: Suite) -> None:
    """Run one suite (``main``'s options applied to it) and print its report; a suite left without rows by
    ``--only`` is skipped."""
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
        overrides["controllers"] = tuple(c for c in suite.controllers if c in args.only)
        if not overrides["controllers"]:
            return
    suite = replace(suite, **overrides)
    device = str(resolve_device(args.device))
    if args.controller:
        env = shared_cell_env(suite, suite.tasks[0], suite.sparsities[0], suite.seeds[0], device)
        names = [register_outside(path, env) for path in args.controller]
        suite = replace(suite, controllers=(*suite.controllers, *(n for n in names if n not in suite.controllers)))
    if args.report_only:
        best = BestKnown(args.best_known or args.out / "best_known.jsonl", base=REFERENCE)
        print(write_report(suite, args.out, device, previous_wall_time(args.out / f"{suite.name}.md"), best))
        return
    start = time.perf_counter()
    train_checkpoints = suite.train_checkpoints if args.train_checkpoints is None else args.train_checkpoints
    print(run_suite(suite, args.out, device, args.progress, args.fresh, args.best_known, train_checkpoints))
    print(f"total time {time.perf_counter() - start:.0f} s; results in {args.out}/{suite.name}.{{jsonl,md,png}}")


if __name__ == "__main__":
    main(tyro.cli(Args))
