"""Oracle plans on the ground truth: how much better than the best heuristic a plan can be, per benchmark cell.

    python -m benchmarks.studies.oracle --task mlp-digits --targets 0.99 --seeds 0 1 2 3 4     # search, hold out, report
    python -m benchmarks.studies.oracle --report-only                  # oracle.md and the plots from the stored trainings

For one cell (task, target, instance seed) the study
1. takes the best heuristic plans (``HEURISTICS``: global SNIP, LAMP, ERK) on the instance;
2. searches on the ground truth: a plan's score is its validation accuracy after the task's full training, mean
   over the training seeds ``SEARCH_SEEDS`` (ties broken by the validation loss, ``LOSS_TIE_BREAK``), never the
   test split. Two searches start from the heuristic with the best score: CMA-ES and an EvoPress-style search over
   discrete per-layer levels (``benchmarks.studies.oracle_search``); each stops after ``--evaluations`` plans or when its
   best score is flat for ``--patience`` plans. The oracle is the best plan either found;
3. trains the oracle and every heuristic with the held-out training seeds ``HELD_OUT_SEEDS`` (the best known plans'
   ``benchmarks.best_known.TRAIN_SEEDS``, disjoint from the search's) and reads the test split: the headroom of the
   instance is the oracle's mean test accuracy minus the best heuristic's (the heuristic best on that test mean:
   the headroom is not flattered by choosing it). The oracle is also a candidate best known plan of the cell, so
   every bench report's regret and normalised score use it where it beats the candidates;
4. after every instance of a (task, target): trains each instance's oracle plan on the other instances (transfer).

On a trained task, ``--zero-shot`` takes the pruned trained network as it is (no fine-tuning) for the ground truth:
a plan's score is its validation accuracy read zero-shot (one forward pass: ``--evaluations`` can be thousands),
the headroom is on the zero-shot test accuracy, and the cells go to ``oracle_zero_shot.jsonl`` with their readings
(no transfer: step 4 is for the trainings).

    python -m benchmarks.studies.oracle --task cnn-digits-trained --targets 0.8 --zero-shot --evaluations 1200 --patience 400

Every full training goes to the ground-truth store (``benchmarks.ground_truth``, ``<out>/ground_truth.jsonl`` over
the committed reference's): a rerun, a resumed or an extended study trains only what is not stored (the searches
are deterministic, so they replay from the store). The report (``oracle.md``: headroom, validation against test
gain, transfer; ``oracle_convergence.png``) is built from the cell records and the store alone.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tyro

from benchmarks.best_known import REFERENCE as BEST_KNOWN_REFERENCE
from benchmarks.best_known import TRAIN_SEEDS, BestKnown, schedule_of
from benchmarks.cells import FinalPool, cell_env, jobs_of, plan_of, store_record
from benchmarks.ground_truth import GroundTruth, key, plan_key
from benchmarks.intervals import signed_interval, t_interval
from benchmarks.progress import Progress
from benchmarks.promote import reference_folder
from benchmarks.provenance import code_fingerprint
from benchmarks.records import read_records
from benchmarks.studies.oracle_search import Trace, cma_search, level_search
from benchmarks.study import StudyArgs, drop_superseded, open_records
from benchmarks.suites import available_cores
from pruning_env.files import write_atomic
from pruning_env.registry import get_task

SEARCH_SEEDS: tuple[int, ...] = (1000, 1001)
"""Training seeds (minibatch orders) of the search's objective."""
HELD_OUT_SEEDS: tuple[int, ...] = TRAIN_SEEDS
"""Training seeds of the test evaluation: the best known plans' (``benchmarks.best_known.TRAIN_SEEDS``)."""
HEURISTICS: tuple[str, ...] = ("global_snip", "lamp", "erk")
"""The heuristics the searches start from and the headroom is measured against."""
TRAINED_HEURISTICS: tuple[str, ...] = ("global_magnitude", "lamp", "erk", "sensitivity")
"""Those of a trained task (``prune_at="trained"``): the heuristics of pruning after training."""


