"""Reward validity: does searching a reward variant find plans that are better after the full training?

    python -m benchmarks.studies.reward_validity --out DIR        # search, train, rank, report (resumable)
    python -m benchmarks.promote reward_validity --out DIR        # make it the committed reference
    python -m benchmarks.studies.reward_validity --report-only --out benchmarks/results/reference/reward_validity

For every reward variant (``VARIANTS``: the env options it changes) and every instance of the oracle study's cell
(``--task``, ``--target``, ``--seeds``; ``benchmarks.studies.oracle`` measured its headroom), the same search (CMA-ES from
global SNIP's plan, ``agents.black_box.CMAESSearch`` with its defaults) gets an equal compute budget: ``--budgets``
in units of the default reward's cost, counted in sample-steps (``pruning_env.fidelity``: one sample through a
training step or an evaluation forward pass). A variant that costs c units per evaluation gets budget / c
evaluations (at most ``--max-evaluations``). The two-stage variant spends what is left after re-evaluating its
``finalists`` at its final fidelity on a cheap search, then keeps the finalist best at that fidelity.

The search's best plan is trained fully with the oracle's held-out training seeds and read on the test split (the
ground-truth store of ``benchmarks.studies.oracle``): the realized gain is its mean test accuracy minus the instance's best
heuristic's (of global SNIP, LAMP, ERK), paired per instance; the share of the headroom divides it by the oracle's
gain on that instance. From the oracle's ground truth also, per variant: the Kendall tau of its reward against the
full-training validation score among the top 20% of ``--candidates`` plans the oracle searches evaluated, and the
regret (points) of its argmax over those candidates.

Outputs in ``--out``: ``reward_validity.jsonl`` (one row per variant, budget and instance),
``reward_validity_ranking.jsonl`` (one per variant and instance), ``reward_validity.md`` and ``.png`` (gain and share
of headroom against compute, one line per variant), and ``ground_truth.jsonl`` (the trainings this run added).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tyro
from scipy.stats import kendalltau

from benchmarks.best_known import REFERENCE as BEST_KNOWN_REFERENCE
from benchmarks.cells import FinalPool
from benchmarks.ground_truth import GroundTruth
from benchmarks.intervals import signed_interval, t_interval
from benchmarks.plots import Panel, Series, save_lines
from benchmarks.progress import Progress
from benchmarks.promote import reference_folder
from benchmarks.provenance import code_fingerprint
from benchmarks.records import read_records
from benchmarks.studies.oracle import HELD_OUT_SEEDS, Trainings, cell_figures
from benchmarks.study import StudyArgs, check_known, open_records, publish, stamped
from pruning_env.fidelity import Fidelity
from pruning_env.pools import JobPool

NAME = "reward_validity"
CODE: tuple[str, ...] = ("benchmarks/studies/reward_validity.py", "agents/black_box.py", "agents/plan_search.py",
                         "pruning_env/fidelity.py", "pruning_env/rewards.py", "pruning_env/evaluation.py")
RESULT_KEY = ("variant", "budget_units", "seed")
RANKING_KEY = ("variant", "seed")


@dataclass(frozen=True)
class Variant:
    """One reward variant: the env options it changes, and how its search spends the budget."""

    options: dict[str, Any] = field(default_factory=dict)
    """``PruningEnv`` options over the task's defaults (``reward_steps``, ``reward_orders``, ``reward_schedule``,
    ``reward``)."""
    val_fraction: float | None = None
    """Re-split the dataset with this validation share (``pruning_env.data.load_dataset``); None: the task's."""
    finalists: int = 0
    """Two-stage selection: re-evaluate this many of the search's best plans at ``final_fidelity`` (0: none)."""
    final_fidelity: Fidelity | None = None
    """The fidelity of the re-evaluation."""
    about: str = ""
    """What it is, for the report."""


VARIANTS: dict[str, Variant] = {
    "default": Variant(about="the task's reward: neg_loss after K=100 steps of the reward schedule (Adam lr 1e-2)"),
    "k400": Variant({"reward_steps": 400}, about="a longer K: 400 steps"),
    "final_k100": Variant({"reward_schedule": "final"},
                          about="the final schedule (Adam lr 3e-3, cosine) cut to K=100"),
    "orders2": Variant({"reward_orders": 2}, about="mean over 2 minibatch orders"),
    "orders4": Variant({"reward_orders": 4}, about="mean over 4 minibatch orders"),
    "quarter_final": Variant({"reward_schedule": "final", "reward_steps": 150},
                             about="a low-fidelity full training: a quarter (150 steps) of the final schedule"),
    "full600": Variant({"reward_schedule": "final", "reward_steps": 600},
                       about="the whole final schedule (600 steps): the oracle's objective on one training seed"),
    "val30": Variant(val_fraction=0.3, about="a larger validation split: digits re-split with 30% validation"),
    "two_stage": Variant({"reward_steps": 25}, finalists=8, final_fidelity=Fidelity(400),
                         about="CMA-ES at K=25, its 8 best plans re-evaluated at K=400"),
    "zero_cost": Variant({"reward": "zero_cost"}, about="the zero-cost reward (SynFlow's surviving flow)"),
}


