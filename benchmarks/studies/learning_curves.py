"""Learning curves: what each controller's plan is worth against the reward evaluations it has spent.

Protocol (per-instance, equal budget). For every target and instance seed of the task, each controller spends
``episodes`` reward evaluations on that one instance (initialization = reset seed = the instance seed, a fixed
target): learners train on it (``episode_seeds`` "auto" resolves to fixed), searchers search it. After each
update, generation or batch the benchmark takes the controller's *current plan*: a learner's deterministic action
(its policy's mean: MAPPO's ``mean_actions``, else ``act``), CMA-ES's mean, TPE's and random search's best plan so far (``current_plan``). Every ``every``
evaluations the last current plan taken is evaluated with the same reward on the same instance (measurement,
outside the budget), beside the best reward seen so far. After the budget the plan ``act`` returns (a searcher's
best; MAPPO's best episode, ``act_plan="best"``, the per-instance protocol; SB3 PPO's mean) is trained with the task's full schedule for each of ``final_seeds`` (minibatch
orders), and so are the reference heuristics' plans (global SNIP, LAMP); the table pairs every controller with
each reference on the same instances (mean over training seeds per instance, then a 95% t-interval over
instances of the paired difference).

    python -m benchmarks.studies.learning_curves                               # mlp-digits, 0.98 and 0.99, 5 instances
    python -m benchmarks.studies.learning_curves --controllers cma_es mappo --seeds 0 1 --episodes 100

Records resume like ``make bench`` (``learning_curves.jsonl``: one curve per (controller, target, seed);
``learning_curves_finals.jsonl``: one full training per plan and training seed); the table goes to
``learning_curves.md``, the plot to ``learning_curves.png`` (``--report-only`` rebuilds both from the records and
the reference heuristics' plans, computed again).
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro
from tqdm import tqdm

import agents
from agents.base import SearchController, TrainableController
from benchmarks.best_known import REFERENCE, TRAIN_SEEDS, BestKnown, schedule_of
from benchmarks.cells import cell_env, plan_of, run_finals
from benchmarks.intervals import signed_interval, t_interval
from benchmarks.plots import Panel, Series, save_lines
from benchmarks.provenance import code_fingerprint, versions
from benchmarks.records import RecordFile
from benchmarks.study import StudyArgs, open_records, publish, stamped
from benchmarks.suites import SEARCH_OPTIONS
from pruning_env.pools import JobPool

CONTROLLERS: tuple[str, ...] = ("mappo", "mappo_ar", "sb3_ppo", "cma_es", "tpe", "random_search")
REFERENCES: tuple[str, ...] = ("global_snip", "lamp")
"""Heuristics every controller is paired against (their plans cost no reward evaluation)."""
OPTIONS: dict[str, dict[str, Any]] = {
    "mappo": {"progress": False, "tensorboard": False, "workers": 1, "act_plan": "best"},
    "mappo_ar": {"progress": False, "tensorboard": False, "workers": 1, "act_plan": "best"},
    **SEARCH_OPTIONS,
}
"""Constructor options: learners evaluate in their own process (the benchmark runs one job per worker), MAPPO
acts with its best episode (the per-instance protocol, as the searchers do); the searchers as in ``make bench``
(``benchmarks.suites.SEARCH_OPTIONS``: all start at global SNIP's plan)."""
CURVE_KEY = ("controller", "target_sparsity", "seed")
FINAL_KEY = ("task", "controller", "target_sparsity", "seed", "train_seed")


@dataclass
class Args(StudyArgs):
    """The study's options; ``workers`` run one (controller, target, seed) curve or one full training each."""

    task: str = "mlp-digits"
    """Task name (``pruning_env.registry``)."""
    targets: tuple[float, ...] = (0.98, 0.99)
    """Global target sparsities."""
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Instance seeds (initialization and reward minibatch order)."""
    seeds_per_target: tuple[int, ...] | None = None
    """Instances per target, in the order of ``targets``: the first n of ``seeds`` (None: all of them)."""
    controllers: tuple[str, ...] = CONTROLLERS
    """Controllers to run (learners and per-instance searchers from ``agents.CONTROLLERS``)."""
    episodes: int = 300
    """Reward evaluations per (controller, target, seed)."""
    every: int = 30
    """Evaluations between two points of the current-plan curve."""
    final_seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds (minibatch orders) of each final plan's full training."""
    reward: str = "neg_loss"
    """The reward every controller optimizes."""
    reward_steps: int | None = None
    """K of that reward (the task's when None)."""
    reward_orders: int = 1
    """Minibatch orders the reward averages over (``PruningEnv(reward_orders=...)``; each costs one training)."""
    final_steps: int | None = None
    """Override of the full training's steps (None: the task's schedule); only for tests."""
    best_known: Path | None = None
    """The run's best known plans (``benchmarks.best_known``; default ``<out>/best_known.jsonl``, read over the
    committed reference): every final plan is a candidate for its cell when ``final_seeds`` are the best known
    plans' training seeds; ``python -m benchmarks.promote`` makes them the reference."""


def settings_of(args: Args, controller: str) -> dict[str, Any]:
    """Everything one curve's numbers depend on besides its key (the hash of the code is recorded beside them,
    not compared: a later change that moves no number may finish or re-report a run)."""
    return {
        "task": args.task, "episodes": args.episodes, "every": args.every, "reward": args.reward,
        "reward_orders": args.reward_orders, "final_steps": args.final_steps,
        "reward_steps": args.reward_steps, "controller": controller, "options": OPTIONS.get(controller, {}),
        "versions": versions(),
    }


def instances(args: Args) -> list[tuple[float, int]]:
    """Every (target, seed) of the run (``seeds_per_target`` of them per target)."""
    counts = args.seeds_per_target or (len(args.seeds),) * len(args.targets)
    if len(counts) != len(args.targets) or not all(1 <= n <= len(args.seeds) for n in counts):
        raise ValueError(f"seeds_per_target needs one count in [1, {len(args.seeds)}] per target "
                         f"{list(args.targets)}, got {list(counts)}")
    return [(target, seed) for target, count in zip(args.targets, counts, strict=True) for seed in args.seeds[:count]]


def marks(episodes: int, every: int) -> list[int]:
    """Evaluations at which the current plan is read: 0, every, 2 every, ..., and ``episodes``."""
    return sorted({0, *range(every, episodes, every), episodes})


def latest(points: Sequence[tuple[int, Any]], mark: int) -> Any:
    """The value of the last ``(spent, value)`` point with spent <= ``mark`` (points in order, the first at 0)."""
    return [value for spent, value in points if spent <= mark][-1]


def run_curve(task: str, target: float, seed: int, name: str, episodes: int, every: int, reward: str,
              reward_steps: int | None, reward_orders: int = 1) -> dict[str, Any]:
    """One controller's curve on one instance: current-plan reward and best reward at every mark, the final
    plan and its reward (in a worker process, one thread)."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    env = cell_env(task, target, seed, reward, reward_steps, "cpu", reward_orders)
    controller = agents.make_controller(name, env, seed=seed, **OPTIONS.get(name, {}))
    if isinstance(controller, TrainableController):
        current: list[tuple[int, np.ndarray]] = []
        make_env = functools.partial(cell_env, task, target, seed, reward, reward_steps, "cpu", reward_orders)
        policy = getattr(controller, "mean_actions", controller.act)  # MAPPO may act with its best episode
        report = controller.train(make_env, episodes, seed,
                                  on_update=lambda spent: current.append((spent, plan_of(controller, env, seed, policy))))
    elif isinstance(controller, SearchController):
        current = [(0, controller.reference_plan(seed))]
        report = controller.search(episodes, seed,
                                   on_update=lambda spent: current.append((spent, controller.current_plan())))
    else:
        raise ValueError(f"{name} neither trains nor searches: a learning curve needs a learner or a searcher")
    final = plan_of(controller, env, seed)
    points = marks(episodes, every)
    plans = [latest(current, mark) for mark in points] + [final]
    distinct = list({tuple(plan): plan for plan in plans}.values())
    rewards = dict(zip((tuple(p) for p in distinct), (r.reward for r in env.evaluate_plans([(seed, p) for p in distinct])),
                       strict=True))
    best = [(0, -np.inf)] + [(int(row["episodes"]), row["best_reward"]) for row in report.history]
    curve = [
        {"episodes": mark, "current_reward": rewards[tuple(plan)], "best_reward": max(latest(best, mark),
                                                                                      rewards[tuple(plans[0])])}
        for mark, plan in zip(points, plans, strict=False)
    ]
    return {
        "task": task, "controller": name, "target_sparsity": target, "seed": seed, "curve": curve,
        "final_plan": final.tolist(), "final_reward": rewards[tuple(final)], "episodes_spent": report.episodes,
        "seconds": time.perf_counter() - start,
    }


def reference_plans(task: str, target: float, seed: int, reward: str, reward_steps: int | None,
                    reward_orders: int = 1) -> dict[str, Any]:
    """The reference heuristics' plans on one instance and their rewards."""
    env = cell_env(task, target, seed, reward, reward_steps, "cpu", reward_orders)
    plans = {name: plan_of(agents.make_controller(name, env, seed=seed), env, seed) for name in REFERENCES}
    results = env.evaluate_plans([(seed, plan) for plan in plans.values()])
    return {name: (plan.tolist(), result.reward) for (name, plan), result in zip(plans.items(), results, strict=True)}


def run_curves(args: Args, curves: RecordFile) -> None:
    """Every missing curve, one job per worker process."""
    jobs = [(args.task, target, seed, name, args.episodes, args.every, args.reward, args.reward_steps,
             args.reward_orders) for target, seed in instances(args) for name in args.controllers
            if (name, target, seed) not in curves]
    with JobPool(max(1, min(args.workers, len(jobs)))) as pool:
        for _, record in pool.run(run_curve, jobs, "learning curves" if args.progress else None, unit="curve"):
            curves.add(stamped(record, settings_of(args, record["controller"]), code=code_fingerprint()))


def final_plans(args: Args, curves: RecordFile, references: dict[tuple[float, int], dict[str, Any]]
                ) -> list[dict[str, Any]]:
    """Plan records of every controller's final plan and of the references, once per training seed."""
    plans = []
    for target, seed in instances(args):
        named = {name: plan for name, (plan, _) in references[(target, seed)].items()}
        named.update({r["controller"]: r["final_plan"] for r in curves.records
                      if r["target_sparsity"] == target and r["seed"] == seed})
        plans += [stamped({"task": args.task, "controller": name, "target_sparsity": target, "seed": seed,
                           "train_seed": train_seed, "requested": plan}, settings_of(args, name), code=code_fingerprint())
                  for name, plan in named.items() for train_seed in args.final_seeds]
    return plans


def instance_accuracy(finals: Sequence[dict[str, Any]]) -> dict[tuple[str, float, int], float]:
    """(controller, target, seed) -> test accuracy in % averaged over training seeds."""
    runs: dict[tuple[str, float, int], list[float]] = defaultdict(list)
    for record in finals:
        runs[(record["controller"], record["target_sparsity"], record["seed"])].append(100 * record["test_accuracy"])
    return {key: float(np.mean(values)) for key, values in runs.items()}


def markdown(args: Args, curves: Sequence[dict[str, Any]], finals: Sequence[dict[str, Any]],
             references: dict[tuple[float, int], dict[str, Any]]) -> str:
    """Per target: proxy at the start and at the budget, final test accuracy, paired differences to each reference."""
    accuracy = instance_accuracy(finals)
    lines = []
    for target in args.targets:
        seeds = [seed for t, seed in instances(args) if t == target]
        lines += [f"**{args.task} at {target:g}** ({len(seeds)} instances, {args.episodes} reward evaluations, "
                  f"final accuracy over training seeds {list(args.final_seeds)})", "",
                  "| controller | proxy start | proxy current | proxy best | test acc. (%) | "
                  + " | ".join(f"Δ vs {name} (points) | ahead of {name}" for name in REFERENCES) + " |",
                  "|---" * (5 + 2 * len(REFERENCES)) + "|"]
        rows = [(name, None) for name in args.controllers] + [(name, name) for name in REFERENCES]
        for name, reference in rows:
            mine = {r["seed"]: r for r in curves if r["controller"] == name and r["target_sparsity"] == target}
            accs = [accuracy.get((name, target, seed)) for seed in seeds]
            if any(a is None for a in accs):
                continue
            if reference is None:
                if len(mine) < len(seeds):
                    continue
                proxy = [np.mean([mine[s]["curve"][0]["current_reward"] for s in seeds]),
                         np.mean([mine[s]["curve"][-1]["current_reward"] for s in seeds]),
                         np.mean([mine[s]["curve"][-1]["best_reward"] for s in seeds])]
                proxy_cells = [f"{value:.3f}" for value in proxy]
            else:
                proxy_cells = [f"{np.mean([references[(target, s)][name][1] for s in seeds]):.3f}", "–", "–"]
            mean_acc, half_acc = t_interval(accs)
            cells = [f"{mean_acc:.1f} ± {half_acc:.1f}" if np.isfinite(half_acc) else f"{mean_acc:.1f}"]
            for other in REFERENCES:
                differences = [accuracy[(name, target, s)] - accuracy[(other, target, s)] for s in seeds]
                cells += ["–", "–"] if other == name else [
                    signed_interval(*t_interval(differences)), f"{sum(d > 0 for d in differences)}/{len(differences)}"
                ]
            lines.append(f"| {name} | " + " | ".join(proxy_cells + cells) + " |")
        lines.append("")
    lines.append(
        f"Proxy: the reward ({args.reward}, K={args.reward_steps or 'task default'}, {args.reward_orders} "
        f"minibatch order{'s' if args.reward_orders > 1 else ''}) on the instance, mean over "
        "instances; start = the controller's plan before any evaluation, current = its current plan after the "
        "budget (learners' mean action, CMA-ES's mean, the others' best), best = the best plan evaluated. Test "
        "accuracy: the final plan (what act returns: the searchers' and MAPPO's best evaluated plan, SB3 PPO's mean "
        "action) fully trained, mean over training seeds per instance; ± is the half-width of a 95% t-interval over instances (of the mean, and of the "
        "paired difference); ahead = instances where the controller's mean accuracy is higher."
    )
    return "\n".join(lines) + "\n"


def save_plot(args: Args, curves: Sequence[dict[str, Any]], references: dict[tuple[float, int], dict[str, Any]],
              path: Path) -> None:
    """Current-plan and best-so-far proxy against evaluations, minus global SNIP's proxy on the same instance
    (paired: instances differ in their reward level): mean over instances, 95% t-interval bars."""
    base = REFERENCES[0]
    panels = []
    for target in args.targets:
        seeds = [seed for t, seed in instances(args) if t == target]
        for key, title in (("current_reward", "current plan"), ("best_reward", "best plan so far")):
            series = []
            for name in args.controllers:
                mine = {r["seed"]: r for r in curves if r["controller"] == name and r["target_sparsity"] == target}
                if not all(seed in mine for seed in seeds):
                    continue
                points = [row["episodes"] for row in mine[seeds[0]]["curve"]]
                columns = np.array([[row[key] - references[(target, seed)][base][1] for row in mine[seed]["curve"]]
                                    for seed in seeds])
                intervals = [t_interval(column) for column in columns.T]
                series.append(Series(name, points, [m for m, _ in intervals],
                                     yerr=[h if np.isfinite(h) else 0.0 for _, h in intervals]))
            lines = tuple(
                (f"{name} (mean)", float(np.mean([references[(target, s)][name][1] - references[(target, s)][base][1]
                                                  for s in seeds])))
                for name in REFERENCES
            )
            panels.append(Panel(f"{args.task} at {target:g}: {title}", "reward evaluations spent",
                                f"proxy reward minus {base}'s (nats)", series, hlines=lines))
    save_lines(path, panels, legend_outside=True,
               note=f"proxy ({args.reward}) minus {base}'s plan's on the same instance; mean over instances ("
                    + ", ".join(f"{sum(t == target for t, _ in instances(args))} at {target:g}" for target in args.targets)
                    + "), bars: 95% t-interval over instances; dashed: the reference heuristics")


def train_finals(args: Args, curves: RecordFile, finals: RecordFile,
                 references: dict[tuple[float, int], dict[str, Any]]) -> str:
    """Every missing full training of a final plan; with the best known plans' training seeds, offers them to the
    run's best known plans. Returns the report's line on those (empty otherwise)."""
    plans = [plan for plan in final_plans(args, curves, references) if finals.key(plan) not in finals]
    bar = tqdm(total=len(plans), desc="full trainings", unit="training", disable=not args.progress)
    run_finals(plans, finals, args.workers, args.final_steps, "cpu", lambda _: bar.update(1))
    bar.close()
    if tuple(args.final_seeds) != TRAIN_SEEDS:
        return ""
    best = BestKnown(args.best_known or args.out / "best_known.jsonl", base=REFERENCE)
    changed = best.update([{**r, "suite": "learning_curves"} for r in finals.records],
                          {args.task: schedule_of(args.task, args.final_steps)})
    return f"\nBest known plans ({best.path}): {len(changed)} cells improved by these final plans.\n"


def main(args: Args) -> str:
    """Run (or resume) the study, or with ``report_only`` only rebuild its report; prints and returns the report."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    curves, finals = open_records(
        args, [(args.out / "learning_curves.jsonl", CURVE_KEY), (args.out / "learning_curves_finals.jsonl", FINAL_KEY)],
        lambda record: settings_of(args, record["controller"]),
        "start again with --fresh, or write to another folder with --out")
    if not args.report_only:
        run_curves(args, curves)
    references = {(t, s): reference_plans(args.task, t, s, args.reward, args.reward_steps, args.reward_orders)
                  for t, s in instances(args)}
    best_known = "" if args.report_only else train_finals(args, curves, finals, references)
    text = (markdown(args, curves.records, finals.records, references) + best_known
            + f"\nWall time {(time.perf_counter() - start) / 60:.1f} min on this machine (CPU, {args.workers} workers).\n")
    publish(args.out, "learning_curves", text, lambda path: save_plot(args, curves.records, references, path))
    print(text)
    return text


if __name__ == "__main__":
    main(tyro.cli(Args))
