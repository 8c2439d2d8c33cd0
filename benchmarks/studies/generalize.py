"""make bench SUITE=generalize: does one trained controller prune unseen networks better than the heuristics?

Protocol (zero-shot generalization). A learning controller trains once on the TRAINING members of an
architecture family (``pruning_env.families``): every episode draws a member, a new initialization and a target
from ``Recipe.target_range`` (``agents.pretrained.Recipe``). It is then evaluated, with no further reward
evaluation, on cells it has never seen:

- ``heldout-arch``: the family's held-out members (drawn by the family's seed, not picked), at every target;
- ``heldout-init``: the first training members on held-out initializations (init seeds 1000+, never drawn in
  training), at every target. Targets outside the training range (0.995 > 0.99) test extrapolation.

Each plan prunes the seeded initialization; the pruned network is trained with the family's full schedule and
its test accuracy is reported, mean ± std over members and init seeds. The heuristics are zero-shot by nature;
random search spends ``search_episodes`` reward evaluations on EACH cell (the per-instance protocol), so its cost
is reported beside the learners' one-off training cost. Learner training seed i is paired with init seed i.

    python -m benchmarks.studies.generalize                      # digits family: ~40 min on 2 cores
    python -m benchmarks.studies.generalize --learners mappo --train-seeds 0   # a shorter run
    make bench SUITE=generalize SEEDS="1000" CONTROLLER=my_lab.pruners:Mine     # the runner's way: your row added

Your own controllers (``--controller package.module:factory``, ``benchmarks.outside``) are rows beside ours: a
heuristic acts on every cell zero-shot, a searcher searches each cell with ``search_episodes``; a learner is
refused (the family's learners are trained with ``agents.pretrained.Recipe``, which is MAPPO's). Editing your
controller's module computes its rows again.

Records (``generalize_plans.jsonl``, ``generalize.jsonl``) resume like ``make bench``; trained controllers are
kept in ``generalize_controllers/``. The table goes to ``generalize.md``, the plot to ``generalize.png``
(``--report-only`` rebuilds both from the records).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro
from tqdm import tqdm

import agents
from agents.base import declaration_of, fixed_target
from agents.mappo.controller import MappoController
from agents.pretrained import PRETRAINED_FILE, Recipe, train_on_family
from benchmarks.cells import cell_env, plan_of, run_finals
from benchmarks.outside import controller_source, load_factory, register_outside
from benchmarks.plots import Panel, Series, save_lines
from benchmarks.provenance import code_fingerprint, versions
from benchmarks.records import RecordFile
from benchmarks.run import CELL_KEY
from benchmarks.study import StudyArgs, open_records, publish, run_options, stamped
from benchmarks.suites import HEURISTICS
from pruning_env.device import resolve_device
from pruning_env.families import family_tasks
from pruning_env.files import write_atomic

PRETRAINED = "pretrained"
DENSE = "dense"
SEARCH = "random_search"
"""Rows the report treats apart: the unpruned reference, and the per-cell searcher whose cost is per network."""
ZERO_SHOT_HEURISTICS = tuple(name for name in HEURISTICS if name != "random")


@dataclass
class Args(StudyArgs):
    """The study's options; ``workers`` run the learners' episodes and the final trainings, ``--fresh`` keeps the
    trained controllers."""

    family: str = "digits"
    """Architecture family (pruning_env.families)."""
    learners: tuple[str, ...] = ("mappo", "mappo_ar")
    """MAPPO variants trained on the family (one run per training seed)."""
    train_seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of the learners' training runs."""
    eval_seeds: tuple[int, ...] = (1000, 1001, 1002)
    """Initialization seeds of the evaluated networks (held out: training draws its own)."""
    targets: tuple[float, ...] = (0.98, 0.99, 0.995)
    """Evaluation targets; those outside the recipe's training range test extrapolation."""
    heldout_init_members: int = 2
    """Training members also evaluated on held-out initializations."""
    episodes: int | None = None
    """Training episodes per learner run (None: the recipe's)."""
    search_episodes: int = 16
    """Random search's reward evaluations per cell."""
    reward_steps: int | None = None
    """K of the training and search reward (None: the family's; smaller only for tests)."""
    final_steps: int | None = None
    """Override of the full training's steps (None: the family's schedule; smaller only for tests)."""
    pretrained: Path | None = PRETRAINED_FILE
    """The shipped controller evaluated as "pretrained" (None: leave that row out)."""
    device: str = "auto"
    """"auto" (CUDA when present), "cpu" or "cuda"."""
    controller: tuple[str, ...] = ()
    """Your own controllers, ``package.module:factory``: heuristics and searchers, added to the rows."""

    def settings(self, controller: str, device: str) -> dict[str, Any]:
        """What a record's numbers depend on: the options below (not where or how fast it runs; not which outside
        controllers run), the controller, the device, the hash of the code (``benchmarks.provenance.code_fingerprint``,
        with an outside controller's module's after a "+") and the versions."""
        source = controller_source(controller)
        code = code_fingerprint() + (f"+{source}" if source else "")
        return {**run_options(self, leave_out=("device", "controller")), "controller": controller, "device": device,
                "code": code, "versions": versions()}

    @property
    def outside(self) -> tuple[str, ...]:
        """The row names of ``controller`` (``benchmarks.outside.load_factory``)."""
        return tuple(load_factory(path)[0] for path in self.controller)

    def recipe(self, learner: str) -> Recipe:
        base = Recipe()
        mappo = replace(base.mappo, autoregressive=learner == "mappo_ar", workers=self.workers)
        return replace(base, family=self.family, episodes=base.episodes if self.episodes is None else self.episodes,
                       reward_steps=self.reward_steps, mappo=mappo)

    @property
    def controllers(self) -> tuple[str, ...]:
        return (DENSE, *ZERO_SHOT_HEURISTICS, SEARCH, *((PRETRAINED,) if self.pretrained else ()), *self.learners,
                *self.outside)


