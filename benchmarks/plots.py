"""Generic PNG plots for the benchmarks: panels of scatter points or lines, one colour per series.

    save_scatter(path, [Panel("K=100", "proxy reward", "final test accuracy", [Series("uniform", xs, ys)])])

Figures are drawn with matplotlib's object API (``Figure``, no pyplot state), so no GUI backend is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

PANEL_SIZE = (5.0, 4.0)
"""Width and height of one panel in inches."""


@dataclass(frozen=True)
class Series:
    """One labelled set of points."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    point_labels: Sequence[str] | None = None
    """Optional text written next to each point (e.g. a K value or a plan name)."""


@dataclass(frozen=True)
class Panel:
    """One subplot: its title, axis labels and series."""

    title: str
    xlabel: str
    ylabel: str
    series: Sequence[Series]
    xlog: bool = False
    """Logarithmic x axis."""


def save_scatter(path: str | Path, panels: Sequence[Panel], title: str | None = None) -> Path:
    """Write ``panels`` side by side as scatter plots to the PNG ``path``; returns the path."""
    return _save(path, panels, title, lines=False)


def save_lines(path: str | Path, panels: Sequence[Panel], title: str | None = None) -> Path:
    """Write ``panels`` side by side as line plots with markers to the PNG ``path``; returns the path."""
    return _save(path, panels, title, lines=True)


def _save(path: str | Path, panels: Sequence[Panel], title: str | None, lines: bool) -> Path:
    if not panels:
        raise ValueError("panels must hold at least one Panel")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(PANEL_SIZE[0] * len(panels), PANEL_SIZE[1] + (0.4 if title else 0.0)), layout="constrained")
    for axes, panel in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        _draw(axes, panel, lines)
    if title:
        figure.suptitle(title)
    figure.savefig(path, dpi=120)
    return path


def _draw(axes: Axes, panel: Panel, lines: bool) -> None:
    for series in panel.series:
        if lines:
            (artist,) = axes.plot(series.x, series.y, marker="o", label=series.label)
        else:
            artist = axes.scatter(series.x, series.y, s=18, alpha=0.75, label=series.label)
        if series.point_labels is not None:
            colour = artist.get_color() if lines else artist.get_facecolor()[0]
            for x, y, text in zip(series.x, series.y, series.point_labels, strict=True):
                axes.annotate(text, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=colour)
    if panel.xlog:
        axes.set_xscale("log")
        axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes.xaxis.set_minor_formatter(NullFormatter())
    else:
        axes.xaxis.set_major_locator(MaxNLocator(6))
    axes.set_title(panel.title, fontsize=10)
    axes.set_xlabel(panel.xlabel)
    axes.set_ylabel(panel.ylabel)
    axes.grid(alpha=0.3)
    if any(series.label for series in panel.series):
        axes.legend(fontsize=8)
