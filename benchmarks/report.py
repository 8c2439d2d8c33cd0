"""The benchmark's Markdown table and accuracy-vs-sparsity plot, from the JSONL records alone."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import fixed_target
from benchmarks.intervals import signed_interval, t_interval
from benchmarks.suites import BENCHMARL, HEURISTICS, LEARNERS, PUBLISHED, SEARCHERS, Suite
from pruning_env.plots import Panel, Series, save_lines


def accuracies(records: Sequence[dict[str, Any]]) -> dict[tuple[str, str, float], list[float]]:
    """(task, controller, target) -> test accuracies (in %) over seeds."""
    table: dict[tuple[str, str, float], list[float]] = defaultdict(list)
    for record in records:
        table[(record["task"], record["controller"], record["target_sparsity"])].append(100 * record["test_accuracy"])
    return table


ZOOM_POINTS = 8.0
"""Height of the zoomed panel below the best plan at the hardest target, in accuracy points."""


def markdown_table(suite: Suite, records: Sequence[dict[str, Any]]) -> str:
    """Mean ± std of test accuracy (%) over seeds per controller and sparsity, best per column in bold."""
    values = accuracies(records)
    lines = []
    for task in suite.tasks:
        header = f"| {task} | " + " | ".join(f"{s:g}" for s in suite.sparsities) + " |"
        lines += [header, "|---" * (len(suite.sparsities) + 1) + "|"]
        best = {
            s: max((np.mean(v) for (t, c, sp), v in values.items() if t == task and sp == s and fixed_target(c) is None),
                   default=None)
            for s in suite.sparsities
        }
        ties = {  # how many controllers share the best mean, to the shown digit: a tie is bold for none
            s: sum(1 for (t, c, sp), v in values.items() if t == task and sp == s and fixed_target(c) is None
                   and best[s] is not None and round(float(np.mean(v)), 1) == round(float(best[s]), 1))
            for s in suite.sparsities
        }
        for controller in suite.controllers:
            cells = []
            fixed = fixed_target(controller)
            for sparsity in suite.sparsities:
                runs = values.get((task, controller, sparsity if fixed is None else fixed), [])
                if not runs:
                    cells.append("–")
                    continue
                text = f"{np.mean(runs):.1f}" + (f" ± {np.std(runs):.1f}" if len(runs) > 1 else "")
                is_best = fixed is None and best[sparsity] is not None and np.mean(runs) == best[sparsity]
                is_best = is_best and ties[sparsity] == 1
                cells.append(f"**{text}**" if is_best else text)
            lines.append(f"| {controller} | " + " | ".join(cells) + " |")
        published = [PUBLISHED.get((task, s)) for s in suite.sparsities]
        if any(published):
            cells = [f"{p[1]:.1f} ({p[0]})" if p else "" for p in published]
            lines.append("| published | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def paired_table(suite: Suite, records: Sequence[dict[str, Any]]) -> str:
    """Every searcher's and learner's accuracy minus the best heuristic's (the one with the highest mean in that
    column), paired over seeds: mean ± the half-width of a 95% t-interval, and the seeds where it is ahead."""
    runs: dict[tuple[str, str, float], dict[int, float]] = defaultdict(dict)
    for record in records:
        runs[(record["task"], record["controller"], record["target_sparsity"])][record["seed"]] = (
            100 * record["test_accuracy"])
    rows = [c for c in suite.controllers if c not in HEURISTICS and fixed_target(c) is None]
    lines = []
    for task in suite.tasks:
        best = {s: max((h for h in HEURISTICS if (task, h, s) in runs),
                       key=lambda h: np.mean(list(runs[(task, h, s)].values())), default=None)
                for s in suite.sparsities}
        if not rows or not any(best.values()):
            continue
        lines += [f"| {task}: Δ vs best heuristic (points) | "
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
                cells.append(f"{signed_interval(*t_interval(differences))} ({wins}/{len(seeds)} ahead)")
            lines.append(f"| {controller} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def caption(suite: Suite, device: str, seconds: float) -> str:
    """What the table shows and the budgets behind it."""
    return (
        f"Test accuracy (%) after full training of the pruned initialization, mean ± std over seeds "
        f"{list(suite.seeds)}; the best of a column in bold (none where the best is tied); dense = unpruned; er and "
        f"erk coincide on networks without kernels (MLPs), where ER and ERK are the same formula. Learning controllers ({', '.join(c for c in suite.controllers if c in (*LEARNERS, *BENCHMARL))}) "
        f"train once per seed on that seed's initialization over targets in [{min(suite.sparsities)}, "
        f"{max(suite.sparsities)}] with {suite.rl_episodes} reward evaluations (reward {suite.reward}, "
        f"K={suite.reward_steps or 'task default'}); the searchers "
        f"({', '.join(c for c in suite.controllers if c in SEARCHERS)}) get {suite.search_episodes_per_cell} per "
        f"cell (the same total per seed). Device {device}; wall time {seconds / 60:.1f} min. Below: each "
        "searcher's and learner's difference to the best heuristic of the column, paired over seeds (mean ± "
        "half-width of a 95% t-interval over seeds)."
    )


def save_plot(suite: Suite, records: Sequence[dict[str, Any]], path: Path) -> None:
    """Test accuracy vs target per task, one line per controller with ± std bars (logit x axis), and a second
    panel zoomed on the competitive band (within ``ZOOM_POINTS`` of the best plan at the hardest target); a
    controller with a fixed target (dense) as a dashed horizontal line."""
    values = accuracies(records)
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
                                     yerr=[float(np.std(v)) for _, v in points]))
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
    note = (f"Error bars: ± one standard deviation over seeds {list(suite.seeds)}. er and erk coincide on MLPs "
            "(no kernels: the same allocation). Right: the band within "
            f"{ZOOM_POINTS:g} points of the best plan at {max(suite.sparsities):g}; lines below it leave the panel.")
    save_lines(path, panels, legend_outside=True, note=note)