def heuristics_of(task: str) -> tuple[str, ...]:
    """The heuristics of ``task``'s cells: ``TRAINED_HEURISTICS`` on a trained task, else ``HEURISTICS``."""
    return TRAINED_HEURISTICS if get_task(task).prune_at == "trained" else HEURISTICS
LOSS_TIE_BREAK = 1e-3
"""Score = mean validation accuracy - this x mean validation loss (nats): the loss only orders equal accuracies."""
ORACLE_CODE: tuple[str, ...] = ("benchmarks/cells.py", "benchmarks/final_accuracy.py", "benchmarks/studies/oracle.py",
                                "benchmarks/studies/oracle_search.py")

if set(SEARCH_SEEDS) & set(HELD_OUT_SEEDS):  # the test numbers would be read on the search's own trainings
    raise AssertionError(f"search seeds {SEARCH_SEEDS} overlap the held-out seeds {HELD_OUT_SEEDS}")


@dataclass
class Args(StudyArgs):
    """The study's options; ``out`` receives oracle.jsonl, oracle.md, oracle_*.png, ground_truth.jsonl and
    best_known.jsonl (``--fresh`` deletes oracle.jsonl only: the stored trainings replay the searches)."""

    task: str = "mlp-digits"
    """The task (a FLOPs variant searches under its MACs budget)."""
    targets: tuple[float, ...] = (0.99,)
    """Target sparsities, one cell each per seed."""
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Instances (initialization seeds)."""
    evaluations: int = 48
    """Most plans each search evaluates (each one full training per search seed)."""
    patience: int = 24
    """A search stops when its best score has not improved for this many plans."""
    popsize: int = 8
    """Plans per generation (CMA-ES population, offspring of the level search)."""
    workers: int = available_cores()
    """Processes training plans."""
    final_steps: int | None = None
    """Shorten the full training (tests only: such trainings are not the ground truth of a benchmark)."""
    reference: Path = BEST_KNOWN_REFERENCE.parent
    """The committed results, read beneath the run's (stored trainings and best known plans)."""
    zero_shot: bool = False
    """On a trained task: the ground truth is the pruned network read with no fine-tuning (see the module
    docstring); the cells go to ``oracle_zero_shot.jsonl``."""


def search_score(rows: list[list[dict[str, Any]]]) -> np.ndarray:
    """The search's objective ``(N,)`` from each plan's readings ``[plan][search seed]``: mean validation accuracy
    minus ``LOSS_TIE_BREAK`` x the mean validation loss."""
    return np.array([np.mean([r["val_accuracy"] for r in row]) - LOSS_TIE_BREAK * np.mean([r["val_loss"] for r in row])
                     for row in rows])


class Trainings:
    """Full trainings of plans on the instances of one task and target: read from the store, else trained in the
    pool and stored. ``score`` is the search's objective."""

    def __init__(self, task: str, target: float, store: GroundTruth, pool: FinalPool | None,
                 final_steps: int | None, bar: Progress | None = None) -> None:
        self.task, self.target, self.store, self.pool, self.final_steps, self.bar = (
            task, target, store, pool, final_steps, bar)
        self.budget = get_task(task).budget
        self.steps = final_steps or get_task(task).evaluation_train.steps
        self.code = code_fingerprint(*ORACLE_CODE)

    def records(self, seed: int, plans: np.ndarray, train_seeds: tuple[int, ...]) -> list[list[dict[str, Any]]]:
        """The stored training records ``[plan][train seed]`` of ``plans`` ``(N, L)`` on instance ``seed``,
        training the missing ones."""
        plans = np.asarray(plans, dtype=np.float32).astype(np.float64)
        keys = [[key(self.task, self.target, self.budget, seed, t, self.steps, plan) for t in train_seeds]
                for plan in plans]
        missing = {k: {"task": self.task, "target_sparsity": self.target, "seed": seed, "train_seed": k[4],
                       "requested": list(k[6])}
                   for row in keys for k in row if self.store.find(k) is None}
        if missing:
            if self.pool is None:
                raise ValueError(f"{len(missing)} trainings of {self.task} at {self.target} are not stored "
                                 "(run the study, not --report-only)")
            for members, results in self.pool.train(jobs_of(list(missing.values()), 1)):
                for plan, result in zip(members, results, strict=True):
                    self.store.add(store_record(plan, result, self.final_steps, "oracle", self.code))
                    if self.bar is not None:
                        self.bar.advance(1)
        return [[self.store.find(k) for k in row] for row in keys]  # type: ignore[misc]

    def score(self, seed: int, plans: np.ndarray) -> np.ndarray:
        """The objective ``(N,)`` of ``plans`` ``(N, L)`` over ``SEARCH_SEEDS`` (``search_score``)."""
        return search_score(self.records(seed, plans, SEARCH_SEEDS))


