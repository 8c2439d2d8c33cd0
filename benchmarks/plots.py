"""The one plotting module: PNG panels of scatter points or lines, one colour per series, for every benchmark and
the MAPPO trainer's learning curve.

    save_scatter(path, [Panel("K=100", "proxy reward", "final test accuracy", [Series("uniform", xs, ys)])])

Figures are drawn with matplotlib's object API (``Figure``, no pyplot state), so no GUI backend is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn: 0.5-1 s of imports a worker process never needs
    from matplotlib.axes import Axes

PANEL_SIZE = (5.0, 4.0)
"""Width and height of one panel in inches."""
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p", "d", "8")
"""One marker per series (in order), so series stay apart where colours are alike or lines overlap."""


@dataclass(frozen=True)
class Series:
    """One labelled set of points."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    point_labels: Sequence[str] | None = None
    """Optional text written next to each point (e.g. a K value or a plan name)."""
    yerr: Sequence[float] | None = None
    """Optional symmetric error bar of each point (lines only)."""
    linestyle: str = "-"
    """Matplotlib line style (lines only), e.g. "--" for a second quantity of the same series."""
    markers: bool = True
    """Draw a marker at every point (lines only; off for dense curves such as a performance profile)."""
    band: tuple[Sequence[float], Sequence[float]] | None = None
    """Optional (lower, upper) bounds of each point, shaded in the series' colour (lines only): an interval that
    need not be symmetric, e.g. a bootstrap confidence band."""


@dataclass(frozen=True)
class Panel:
    """One subplot: its title, axis labels and series."""

    title: str
    xlabel: str
    ylabel: str
    series: Sequence[Series]
    xscale: str = "linear"
    """"linear", "log" or "logit" (sparsities near 1)."""
    xticks: tuple[float, ...] | None = None
    """Tick positions of the x axis (labelled with their values); None: automatic."""
    hlines: tuple[tuple[str, float], ...] = ()
    """(label, y) reference lines drawn dashed across the panel."""
    ylim: tuple[float, float] | None = None
    """Limits of the y axis (a zoom); None: automatic."""
    xlim: tuple[float, float] | None = None
    """Limits of the x axis (a zoom); None: automatic."""


def save_scatter(path: str | Path, panels: Sequence[Panel], title: str | None = None) -> Path:
    """Write ``panels`` side by side as scatter plots to the PNG ``path``; returns the path."""
    return _save(path, panels, title, lines=False)


def save_lines(path: str | Path, panels: Sequence[Panel], title: str | None = None,
               legend_outside: bool = False, note: str | None = None) -> Path:
    """Write ``panels`` side by side as line plots with markers (and error bars where given) to the PNG ``path``;
    ``legend_outside`` puts one legend of the first panel right of the figure; ``note`` is printed under the
    panels (what the error bars are, which series coincide). Returns the path."""
    return _save(path, panels, title, lines=True, legend_outside=legend_outside, note=note)


def _save(path: str | Path, panels: Sequence[Panel], title: str | None, lines: bool,
          legend_outside: bool = False, note: str | None = None) -> Path:
    if not panels:
        raise ValueError("panels must hold at least one Panel")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width = PANEL_SIZE[0] * len(panels) + (1.8 if legend_outside else 0.0)
    height = PANEL_SIZE[1] + (0.4 if title else 0.0) + (0.3 * (1 + note.count("\n")) if note else 0.0)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    all_axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for axes, panel in zip(all_axes, panels, strict=True):
        _draw(axes, panel, lines, legend=not legend_outside)
    if legend_outside:
        handles, labels = all_axes[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside right center", fontsize=8, frameon=False)
    if title:
        figure.suptitle(title)
    if note:
        figure.supxlabel(note, fontsize=8, ha="left", x=0.01)
    figure.savefig(path, dpi=120)
    return path


def _draw(axes: Axes, panel: Panel, lines: bool, legend: bool = True) -> None:
    from matplotlib import colormaps
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    if len(panel.series) > 10:  # beyond the default cycle's 10 colours: 18 strong ones (tab20 pairs pastel shades)
        axes.set_prop_cycle(color=[*colormaps["tab10"].colors, *colormaps["Dark2"].colors])
    for index, series in enumerate(panel.series):
        marker = MARKERS[index % len(MARKERS)] if series.markers else None
        if lines and series.yerr is not None:
            artist = axes.errorbar(series.x, series.y, yerr=series.yerr, marker=marker, markersize=4, capsize=2,
                                   linewidth=1.2, linestyle=series.linestyle, label=series.label).lines[0]
        elif lines:
            (artist,) = axes.plot(series.x, series.y, marker=marker, linestyle=series.linestyle, label=series.label)
        else:
            artist = axes.scatter(series.x, series.y, s=18, alpha=0.75, label=series.label)
        if lines and series.band is not None:
            axes.fill_between(series.x, *series.band, color=artist.get_color(), alpha=0.15, linewidth=0)
        if series.point_labels is not None:
            colour = artist.get_color() if lines else artist.get_facecolor()[0]
            for x, y, text in zip(series.x, series.y, series.point_labels, strict=True):
                axes.annotate(text, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=colour)
    for label, value in panel.hlines:
        axes.axhline(value, color="black", linestyle="--", linewidth=1, label=label)
    if panel.xscale == "log":
        axes.set_xscale("log")
        axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes.xaxis.set_minor_formatter(NullFormatter())
    elif panel.xscale == "logit":
        axes.set_xscale("logit")
        axes.minorticks_off()
    else:
        axes.xaxis.set_major_locator(MaxNLocator(6))
    if panel.ylim is not None:
        axes.set_ylim(*panel.ylim)
    if panel.xlim is not None:
        axes.set_xlim(*panel.xlim)
    if panel.xticks is not None:
        axes.set_xticks(panel.xticks, [f"{tick:g}" for tick in panel.xticks])
    axes.set_title(panel.title, fontsize=10)
    axes.set_xlabel(panel.xlabel)
    axes.set_ylabel(panel.ylabel)
    axes.grid(alpha=0.3)
    if legend and (any(series.label for series in panel.series) or panel.hlines):
        axes.legend(fontsize=8)