@dataclass(frozen=True)
class Cell:
    """One evaluated network: a family member, a target, an init seed, and which held-out split it belongs to."""

    split: str
    task: str
    target_sparsity: float
    seed: int


def cells_of(args: Args) -> list[Cell]:
    held_out = [task.name for task in family_tasks(args.family, "heldout")]
    seen = [task.name for task in family_tasks(args.family, "train")[: args.heldout_init_members]]
    return [
        Cell(split, task, target, seed)
        for split, tasks in (("heldout-arch", held_out), ("heldout-init", seen))
        for task in tasks for target in args.targets for seed in args.eval_seeds
    ]


# --- stage 0: the learners ------------------------------------------------------------------------------------
def trained_learners(args: Args) -> dict[tuple[str, int], MappoController]:
    """(learner, training seed) -> controller, trained now or loaded from ``generalize_controllers/``."""
    folder = args.out / "generalize_controllers"
    folder.mkdir(parents=True, exist_ok=True)
    learners = {}
    for learner in args.learners:
        for seed in args.train_seeds:
            path = folder / f"{learner}_s{seed}.pt"
            if not path.exists():
                print(f"training {learner} seed {seed} on the {args.family} family's training members")
                controller, report = train_on_family(args.recipe(learner), seed)
                controller.save(path)
                cost = {"episodes": report.episodes, "seconds": report.seconds}
                write_atomic(path.with_suffix(".json"), json.dumps(cost) + "\n")
            learners[(learner, seed)] = MappoController.load(path)
    return learners


def training_cost(args: Args, learner: str) -> tuple[float, float]:
    """Mean (episodes, wall seconds) of a learner's training runs (the shipped controller's from its record)."""
    if learner == PRETRAINED:
        assert args.pretrained is not None
        record = json.loads(args.pretrained.with_suffix(".json").read_text())
        return record["episodes"], record["seconds"]
    folder = args.out / "generalize_controllers"
    runs = [json.loads((folder / f"{learner}_s{seed}.json").read_text()) for seed in args.train_seeds]
    return float(np.mean([r["episodes"] for r in runs])), float(np.mean([r["seconds"] for r in runs]))