class ZeroShotReadings:
    """Plans of one trained task and target read with no fine-tuning (``FinalEvaluator.zero_shot_many``): the
    zero-shot ground truth, with ``Trainings``' interface. A reading does not depend on a training seed, so
    ``records`` repeats it for each."""

    def __init__(self, task: str, target: float, bar: Progress | None = None) -> None:
        from benchmarks.final_accuracy import FinalEvaluator

        if get_task(task).prune_at != "trained":
            raise ValueError(f"--zero-shot reads a pruned trained network; {task} prunes at initialization "
                             "(take its -trained variant)")
        self.task, self.target, self.bar = task, target, bar
        self.budget = get_task(task).budget
        self.code = code_fingerprint(*ORACLE_CODE)
        self.evaluator = FinalEvaluator(task, target, device="cpu")
        self.readings: dict[tuple[int, tuple[float, ...]], dict[str, float]] = {}

    def records(self, seed: int, plans: np.ndarray, train_seeds: tuple[int, ...]) -> list[list[dict[str, Any]]]:
        """The readings ``[plan][train seed]`` (validation and test accuracy and loss) of ``plans`` ``(N, L)`` on
        instance ``seed``."""
        keys = [plan_key(plan) for plan in np.asarray(plans)]
        missing = list(dict.fromkeys(k for k in keys if (seed, k) not in self.readings))
        if missing:
            runs = self.evaluator.zero_shot_many([(np.array(k, dtype=np.float64), seed) for k in missing])
            for plan, run in zip(missing, runs, strict=True):
                self.readings[seed, plan] = {"val_accuracy": run.second_accuracy, "val_loss": run.second_loss,
                                             "test_accuracy": run.accuracy, "test_loss": run.loss}
            if self.bar is not None:
                self.bar.advance(len(missing))
        return [[{**self.readings[seed, k], "train_seed": t} for t in train_seeds] for k in keys]

    def score(self, seed: int, plans: np.ndarray) -> np.ndarray:
        """The objective ``(N,)`` of ``plans`` ``(N, L)`` (``search_score``)."""
        return search_score(self.records(seed, plans, SEARCH_SEEDS))


def heuristic_plans(task: str, target: float, seed: int) -> tuple[dict[str, list[float]], np.ndarray]:
    """The requested sparsities ``(L,)`` of every heuristic of the task (``heuristics_of``) on the instance of
    ``seed``, and each layer's total cost ``(L,)`` under the task's budget (weights or MACs)."""
    import agents
    from pruning_env.allocation import layer_costs

    env = cell_env(task, target, seed, reward="neg_loss", reward_steps=None, device="cpu")
    plans = {name: plan_of(agents.make_controller(name, env, seed=seed), env, seed).tolist()
             for name in heuristics_of(task)}
    return plans, layer_costs(env.layers, env.config.budget).astype(float)