@dataclass
class Args(StudyArgs):
    """The study's options (``out`` receives its records, report, plot and the trainings it added)."""

    out: Path = Path("benchmarks/results/reward_validity")
    task: str = "mlp-digits"
    target: float = 0.995
    """The oracle study's cell with headroom beyond noise."""
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Instances; each needs the oracle study's cell."""
    variants: tuple[str, ...] = tuple(VARIANTS)
    budgets: tuple[int, ...] = (96, 288)
    """Compute budgets in units of one default reward evaluation (96: the default suite's budget per instance)."""
    max_evaluations: int = 1000
    """Most evaluations one search makes (the zero-cost reward would otherwise get budget / 2 sample-steps)."""
    candidates: int = 48
    """Plans per instance for the ranking figures, spread evenly over the oracle searches' ground-truth scores."""
    reference: Path = BEST_KNOWN_REFERENCE.parent
    """The committed results: the oracle cells and the ground-truth store."""


def variant_env(task: str, target: float, seed: int, variant: Variant) -> Any:
    """The env whose reward the variant's search optimizes, on the instance of ``seed``."""
    from pruning_env.data import load_dataset
    from pruning_env.parallel import PruningEnv
    from pruning_env.registry import get_task

    data = None if variant.val_fraction is None else load_dataset(get_task(task).dataset, val_fraction=variant.val_fraction)
    return PruningEnv(task, data=data, target_sparsity=target, init=seed, seed=seed, device="cpu", **variant.options)


def unit_cost(task: str, target: float) -> int:
    """Sample-steps of one evaluation of the task's default reward: the budget's unit."""
    env = variant_env(task, target, 0, VARIANTS["default"])
    return env.cost_of(env.config.fidelity)


