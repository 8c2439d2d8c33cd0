"""The benchmark's Markdown table and accuracy-vs-sparsity plot, from the JSONL records alone."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import fixed_target, kind_of
from benchmarks.intervals import signed_interval, t_interval
from benchmarks.plots import Panel, Series, save_lines
from benchmarks.suites import CHECKPOINTS, PUBLISHED, Suite
from pruning_env.registry import get_task

ZOOM_POINTS = 8.0
"""Height of the zoomed panel below the best plan at the hardest target, in accuracy points."""


def recorded_kinds(records: Sequence[dict[str, Any]]) -> dict[str, str]:
    """controller -> its kind (``agents.base.KINDS``) as recorded with its plans (records made before kinds were
    recorded are left to ``agents.base.kind_of``'s registry lookup)."""
    return {record["controller"]: record["kind"] for record in records if "kind" in record}


def rows_table(suite: Suite, records: Sequence[dict[str, Any]]) -> str:
    """Every row's kind, reward evaluations and whether its plans were read early (``on_update``), from the
    records: what each controller was given."""
    kinds = recorded_kinds(records)
    lines = ["| row | kind | reward evaluations | plans read at 25% / 50% of the budget |", "|---|---|---|---|"]
    for controller in suite.controllers:
        mine = [r for r in records if r["controller"] == controller]
        kind = kind_of(controller, kinds)
        budget = {"learner": f"{suite.episodes_per_seed} per seed, shared by the targets (training), then none",
                  "searcher": f"{suite.search_episodes_per_cell} per cell"}.get(kind, "none")
        probes = {r.get("probe") for r in mine}
        early = ("–" if kind not in ("learner", "searcher") else "yes (on_update)" if probes == {True}
                 else "no: its train/search takes no on_update, read at 100% only" if probes == {False} else "–")
        lines.append(f"| {controller} | {kind} | {budget} | {early} |")
    return "\n".join(lines) + "\n"


def seed_accuracies(records: Sequence[dict[str, Any]], field: str = "test_accuracy"
                    ) -> dict[tuple[str, str, float], dict[int, float]]:
    """(task, controller, target) -> {seed: the records' ``field`` (a test accuracy) in %}; records without it are
    left out."""
    runs: dict[tuple[str, str, float], dict[int, float]] = defaultdict(dict)
    for record in records:
        if record.get(field) is not None:
            runs[(record["task"], record["controller"], record["target_sparsity"])][record["seed"]] = (
                100 * record[field])
    return runs


def clearly_best(runs: dict[str, dict[int, float]]) -> str | None:
    """The controller whose accuracy is ahead of every other's beyond the 95% t-interval of their paired
    difference over seeds (None when no controller is)."""
    if len(runs) < 2:
        return None
    top = max(runs, key=lambda name: np.mean(list(runs[name].values())))
    for name, other in runs.items():
        seeds = sorted(set(runs[top]) & set(other))
        if name == top:
            continue
        mean, half = t_interval([runs[top][seed] - other[seed] for seed in seeds])
        if not (np.isfinite(half) and mean - half > 0):
            return None
    return top


def markdown_table(suite: Suite, records: Sequence[dict[str, Any]], field: str = "test_accuracy",
                   title: str = "") -> str:
    """Mean ± the half-width of a 95% t-interval of test accuracy (%; the records' ``field``) over seeds per
    controller and sparsity; in bold the controller of a column that is ahead of every other beyond the interval of
    their paired difference. ``title`` follows the task's name in each table's header."""
    values = seed_accuracies(records, field)
    lines = []
    for task in suite.tasks:
        header = f"| {task}{title} | " + " | ".join(f"{s:g}" for s in suite.sparsities) + " |"
        lines += [header, "|---" * (len(suite.sparsities) + 1) + "|"]
        bold = {s: clearly_best({c: v for (t, c, sp), v in values.items()
                                 if t == task and sp == s and fixed_target(c) is None})
                for s in suite.sparsities}
        for controller in suite.controllers:
            cells = []
            fixed = fixed_target(controller)
            for sparsity in suite.sparsities:
                runs = list(values.get((task, controller, sparsity if fixed is None else fixed), {}).values())
                if not runs:
                    cells.append("–")
                    continue
                mean, half = t_interval(runs)
                text = f"{mean:.1f}" + (f" ± {half:.1f}" if np.isfinite(half) else "")
                cells.append(f"**{text}**" if fixed is None and bold[sparsity] == controller else text)
            lines.append(f"| {controller} | " + " | ".join(cells) + " |")
        published = [PUBLISHED.get((task, s)) for s in suite.sparsities]
        if any(published):
            cells = [f"{p[1]:.1f} ({p[0]})" if p else "" for p in published]
            lines.append("| published | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def paired_table(suite: Suite, records: Sequence[dict[str, Any]], kinds: Mapping[str, str] | None = None,
                 field: str = "test_accuracy", title: str = "",
                 oracle: Mapping[tuple[str, float, int], float] | None = None) -> str:
    """Every searcher's and learner's accuracy (the records' ``field``) minus the best heuristic's (the one with the
    highest mean in that column), paired over seeds: mean ± the half-width of a 95% t-interval, and the seeds where
    it is ahead; ``title`` follows the task's name. Kinds as recorded (``recorded_kinds``), else from the registry.

    ``oracle``: (task, target, seed) -> the oracle plan's accuracy (%) read the same way (``benchmarks.studies.oracle``);
    where given, an ``oracle`` row, and each row's share of the oracle's headroom on the seeds both have (its
    differences summed over the oracle's)."""
    runs = seed_accuracies(records, field)
    if oracle:
        for (task, target, seed), accuracy in oracle.items():
            runs[(task, "oracle", target)][seed] = accuracy
    rows = [c for c in suite.controllers if kind_of(c, kinds) in ("searcher", "learner")] + (["oracle"] if oracle else [])
    heuristics = [c for c in suite.controllers if kind_of(c, kinds) == "heuristic"]
    lines = []
    for task in suite.tasks:
        best = {s: max((h for h in heuristics if (task, h, s) in runs),
                       key=lambda h: np.mean(list(runs[(task, h, s)].values())), default=None)
                for s in suite.sparsities}
        if not rows or not any(best.values()):
            continue
        lines += [f"| {task}{title}: Δ vs best heuristic (points) | "
                  + " | ".join(f"{s:g} ({best[s]})" for s in suite.sparsities) + " |",
                  "|---" * (len(suite.sparsities) + 1) + "|"]
        for controller in rows:
            cells = []
            for sparsity in suite.sparsities:
                mine, theirs = runs.get((task, controller, sparsity), {}), runs.get((task, best[sparsity], sparsity), {})
                seeds = sorted(set(mine) & set(theirs))
                if not seeds:
                    cells.append("–")
                    continue
                differences = [mine[seed] - theirs[seed] for seed in seeds]
                wins = sum(difference > 0 for difference in differences)
                share = ""
                headroom = runs.get((task, "oracle", sparsity), {})
                shared = [seed for seed in seeds if seed in headroom]
                if controller != "oracle" and shared and sum(headroom[s] - theirs[s] for s in shared) > 0:
                    captured = sum(mine[s] - theirs[s] for s in shared) / sum(headroom[s] - theirs[s] for s in shared)
                    share = f"; {captured:.0%} of the oracle's"
                cells.append(f"{signed_interval(*t_interval(differences))} ({wins}/{len(seeds)} ahead{share})")
            lines.append(f"| {controller} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def caption(suite: Suite, device: str, seconds: float, kinds: Mapping[str, str] | None = None) -> str:
    """What the table shows and the budgets behind it (learners and searchers by their kind)."""
    learners = ", ".join(c for c in suite.controllers if kind_of(c, kinds) == "learner")
    searchers = ", ".join(c for c in suite.controllers if kind_of(c, kinds) == "searcher")
    trained = [get_task(task) for task in suite.tasks if get_task(task).prune_at == "trained"]
    measured = ("after full training of the pruned initialization" if not trained else
                f"after fine-tuning the pruned trained network ({trained[0].evaluation_train.steps} steps, masks held;"
                " the zero-shot table below reads it before)" if len(trained) == len(suite.tasks) else
                "after full training of the pruned initialization, or on a trained task after its fine-tuning")
    return (
        f"Test accuracy (%) {measured}, mean ± half-width of a 95% t-interval "
        f"over seeds {list(suite.seeds)}; in bold a controller ahead of every other of its column beyond the 95% "
        f"interval of their difference paired over seeds (none where no lead is that clear); dense = unpruned; er and "
        f"erk coincide on networks without kernels (MLPs), where ER and ERK are the same formula. Learning controllers ({learners}) "
        f"train once per seed on that seed's initialization over targets in [{min(suite.sparsities)}, "
        f"{max(suite.sparsities)}] with {suite.episodes_per_seed} reward evaluations (reward {suite.reward}, "
        f"K={suite.reward_steps or 'task default'}); the searchers "
        f"({searchers}) get {suite.search_episodes_per_cell} per "
        f"cell (the same total per seed{compute_note(suite)}). Device {device}; wall time {seconds / 60:.1f} min. Below: each "
        "searcher's and learner's difference to the best heuristic of the column, paired over seeds (mean ± "
        "half-width of a 95% t-interval over seeds)."
    )


def compute_note(suite: Suite) -> str:
    """The caption's words on the rows whose budget is compute (``budget_unit``), empty without any."""
    import agents
    from agents.base import declaration_of

    names = [c for c in suite.controllers if c in agents.CONTROLLERS
             and declaration_of(agents.CONTROLLERS[c]).budget_unit == "compute"]
    return (f"; {', '.join(names)}: the same compute, {suite.search_episodes_per_cell} times one evaluation's "
            "sample-steps, spent at the fidelities it picks") if names else ""


def save_plot(suite: Suite, records: Sequence[dict[str, Any]], path: Path) -> None:
    """Test accuracy vs target per task, one line per controller with 95% t-interval bars over seeds (logit x axis), and a second
    panel zoomed on the competitive band (within ``ZOOM_POINTS`` of the best plan at the hardest target); a
    controller with a fixed target (dense) as a dashed horizontal line."""
    values = {key: list(runs.values()) for key, runs in seed_accuracies(records).items()}
    panels = []
    for task in suite.tasks:
        series, lines = [], []
        for controller in suite.controllers:
            fixed = fixed_target(controller)
            if fixed is not None:
                if (task, controller, fixed) in values:
                    lines.append((controller, float(np.mean(values[(task, controller, fixed)]))))
                continue
            points = [(s, values[(task, controller, s)]) for s in suite.sparsities if (task, controller, s) in values]
            if points:
                series.append(Series(controller, [s for s, _ in points], [float(np.mean(v)) for _, v in points],
                                     yerr=[np.nan_to_num(t_interval(v)[1]) for _, v in points]))
        if not series:
            continue
        hardest = max(suite.sparsities)
        top = max(y for line in series for x, y in zip(line.x, line.y, strict=True) if x == hardest)
        ceiling = max([*(max(line.y) for line in series), *(value for _, value in lines)])
        seeds = len(suite.seeds)
        common = dict(xscale="logit", xticks=tuple(suite.sparsities), hlines=tuple(lines))
        label = "global sparsity (fraction of weights removed, logit scale)"
        panels.append(Panel(f"{task}: all controllers ({seeds} seed{'s' if seeds > 1 else ''})", label,
                            "test accuracy after full training (%)", series, **common))
        panels.append(Panel(f"{task}: zoom on the competitive band", label, "test accuracy (%)", series,
                            ylim=(top - ZOOM_POINTS, ceiling + 0.5), **common))
    note = (f"Error bars: 95% t-interval of the mean over seeds {list(suite.seeds)}. er and erk coincide on MLPs "
            "(no kernels: the same allocation). Right: the band within "
            f"{ZOOM_POINTS:g} points of the best plan at {max(suite.sparsities):g}; lines below it leave the panel.")
    save_lines(path, panels, legend_outside=True, note=note)


def efficiency_table(suite: Suite, records: Sequence[dict[str, Any]], checkpoints: Sequence[dict[str, Any]]) -> str:
    """Sample efficiency: test accuracy (%, mean ± 95% t-interval over seeds) of each learner's and searcher's
    plan at every checkpoint fraction of its evaluation budget (the same run read at 25%, 50% and 100%)."""
    curves = efficiency_curves(suite, records, checkpoints)
    kinds = recorded_kinds(records)
    unprobed = sorted({r["controller"] for r in records if r.get("probe") is False
                       and kind_of(r["controller"], kinds) in ("searcher", "learner")})
    if not curves and not unprobed:
        return ""
    fractions = sorted({fraction for curve in curves.values() for fraction in curve} or {*CHECKPOINTS, 1.0})
    lines = []
    for task in suite.tasks:
        rows = [(controller, target) for (t, controller, target) in curves if t == task]
        if not rows and not unprobed:
            continue
        lines += [f"| {task}: sample efficiency | target | " + " | ".join(f"{f:.0%} of budget" for f in fractions)
                  + " |", "|---" * (len(fractions) + 2) + "|"]
        for controller, target in sorted(rows, key=lambda row: (row[1], row[0])):
            curve = curves[(task, controller, target)]
            cells = []
            for fraction in fractions:
                mean, half = t_interval(list(curve.get(fraction, {}).values()))
                cells.append("–" if fraction not in curve else
                             f"{mean:.1f}" + (f" ± {half:.1f}" if np.isfinite(half) else ""))
            lines.append(f"| {controller} | {target:g} | " + " | ".join(cells) + " |")
        for controller in unprobed:
            lines.append(f"| {controller} (no on_update: read at 100% only) | | " + " | ".join("–" for _ in fractions)
                         + " |")
        lines.append("")
    return "\n".join(lines)


def efficiency_curves(suite: Suite, records: Sequence[dict[str, Any]], checkpoints: Sequence[dict[str, Any]]
                      ) -> dict[tuple[str, str, float], dict[float, dict[int, float]]]:
    """(task, controller, target) -> {budget fraction: {seed: test accuracy in %}} for the controllers with
    checkpoints; fraction 1.0 is the suite's own cell."""
    curves: dict[tuple[str, str, float], dict[float, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for record in checkpoints:
        key = (record["task"], record["controller"], record["target_sparsity"])
        curves[key][record["budget_fraction"]][record["seed"]] = 100 * record["test_accuracy"]
    for (task, controller, target), runs in seed_accuracies(records).items():
        if (task, controller, target) in curves:
            curves[(task, controller, target)][1.0] = runs
    return curves


def save_efficiency_plot(suite: Suite, records: Sequence[dict[str, Any]], checkpoints: Sequence[dict[str, Any]],
                         path: Path) -> bool:
    """Accuracy vs fraction of the evaluation budget per (task, target), one line per learner or searcher (mean ±
    95% t-interval over seeds), the best heuristic's mean dashed; False (no file) when there are no checkpoints."""
    curves = efficiency_curves(suite, records, checkpoints)
    values = seed_accuracies(records)
    panels = []
    for task in suite.tasks:
        for target in suite.sparsities:
            series = []
            for (t, controller, s), curve in curves.items():
                if (t, s) != (task, target):
                    continue
                fractions = sorted(curve)
                intervals = [t_interval(list(curve[f].values())) for f in fractions]
                series.append(Series(controller, fractions, [m for m, _ in intervals],
                                     yerr=[h if np.isfinite(h) else 0.0 for _, h in intervals]))
            kinds = recorded_kinds(records)
            heuristics = {h: np.mean(list(values[(task, h, target)].values())) for h in suite.controllers
                          if kind_of(h, kinds) == "heuristic" and (task, h, target) in values}
            if series:
                best = max(heuristics, key=heuristics.__getitem__, default=None)
                lines = ((f"{best} (best heuristic)", float(heuristics[best])),) if best else ()
                panels.append(Panel(f"{task} at {target:g}", "fraction of the evaluation budget spent",
                                    "test accuracy after full training (%)", series, xticks=(0.25, 0.5, 1.0),
                                    hlines=lines))
    if not panels:
        return False
    save_lines(path, panels, legend_outside=True,
               note=f"One run per seed read at each fraction (seeds {list(suite.seeds)}); bars: 95% t-interval.")
    return True


def weight_sparsity_table(suite: Suite, records: Sequence[dict[str, Any]]) -> str:
    """Under a FLOPs budget: the weight sparsity (%) each controller's plans reached, mean over seeds, per task
    and target (the MACs removed are the target itself)."""
    tasks = [task for task in suite.tasks if get_task(task).budget == "flops"]
    return reached_table(suite, records, tasks, "global_sparsity", "weight sparsity reached (%)", "of the MACs", 1)


def effective_sparsity_table(suite: Suite, records: Sequence[dict[str, Any]]) -> str:
    """The effective sparsity (%) each controller's plans reached beside the nominal target, mean over seeds: the
    weights pruned or dead (on no input-output path through kept weights, ``pruning_env.effective``)."""
    return reached_table(suite, records, list(suite.tasks), "effective_sparsity", "effective sparsity (%)", "nominal", 2)


def reached_table(suite: Suite, records: Sequence[dict[str, Any]], tasks: Sequence[str], field: str, title: str,
                  column: str, digits: int) -> str:
    """Per task of ``tasks``: the mean over seeds of ``field`` (a fraction, shown in % with ``digits`` decimals) of
    each controller's plans at every target (columns ``<target> <column>``); records without the field are left
    out."""
    lines = []
    for task in tasks:
        reached: dict[tuple[str, float], list[float]] = defaultdict(list)
        for record in records:
            if record["task"] == task and record.get(field) is not None:
                reached[(record["controller"], record["target_sparsity"])].append(100 * record[field])
        if not reached:
            continue
        lines += [f"| {task}: {title} | " + " | ".join(f"{s:g} {column}" for s in suite.sparsities) + " |",
                  "|---" * (len(suite.sparsities) + 1) + "|"]
        for controller in suite.controllers:
            if fixed_target(controller) is None and any((controller, s) in reached for s in suite.sparsities):
                lines.append(f"| {controller} | " + " | ".join(
                    f"{np.mean(reached[(controller, s)]):.{digits}f}" if (controller, s) in reached else "–"
                    for s in suite.sparsities) + " |")
        lines.append("")
    return "\n".join(lines)