# --- stage 1: plans -------------------------------------------------------------------------------------------
def cell_plans(args: Args, cell: Cell, names: Sequence[str], learners: dict[tuple[str, int], MappoController],
               device: str) -> list[dict[str, Any]]:
    """Plan records of ``names`` on one cell: trained learners act, searchers search the cell first, a
    controller with a fixed target (dense) acts at that target."""
    env = cell_env(cell.task, cell.target_sparsity, cell.seed, "neg_loss", args.reward_steps, device)
    options = {SEARCH: {"progress": False}, PRETRAINED: {"path": args.pretrained}}
    records = []
    for name in names:
        start = time.perf_counter()
        record: dict[str, Any] = {"controller": name, "task": cell.task, "target_sparsity": cell.target_sparsity,
                                  "seed": cell.seed, "split": cell.split}
        if name in args.learners:
            train_seed = args.train_seeds[args.eval_seeds.index(cell.seed) % len(args.train_seeds)]
            controller: Any = learners[(name, train_seed)]
            record["train_seed"] = train_seed
        else:
            controller = agents.make_controller(name, env, seed=cell.seed, **options.get(name, {}))
            if declaration_of(controller).kind == "searcher":
                controller.search(args.search_episodes, cell.seed)
        target = fixed_target(controller)
        acting_env = env if target is None else cell_env(cell.task, target, cell.seed, "neg_loss", None, device)
        plan = plan_of(controller, acting_env, cell.seed)
        records.append({**record, "target_sparsity": cell.target_sparsity if target is None else target,
                        "requested": plan.tolist(), "plan_seconds": time.perf_counter() - start})
    return records


def run(args: Args) -> str:
    """Run (or resume) the generalization benchmark, or with ``report_only`` only rebuild its report from the
    records (on the device they were computed on); returns the Markdown report."""
    start = time.perf_counter()
    device = str(resolve_device(args.device))
    register_controllers(args, device)
    plans, results = open_records(
        args, [(args.out / "generalize_plans.jsonl", CELL_KEY), (args.out / "generalize.jsonl", CELL_KEY)],
        lambda record: (args.settings(record["controller"], device) if record["controller"] in agents.CONTROLLERS
                        else record.get("settings", {})),  # an outside controller of an earlier run keeps its own
        "start again with --fresh (make bench SUITE=generalize FRESH=1) or write to another --out")
    if args.report_only:
        device = ", ".join(sorted({r["device"] for r in results.records})) or device
    else:
        compute(args, plans, results, device)
    return publish(args.out, "generalize", report(args, results.records, time.perf_counter() - start, device),
                   lambda path: save_plot(args, results.records, path))


def register_controllers(args: Args, device: str) -> None:
    """Register the outside controllers of ``args.controller`` (checked on the first cell's env).

    Raises:
        ValueError: for a learner (trained only by the family's recipe), or what ``register_outside`` refuses.
    """
    if not args.controller:
        return
    first = cells_of(args)[0]
    env = cell_env(first.task, first.target_sparsity, first.seed, "neg_loss", args.reward_steps, device)
    for path in args.controller:
        name = register_outside(path, env)
        if declaration_of(agents.CONTROLLERS[name]).kind == "learner":
            raise ValueError(f"the generalization suite runs your heuristics and searchers zero-shot; {path!r} is a "
                             "learner, and the family's learners are trained with agents.pretrained.Recipe (MAPPO's): "
                             "run your learner on a suite (make bench SUITE=tiny CONTROLLER=...)")


