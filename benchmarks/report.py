"""The benchmark's Markdown table and accuracy-vs-sparsity plot, from the JSONL records alone."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.suites import DENSE, PUBLISHED, Suite  # noqa: E402


def accuracies(records: Sequence[dict[str, Any]]) -> dict[tuple[str, str, float], list[float]]:
    """(task, controller, sparsity) -> test accuracies (in %) over seeds; dense rows have sparsity 0."""
    table: dict[tuple[str, str, float], list[float]] = defaultdict(list)
    for record in records:
        table[(record["task"], record["controller"], record["sparsity"])].append(100 * record["test_accuracy"])
    return table


def markdown_table(suite: Suite, records: Sequence[dict[str, Any]]) -> str:
    """Mean ± std of test accuracy (%) over seeds per controller and sparsity, best per column in bold."""
    values = accuracies(records)
    lines = []
    for task in suite.tasks:
        header = f"| {task} | " + " | ".join(f"{s:g}" for s in suite.sparsities) + " |"
        lines += [header, "|---" * (len(suite.sparsities) + 1) + "|"]
        best = {
            s: max((np.mean(v) for (t, c, sp), v in values.items() if t == task and sp == s and c != DENSE), default=None)
            for s in suite.sparsities
        }
        for controller in suite.controllers:
            cells = []
            for sparsity in suite.sparsities:
                runs = values.get((task, controller, 0.0 if controller == DENSE else sparsity), [])
                if not runs:
                    cells.append("–")
                    continue
                text = f"{np.mean(runs):.1f} ± {np.std(runs):.1f}"
                is_best = controller != DENSE and best[sparsity] is not None and np.mean(runs) == best[sparsity]
                cells.append(f"**{text}**" if is_best else text)
            lines.append(f"| {controller} | " + " | ".join(cells) + " |")
        published = [PUBLISHED.get((task, s)) for s in suite.sparsities]
        if any(published):
            cells = [f"{p[1]:.1f} ({p[0]})" if p else "" for p in published]
            lines.append("| published | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def caption(suite: Suite, device: str, seconds: float) -> str:
    """What the table shows and the budgets behind it."""
    return (
        f"Test accuracy (%) after full training of the pruned initialization, mean ± std over seeds "
        f"{list(suite.seeds)}; best per column in bold; dense = unpruned. Learning controllers ({', '.join(c for c in suite.controllers if c in ('sb3_ppo', 'mappo', 'mappo_ar'))}) "
        f"train once per seed on that seed's initialization over targets in [{min(suite.sparsities)}, "
        f"{max(suite.sparsities)}] with {suite.rl_episodes} reward evaluations (reward {suite.reward}, "
        f"K={suite.reward_steps or 'task default'}); random search gets {suite.search_episodes_per_cell} per cell "
        f"(the same total per seed). Device {device}; wall time {seconds / 60:.1f} min."
    )


def save_plot(suite: Suite, records: Sequence[dict[str, Any]], path: Path) -> None:
    """Test accuracy vs sparsity per task, one line per controller with ± std bars; dense as a dashed line."""
    values = accuracies(records)
    fig, axes = plt.subplots(1, len(suite.tasks), figsize=(7.5 * len(suite.tasks), 5.2), squeeze=False)
    colors = plt.colormaps["tab20"](np.linspace(0, 1, len(suite.controllers)))
    for ax, task in zip(axes[0], suite.tasks, strict=True):
        for color, controller in zip(colors, suite.controllers, strict=True):
            if controller == DENSE:
                dense = values.get((task, DENSE, 0.0))
                if dense:
                    ax.axhline(np.mean(dense), color="black", linestyle="--", linewidth=1, label="dense")
                continue
            points = [(s, values[(task, controller, s)]) for s in suite.sparsities if (task, controller, s) in values]
            if not points:
                continue
            xs = [s for s, _ in points]
            ax.errorbar(
                xs, [np.mean(v) for _, v in points], yerr=[np.std(v) for _, v in points], label=controller,
                color=color, marker="o", markersize=3, capsize=2, linewidth=1.2,
            )
        ax.set_xscale("logit")
        ax.set_xticks(suite.sparsities, [f"{s:g}" for s in suite.sparsities])
        ax.minorticks_off()
        ax.set_xlabel("global sparsity (fraction of weights removed, logit scale)")
        ax.set_ylabel("test accuracy after full training (%)")
        ax.set_title(f"{task}: accuracy vs sparsity ({len(suite.seeds)} seed{'s' if len(suite.seeds) > 1 else ''})")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