def cell_settings(args: Args) -> dict[str, Any]:
    """What a cell record's numbers depend on besides its task, target and seed."""
    return {"evaluations": args.evaluations, "patience": args.patience, "popsize": args.popsize,
            "final_steps": args.final_steps, "search_seeds": list(SEARCH_SEEDS), "held_out_seeds": list(HELD_OUT_SEEDS),
            **({"zero_shot": True} if args.zero_shot else {})}


def in_run(cell: dict[str, Any], args: Args) -> bool:
    """Whether a recorded cell is one of this run's (task, target, seed)."""
    return cell["task"] == args.task and cell["target_sparsity"] in args.targets and cell["seed"] in args.seeds


def search_cell(trainings: Trainings | ZeroShotReadings, seed: int, args: Args) -> dict[str, Any]:
    """One cell: the heuristics' plans and scores, both searches' traces, the oracle, its held-out trainings."""
    heuristics, costs = heuristic_plans(trainings.task, trainings.target, seed)
    names = list(heuristics)
    starts = trainings.score(seed, np.array([heuristics[n] for n in names]))
    start_name = names[int(np.argmax(starts))]
    start = np.asarray(heuristics[start_name])
    objective = lambda plans: trainings.score(seed, plans)  # noqa: E731
    traces: list[Trace] = [
        cma_search(objective, start, args.evaluations, args.popsize, seed=seed, patience=args.patience),
        level_search(objective, start, costs, trainings.target, args.evaluations, args.popsize, seed=seed,
                     patience=args.patience),
    ]
    best = max(traces, key=lambda trace: trace.best[1])
    oracle, oracle_score = best.best
    held_out = trainings.records(seed, np.array([oracle, *heuristics.values()]), HELD_OUT_SEEDS)
    readings = ({name: rows[0] for name, rows in zip(["oracle", *names], held_out, strict=True)}
                if isinstance(trainings, ZeroShotReadings) else None)
    return {
        "task": trainings.task, "target_sparsity": trainings.target, "budget": trainings.budget, "seed": seed,
        "heuristics": heuristics, "heuristic_scores": dict(zip(names, starts.tolist(), strict=True)),
        "start": start_name, "traces": {t.method: {"plans": t.plans, "scores": t.scores} for t in traces},
        "oracle": oracle, "oracle_method": best.method, "oracle_score": oracle_score,
        "settings": cell_settings(args), "code": trainings.code, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **({"readings": readings} if readings is not None else {}),
    }


def candidate_trainings(cell: dict[str, Any], trainings: Trainings) -> list[dict[str, Any]]:
    """The oracle's held-out trainings as best known candidate records (``BestKnown.update``)."""
    rows = trainings.records(cell["seed"], np.array([cell["oracle"]]), HELD_OUT_SEEDS)[0]
    return [{"task": cell["task"], "target_sparsity": cell["target_sparsity"], "seed": cell["seed"],
             "requested": cell["oracle"], "train_seed": r["train_seed"], "test_accuracy": r["test_accuracy"],
             "controller": "oracle", "suite": "oracle"} for r in rows]


RECORDS = {False: "oracle.jsonl", True: "oracle_zero_shot.jsonl"}
"""The cell records' file name, by ``--zero-shot``."""