def search(task: str, target: float, seed: int, name: str, budget: int, max_evaluations: int) -> dict[str, Any]:
    """CMA-ES on the variant's reward with ``budget`` sample-steps; the plan it returns and what it spent."""
    from agents.black_box import CMAESSearch

    variant = VARIANTS[name]
    env = variant_env(task, target, seed, variant)
    final_cost = variant.finalists * env.cost_of(variant.final_fidelity) if variant.finalists else 0
    evaluations = min(max_evaluations, (budget - final_cost) // env.cost_of(env.config.fidelity))
    started = time.perf_counter()
    searcher = CMAESSearch(env, episodes=int(evaluations), seed=seed, progress=False)
    searcher.search()
    plan, reward = searcher.best_plan, searcher.best_reward
    if variant.finalists:
        finalists = searcher.top_plans(variant.finalists)
        results = env.evaluate_plans([(seed, p) for p in finalists], fidelity=variant.final_fidelity)
        best = int(np.argmax([r.reward for r in results]))
        plan, reward = finalists[best], results[best].reward
    return {"plan": np.asarray(plan).tolist(), "reward": float(reward), "evaluations": int(evaluations),
            "compute": int(env.compute_spent), "seconds": time.perf_counter() - started}


def rank(task: str, target: float, seed: int, name: str, plans: list[list[float]]) -> list[float]:
    """The variant's reward of every candidate plan on the instance of ``seed`` (two-stage: at its final fidelity)."""
    variant = VARIANTS[name]
    env = variant_env(task, target, seed, variant)
    episodes = [(seed, np.asarray(p)) for p in plans]
    return [r.reward for r in env.evaluate_plans(episodes, fidelity=variant.final_fidelity)]


def candidates(cell: dict[str, Any], trainings: Trainings, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` distinct plans ``(N, L)`` the oracle searches evaluated on the cell, spread evenly over their
    ground-truth scores, and those scores ``(N,)`` (full-training validation accuracy, the oracle's objective)."""
    plans = np.unique(np.array([p for trace in cell["traces"].values() for p in trace["plans"]]), axis=0)
    scores = trainings.score(cell["seed"], plans)
    order = np.argsort(scores)
    chosen = order[np.unique(np.linspace(0, len(order) - 1, min(count, len(order))).round().astype(int))]
    return plans[chosen], scores[chosen]


def settings_of(args: Args) -> dict[str, Any]:
    """What the records' numbers depend on besides their key."""
    return {"task": args.task, "target": args.target, "max_evaluations": args.max_evaluations,
            "candidates": args.candidates, "held_out_seeds": list(HELD_OUT_SEEDS), "search": "cma_es defaults"}


def variant_settings(args: Args, name: str) -> dict[str, Any]:
    return {**settings_of(args), "variant": asdict(VARIANTS[name])}


def run_study(args: Args) -> str:
    """Search, train and rank what is not recorded yet; write the report; returns its text."""
    check_known(args.variants, VARIANTS, "variants")
    args.out.mkdir(parents=True, exist_ok=True)
    store = GroundTruth(args.out / "ground_truth.jsonl", base=args.reference / "ground_truth.jsonl")
    cells = {c["seed"]: c for c in read_records(reference_folder("oracle", args.reference) / "oracle.jsonl")
             if c["task"] == args.task and c["target_sparsity"] == args.target}
    missing = sorted(set(args.seeds) - set(cells))
    if missing:
        raise SystemExit(f"no oracle cell of {args.task} at {args.target} for seeds {missing}: run benchmarks.studies.oracle")
    results, ranking = open_records(
        args, [(args.out / f"{NAME}.jsonl", RESULT_KEY), (args.out / f"{NAME}_ranking.jsonl", RANKING_KEY)],
        lambda record: variant_settings(args, record["variant"]), "start again with --fresh")
    if not args.report_only:
        code = code_fingerprint(*CODE)
        unit = unit_cost(args.task, args.target)
        trainings = Trainings(args.task, args.target, store, None, None)
        with JobPool(args.workers) as workers, FinalPool(args.workers, None, "cpu") as finals:
            trainings.pool = finals
            for units in args.budgets:
                jobs = [(args.task, args.target, seed, name, units * unit, args.max_evaluations)
                        for name in args.variants for seed in args.seeds if (name, units, seed) not in results]
                for index, found in workers.run(search, jobs, f"search at {units} units" if args.progress else None):
                    _, _, seed, name, _, _ = jobs[index]
                    results.add(stamped({"variant": name, "budget_units": units, "seed": seed, "unit": unit, **found},
                                        variant_settings(args, name), code=code))
                todo = [r for r in results.records if r["budget_units"] == units and r["variant"] in args.variants]
                bar = Progress(len(todo) * len(HELD_OUT_SEEDS), 1, args.progress, desc=f"final trainings {units}")
                trainings.bar = bar
                for record in todo:
                    trainings.records(record["seed"], np.array([record["plan"]]), HELD_OUT_SEEDS)
                bar.close()
                if units == args.budgets[0]:
                    rank_all(args, cells, trainings, ranking, workers, code)
    return publish(args.out, NAME, report(args, cells, store, results.records, ranking.records),
                   lambda path: plot(path, args, cells, store, results.records))


def rank_all(args: Args, cells: dict[int, dict[str, Any]], trainings: Trainings, ranking: Any, workers: JobPool,
             code: str) -> None:
    """The ranking records of every (variant, instance) not recorded yet."""
    chosen = {seed: candidates(cells[seed], trainings, args.candidates) for seed in args.seeds}
    jobs = [(args.task, args.target, seed, name, chosen[seed][0].tolist())
            for name in args.variants for seed in args.seeds if (name, seed) not in ranking]
    for index, rewards in workers.run(rank, jobs, "ranking" if args.progress else None):
        _, _, seed, name, plans = jobs[index]
        ranking.add(stamped({"variant": name, "seed": seed, "plans": plans, "rewards": rewards,
                             "scores": chosen[seed][1].tolist()}, variant_settings(args, name), code=code))


def test_mean(store: GroundTruth, args: Args, seed: int, plan: list[float]) -> float:
    """Mean held-out test accuracy (points) of ``plan`` on the instance of ``seed``."""
    rows = Trainings(args.task, args.target, store, None, None).records(seed, np.array([plan]), HELD_OUT_SEEDS)[0]
    return 100.0 * float(np.mean([r["test_accuracy"] for r in rows]))


def gains(args: Args, cells: dict[int, dict[str, Any]], store: GroundTruth, records: list[dict[str, Any]],
          name: str, units: int) -> tuple[np.ndarray, np.ndarray]:
    """Per instance with a record: the realized gain (points) over the best heuristic and the oracle's headroom."""
    rows = sorted((r for r in records if r["variant"] == name and r["budget_units"] == units), key=lambda r: r["seed"])
    figures = {seed: cell_figures(cells[seed], store) for seed in {r["seed"] for r in rows}}
    realized = [test_mean(store, args, r["seed"], r["plan"]) - 100 * figures[r["seed"]]["test"][figures[r["seed"]]["best"]]
                for r in rows]
    return np.array(realized), np.array([100 * figures[r["seed"]]["headroom"] for r in rows])


def ranking_figures(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """Mean over instances of the Kendall tau among the top 20% of candidates and of the argmax's regret (points)."""
    taus, regrets = [], []
    for row in rows:
        scores, rewards = np.array(row["scores"]), np.array(row["rewards"])
        top = np.argsort(scores)[-max(3, len(scores) // 5):]
        taus.append(kendalltau(rewards[top], scores[top]).statistic)
        regrets.append(100 * (scores.max() - scores[int(np.argmax(rewards))]))
    return float(np.nanmean(taus)), float(np.mean(regrets))


def report(args: Args, cells: dict[int, dict[str, Any]], store: GroundTruth, records: list[dict[str, Any]],
           ranking: list[dict[str, Any]]) -> str:
    """The study's markdown: the validity table per budget, the ranking table, the variants."""
    lines = [
        f"# Reward validity: {args.task} at target sparsity {args.target}", "",
        f"Built by `python -m benchmarks.studies.reward_validity --report-only` from `{NAME}.jsonl`, "
        f"`{NAME}_ranking.jsonl` and the oracle study's ground truth. Each variant's search (CMA-ES from global SNIP's "
        "plan, its defaults) had the same compute: the budget in units of one default reward evaluation "
        f"(sample-steps, `pruning_env.fidelity`). Realized gain: the search's best plan's mean test accuracy after the "
        f"full training with the held-out training seeds {list(HELD_OUT_SEEDS)}, minus the instance's best heuristic's "
        "(of global_snip, lamp, erk; as in `oracle.md`), in points; share: the gain over the oracle's headroom on that "
        "instance (summed over instances). ± is the 95% t-interval over instances (paired).", "",
        "| variant | budget (units) | instances | evaluations | realized gain | share of headroom | beyond noise |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for units in sorted({r["budget_units"] for r in records}):
        for name in VARIANTS:
            realized, headroom = gains(args, cells, store, records, name, units)
            if not len(realized):
                continue
            rows = [r for r in records if r["variant"] == name and r["budget_units"] == units]
            mean, half = t_interval(realized)
            share = realized.sum() / headroom.sum()
            beyond = "yes" if abs(mean) > half else "no"
            lines.append(f"| {name} | {units} | {len(realized)} | {np.mean([r['evaluations'] for r in rows]):.0f} | "
                         f"{signed_interval(mean, half)} | {100 * share:.0f}% | {beyond} |")
    lines += ["", f"## Ranking on the oracle's candidates ({args.candidates} plans per instance)", "",
              "Kendall tau of the variant's reward against the full-training validation score (the oracle's objective, "
              "training seeds of its search) among the top 20% of the candidates, and the regret of the reward's argmax "
              "over all candidates (points of that score); means over instances.", "",
              "| variant | instances | tau (top 20%) | argmax regret |", "|---|---:|---:|---:|"]
    for name in VARIANTS:
        rows = [r for r in ranking if r["variant"] == name]
        if rows:
            tau, regret = ranking_figures(rows)
            lines.append(f"| {name} | {len(rows)} | {tau:+.2f} | {regret:.1f} |")
    lines += ["", "## Variants", "", "| variant | what |", "|---|---|"]
    lines += [f"| {name} | {variant.about} |" for name, variant in VARIANTS.items()]
    return "\n".join(lines) + "\n"


def plot(path: Path, args: Args, cells: dict[int, dict[str, Any]], store: GroundTruth,
         records: list[dict[str, Any]]) -> None:
    """Realized gain and share of headroom against the compute budget, one line per variant."""
    budgets = sorted({r["budget_units"] for r in records})
    gain_series, share_series = [], []
    for name in VARIANTS:
        points = [(units, *gains(args, cells, store, records, name, units)) for units in budgets]
        points = [(units, realized, headroom) for units, realized, headroom in points if len(realized)]
        if not points:
            continue
        x = [units for units, _, _ in points]
        gain_series.append(Series(name, x, [float(np.mean(r)) for _, r, _ in points],
                                  yerr=[t_interval(r)[1] if len(r) > 1 else 0.0 for _, r, _ in points]))
        share_series.append(Series(name, x, [100 * float(r.sum() / h.sum()) for _, r, h in points]))
    save_lines(path, [Panel("realized gain over the best heuristic", "compute (default evaluations)", "points",
                            gain_series, hlines=(("best heuristic", 0.0),)),
                      Panel("share of the oracle headroom", "compute (default evaluations)", "%", share_series,
                            hlines=(("oracle", 100.0), ("best heuristic", 0.0)))],
               note="error bars: 95% t-intervals over instances")


def main(args: Args) -> None:
    print(run_study(args))


if __name__ == "__main__":
    main(tyro.cli(Args))