def compute(args: Args, plans: RecordFile, results: RecordFile, device: str) -> None:
    """Every missing plan and full training: the learners trained (or loaded) first."""
    learners = trained_learners(args)
    cells = cells_of(args)
    bar = tqdm(total=2 * len(cells) * len(args.controllers), desc="generalize (plans, then full trainings)",
               unit="step", disable=not args.progress)
    bar.update(len(plans.records) + len(results.records))
    for cell in cells:
        key = {name: (cell.task, name, 0.0 if name == DENSE else cell.target_sparsity, cell.seed) for name in args.controllers}
        missing = [name for name in args.controllers if key[name] not in plans]
        for record in cell_plans(args, cell, missing, learners, device):
            plans.add(stamped(record, args.settings(record["controller"], device)))
            bar.update(1)
    todo = [p for p in plans.records if plans.key(p) not in results]
    run_finals(todo, results, args.workers, args.final_steps, device, lambda _: bar.update(1), suite="generalize")
    bar.close()


# --- report ---------------------------------------------------------------------------------------------------
def _by_cell(records: Sequence[dict[str, Any]]) -> dict[tuple[str, str, float], dict[tuple[str, int], float]]:
    """(controller, split, target) -> {(task, seed): test accuracy in %}; dense rows are copied to every target."""
    table: dict[tuple[str, str, float], dict[tuple[str, int], float]] = defaultdict(dict)
    targets = sorted({r["target_sparsity"] for r in records if r["controller"] != DENSE})
    for r in records:
        for target in targets if r["controller"] == DENSE else [r["target_sparsity"]]:
            table[(r["controller"], r["split"], target)][(r["task"], r["seed"])] = 100 * r["test_accuracy"]
    return table