def run_study(args: Args) -> str:
    """Search every cell not yet recorded, train the transfers, write the report; returns its path."""
    args.out.mkdir(parents=True, exist_ok=True)
    store = GroundTruth(args.out / "ground_truth.jsonl", base=args.reference / "ground_truth.jsonl")
    records = RECORDS[args.zero_shot]
    cells, = open_records(args, [(args.out / records, ("task", "target_sparsity", "seed"))])
    reference_cells = {cells.key(c): c for c in read_records(reference_folder("oracle", args.reference) / records)}
    settings = cell_settings(args)
    if not args.report_only:
        drop_superseded(cells, lambda c: in_run(c, args), settings)
        cells_total = len(args.targets) * len(args.seeds)
        heuristics = len(heuristics_of(args.task))
        per_cell = ((2 * args.evaluations + heuristics) * len(SEARCH_SEEDS) if not args.zero_shot
                    else 2 * args.evaluations + heuristics)
        held_out = 0 if args.zero_shot else (1 + heuristics + len(args.seeds) - 1) * len(HELD_OUT_SEEDS)
        bar = Progress(cells_total * (per_cell + held_out), cells_total, args.progress,
                       desc=f"oracle {args.task}{' zero-shot' if args.zero_shot else ''}")
        best = BestKnown(args.out / "best_known.jsonl", base=BEST_KNOWN_REFERENCE)
        with contextlib.nullcontext() if args.zero_shot else FinalPool(args.workers, args.final_steps, "cpu") as pool:
            for target in args.targets:
                trainings = (ZeroShotReadings(args.task, target, bar) if args.zero_shot
                             else Trainings(args.task, target, store, pool, args.final_steps, bar))
                for seed in args.seeds:
                    cell_key = (args.task, target, seed)
                    if cell_key in cells:
                        continue
                    bar.phase(f"{args.task} {target} seed {seed}")
                    known = reference_cells.get(cell_key)
                    cell = search_cell(trainings, seed, args)
                    if known is not None and known["settings"] == settings and known["oracle"] != cell["oracle"]:
                        print(f"note: {cell_key} found another oracle than the reference's (another machine kind?)")
                    cells.add(cell)
                    bar.advance(0, cells=1)
                    if args.final_steps is None and not args.zero_shot:
                        best.update(candidate_trainings(cell, trainings), {args.task: schedule_of(args.task, None)})
                if args.zero_shot:
                    continue
                done = [c for c in cells.records if c["task"] == args.task and c["target_sparsity"] == target]
                bar.phase(f"{args.task} {target}: transfer")
                for cell in done:
                    for other in done:
                        if other["seed"] != cell["seed"]:
                            trainings.records(other["seed"], np.array([cell["oracle"]]), HELD_OUT_SEEDS)
        bar.close()
    other = read_records(args.out / RECORDS[not args.zero_shot])
    reference_other = read_records(reference_folder("oracle", args.reference) / RECORDS[not args.zero_shot])
    mine = [*cells.records, *(c for k, c in reference_cells.items() if k not in cells)]
    theirs = {cells.key(c): c for c in reference_other} | {cells.key(c): c for c in other}
    return write_report(args.out, store, [*mine, *theirs.values()])


def _mean(rows: list[dict[str, Any]], field: str) -> float:
    return float(np.mean([r[field] for r in rows]))


def is_zero_shot(cell: dict[str, Any]) -> bool:
    """Whether a cell record is a ``--zero-shot`` search's (its readings are in the record)."""
    return bool(cell["settings"].get("zero_shot"))


def cell_figures(cell: dict[str, Any], store: GroundTruth) -> dict[str, Any]:
    """Held-out test and search-seed validation accuracies (in [0, 1]) of the oracle and the heuristics of a cell
    (a zero-shot cell's from its readings: no score noise, the readings being deterministic)."""
    if is_zero_shot(cell):
        readings = cell["readings"]
        test = {n: r["test_accuracy"] for n, r in readings.items()}
        val = {n: r["val_accuracy"] for n, r in readings.items()}
        best = max(cell["heuristics"], key=lambda n: test[n])
        return {"test": test, "val": val, "best": best, "headroom": test["oracle"] - test[best],
                "val_gain": val["oracle"] - val[best], "seed_noise": 0.0}
    trainings = Trainings(cell["task"], cell["target_sparsity"], store, None, cell["settings"]["final_steps"])
    plans = {"oracle": cell["oracle"], **cell["heuristics"]}
    test = {n: _mean(trainings.records(cell["seed"], np.array([p]), HELD_OUT_SEEDS)[0], "test_accuracy")
            for n, p in plans.items()}
    val = {n: _mean(trainings.records(cell["seed"], np.array([p]), SEARCH_SEEDS)[0], "val_accuracy")
           for n, p in plans.items()}
    best = max(cell["heuristics"], key=lambda n: test[n])
    evaluated = np.array([plan for trace in cell["traces"].values() for plan in trace["plans"]])
    pairs = np.array([[r["val_accuracy"] for r in row]
                      for row in trainings.records(cell["seed"], evaluated, SEARCH_SEEDS)]) if len(evaluated) else None
    return {"test": test, "val": val, "best": best, "headroom": test["oracle"] - test[best],
            "val_gain": val["oracle"] - val[best],
            "seed_noise": float(np.std(pairs[:, 0] - pairs[:, 1]) / np.sqrt(2)) if pairs is not None else np.nan}


def transfer_gains(cells: list[dict[str, Any]], store: GroundTruth,
                   figures: list[dict[str, Any]]) -> list[tuple[int, int, float]]:
    """(plan's instance, instance it is trained on, its mean held-out test accuracy minus that instance's best
    heuristic's) for every pair of different instances whose trainings are stored; ``figures``: ``cell_figures`` of
    each of ``cells``, in order."""
    by_seed = {c["seed"]: figure for c, figure in zip(cells, figures, strict=True)}
    gains = []
    for cell in cells:
        trainings = Trainings(cell["task"], cell["target_sparsity"], store, None, cell["settings"]["final_steps"])
        for other in cells:
            if other["seed"] == cell["seed"]:
                continue
            try:
                rows = trainings.records(other["seed"], np.array([cell["oracle"]]), HELD_OUT_SEEDS)[0]
            except ValueError:
                continue
            figure = by_seed[other["seed"]]
            gains.append((cell["seed"], other["seed"], _mean(rows, "test_accuracy") - figure["test"][figure["best"]]))
    return gains


def write_report(out: Path, store: GroundTruth, cells: list[dict[str, Any]]) -> str:
    """``oracle.md`` and ``oracle_convergence.png`` from the cell records and the store; returns the Markdown."""
    from benchmarks.plots import Panel, Series, save_lines

    groups: dict[tuple[str, float, bool], list[dict[str, Any]]] = {}
    for cell in sorted(cells, key=lambda c: (is_zero_shot(c), c["task"], c["target_sparsity"], c["seed"])):
        groups.setdefault((cell["task"], cell["target_sparsity"], is_zero_shot(cell)), []).append(cell)
    lines = [
        "# Oracle plans and the headroom of each cell", "",
        "Built by `python -m benchmarks.studies.oracle --report-only` from `oracle.jsonl` and `ground_truth.jsonl`. Headroom "
        "= the oracle's mean test accuracy minus the best heuristic's (of " + ", ".join(HEURISTICS)
        + ("; on a trained task of " + ", ".join(TRAINED_HEURISTICS) + ", and its accuracy after the task's fine-tuning"
           if any(get_task(task).prune_at == "trained" for task, _, _ in groups) else "") + "; the one "
        f"best on that test mean), both trained with the held-out training seeds {list(HELD_OUT_SEEDS)}; the "
        f"search read only the validation split after trainings with the seeds {list(SEARCH_SEEDS)}. Points of "
        "accuracy; ± is the 95% t-interval over instances (paired). Evaluations: plans both searches evaluated per instance "
        "(mean; each plan trained once per search seed); best found at: the median evaluation (of each search) that "
        "found its best plan, the budget's justification: well inside the budget means the curve was flat. Score noise: "
        "the standard deviation (points) of one plan's validation accuracy between two training seeds, over every "
        "plan the searches evaluated: a search whose steps are smaller than it mostly selects noise, which the "
        "validation gain against the held-out headroom then shows. A task marked (zero-shot) is a trained task whose "
        "ground truth is the pruned network read as it is, with no fine-tuning (`--zero-shot`, from "
        "`oracle_zero_shot.jsonl`): there the search read the validation split zero-shot (one forward pass a plan), "
        "the test figures are zero-shot too, and a reading has no noise.", "",
        "| task | target | instances | best heuristic (test) | oracle (test) | headroom | validation gain | "
        "beyond noise | score noise | oracle found by | evaluations | best found at |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    per_instance = ["", "## Per instance", "",
                    "| task | target | seed | best heuristic | its test | oracle test | headroom | its validation | "
                    "oracle validation | validation gain |", "|---|---|---|---|---|---|---|---|---|---|"]
    transfer = ["", "## Transfer: each instance's oracle plan on the other instances", "",
                "Gain = the plan's mean held-out test accuracy on another instance minus that instance's best "
                "heuristic. A headroom that transfers is a property of the architecture; one that does not is a "
                "property of the initialization.", "",
                "| task | target | own headroom | transferred gain | pairs |", "|---|---|---|---|---|"]
    panels = []
    for (task_name, target, zero_shot), group in groups.items():
        task = f"{task_name} (zero-shot)" if zero_shot else task_name
        figures = [cell_figures(c, store) for c in group]
        headroom = t_interval([100 * f["headroom"] for f in figures])
        val_gain = t_interval([100 * f["val_gain"] for f in figures])
        beyond = "yes" if np.isfinite(headroom[1]) and abs(headroom[0]) > headroom[1] else "no"
        methods = ", ".join(sorted({c["oracle_method"] for c in group}))
        spent = [sum(len(t["scores"]) for t in c["traces"].values()) for c in group]
        found_at = {method: int(np.median([np.argmax(c["traces"][method]["scores"]) + 1 for c in group]))
                    for method in group[0]["traces"]}
        lines.append(
            f"| {task} | {target} | {len(group)} | {100 * np.mean([f['test'][f['best']] for f in figures]):.1f} | "
            f"{100 * np.mean([f['test']['oracle'] for f in figures]):.1f} | {signed_interval(*headroom)} | "
            f"{signed_interval(*val_gain)} | {beyond} | {100 * np.mean([f['seed_noise'] for f in figures]):.1f} | "
            f"{methods} | {int(np.mean(spent))} | "
            + ", ".join(f"{method} {at}" for method, at in found_at.items()) + " |")
        for cell, figure in zip(group, figures, strict=True):
            per_instance.append(
                f"| {task} | {target} | {cell['seed']} | {figure['best']} | {100 * figure['test'][figure['best']]:.1f} | "
                f"{100 * figure['test']['oracle']:.1f} | {100 * figure['headroom']:+.1f} | "
                f"{100 * figure['val'][figure['best']]:.1f} | {100 * figure['val']['oracle']:.1f} | "
                f"{100 * figure['val_gain']:+.1f} |")
        gains = [] if zero_shot else transfer_gains(group, store, figures)
        if gains:
            transfer.append(f"| {task} | {target} | {signed_interval(*headroom)} | "
                            f"{signed_interval(*t_interval([100 * g for _, _, g in gains]))} | {len(gains)} |")
        series = [Series(f"seed {c['seed']} {method}", list(range(1, len(t["scores"]) + 1)),
                         (100 * np.maximum.accumulate(t["scores"])).tolist(),
                         linestyle="-" if method == "cma_es" else "--", markers=False)
                  for c in group for method, t in c["traces"].items()]
        panels.append(Panel(f"{task} at {target}", "plans evaluated", "best validation score (%)", series))
    if panels:
        save_lines(out / "oracle_convergence.png", panels, "Oracle searches (solid: CMA-ES, dashed: levels)")
    text = "\n".join([*lines, *per_instance, *transfer, "",
                      "![convergence](oracle_convergence.png)" if panels else ""]) + "\n"
    write_atomic(out / "oracle.md", text)
    return text


def main(args: Args) -> None:
    print(run_study(args))


if __name__ == "__main__":
    main(tyro.cli(Args))