def report(args: Args, records: Sequence[dict[str, Any]], seconds: float, device: str) -> str:
    """The main table (mean ± std per split and target), the paired comparison with the best heuristic, the
    per-network table of the held-out architectures and the costs."""
    table = _by_cell(records)
    splits = [s for s in ("heldout-arch", "heldout-init") if any(r["split"] == s for r in records)]
    columns = [(split, target) for split in splits for target in args.targets]
    train_low, train_high = args.recipe("mappo").target_range
    label = {c: f"{c[0]} {c[1]:g}" + ("" if train_low <= c[1] <= train_high else " (outside)") for c in columns}
    lines = [f"## Generalization on the {args.family} family (test accuracy %, mean ± std over networks x init seeds)",
             "", "| controller | " + " | ".join(label[c] for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    best_heuristic = {}
    for column in columns:
        means = {h: np.mean(list(table[(h, *column)].values())) for h in ZERO_SHOT_HEURISTICS if table[(h, *column)]}
        best_heuristic[column] = max(means, key=means.get) if means else None
    for name in args.controllers:
        row = []
        for column in columns:
            values = list(table[(name, *column)].values())
            text = f"{np.mean(values):.1f} ± {np.std(values):.1f}" if values else "–"
            row.append(f"**{text}**" if name == best_heuristic[column] else text)
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    lines += ["", "Bold: the best zero-shot heuristic of the column. Learners and random search against it, paired on "
              "the same networks (mean difference in points, wins / pairs):", "",
              "| controller | " + " | ".join(label[c] for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name in (SEARCH, *((PRETRAINED,) if args.pretrained else ()), *args.learners, *args.outside):
        row = []
        for column in columns:
            mine, theirs = table[(name, *column)], table[(best_heuristic[column], *column)]
            pairs = [(mine[k], theirs[k]) for k in mine if k in theirs]
            diffs = np.array([a - b for a, b in pairs])
            row.append(f"{diffs.mean():+.1f} ({int((diffs > 0).sum())}/{len(diffs)})" if len(diffs) else "–")
        lines.append(f"| {name} vs best | " + " | ".join(row) + " |")
    lines += _per_network(args, table) + _costs(args, records)
    lines += ["", f"Family {args.family}: training members {[t.name for t in family_tasks(args.family, 'train')]}; "
              f"training targets [{train_low:g}, {train_high:g}]; init seeds {list(args.eval_seeds)}; learner training "
              f"seeds {list(args.train_seeds)}; random search {args.search_episodes} evaluations per cell; device "
              f"{device}; {seconds / 60:.1f} min this run. Command: python -m benchmarks.studies.generalize."]
    return "\n".join(lines) + "\n"


def _per_network(args: Args, table: dict[tuple[str, str, float], dict[tuple[str, int], float]]) -> list[str]:
    tasks = [task.name for task in family_tasks(args.family, "heldout")]
    lines = []
    for target in args.targets:
        lines += ["", f"Held-out architectures at {target:g}, per network (mean over init seeds):", "",
                  "| controller | " + " | ".join(t.split("/", 1)[1] for t in tasks) + " |",
                  "|---" * (len(tasks) + 1) + "|"]
        for name in args.controllers:
            cells = table[(name, "heldout-arch", target)]
            row = [np.mean([v for (t, _), v in cells.items() if t == task] or [np.nan]) for task in tasks]
            lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in row) + " |")
    return lines


def _costs(args: Args, records: Sequence[dict[str, Any]]) -> list[str]:
    instances = len({(r["task"], r["target_sparsity"], r["seed"]) for r in records if r["controller"] == SEARCH})
    search = [r["plan_seconds"] for r in records if r["controller"] == SEARCH]
    lines = ["", "Cost of a plan (reward evaluations and wall time, this machine):", "",
             "| controller | training (once) | per new network |", "|---|---|---|"]
    for name in (*((PRETRAINED,) if args.pretrained else ()), *args.learners):
        episodes, seconds = training_cost(args, name)
        act = np.mean([r["plan_seconds"] for r in records if r["controller"] == name])
        lines.append(f"| {name} | {episodes:.0f} evaluations, {seconds / 60:.1f} min | 0 evaluations, {act:.2f} s |")
    if search:
        lines.append(f"| {SEARCH} | – | {args.search_episodes} evaluations, {np.mean(search):.1f} s "
                     f"({instances} networks: {sum(search) / 60:.1f} min) |")
    heuristic = [r["plan_seconds"] for r in records if r["controller"] in ZERO_SHOT_HEURISTICS]
    if heuristic:
        lines.append(f"| heuristics | – | 0 evaluations, {np.mean(heuristic):.2f} s |")
    return lines


def save_plot(args: Args, records: Sequence[dict[str, Any]], path: Path) -> None:
    """Test accuracy against target on each held-out architecture, one line per controller, ± std over the init
    seeds as error bars."""
    table = _by_cell(records)
    tasks = [task.name for task in family_tasks(args.family, "heldout")]
    panels = []
    for task in tasks:
        series = []
        for name in args.controllers:
            if name == DENSE:
                continue
            runs = [[v for (t, _), v in table[(name, "heldout-arch", s)].items() if t == task] for s in args.targets]
            series.append(Series(name, list(args.targets), [float(np.mean(r)) if r else np.nan for r in runs],
                                 yerr=[float(np.std(r)) if r else np.nan for r in runs]))
        panels.append(Panel(task.split("/", 1)[1], "target sparsity", "test accuracy (%)", series,
                            xticks=tuple(args.targets)))
    note = (f"Error bars: ± one standard deviation over init seeds {list(args.eval_seeds)} (learners: training seed "
            "paired with init seed). er and erk coincide on the MLPs (no kernels).")
    save_lines(path, panels, f"Zero-shot on held-out {args.family} architectures", legend_outside=True, note=note)


def main(args: Args) -> None:
    torch.set_num_threads(1)  # episodes and final trainings run in worker processes beside this one
    start = time.perf_counter()
    print(run(args))
    print(f"total time {time.perf_counter() - start:.0f} s; results in {args.out}/generalize.{{jsonl,md,png}}")


if __name__ == "__main__":
    main(tyro.cli(Args))
