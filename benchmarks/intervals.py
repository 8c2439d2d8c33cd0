"""Interval estimates shared by the benchmark reports: the mean of paired differences with a 95% t-interval."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean of ``values`` and the half-width of its Student-t ``confidence`` interval (nan for fewer than 2)."""
    # imported when an interval is taken: 0.7 s of imports that a worker process never needs
    from scipy import stats

    array = np.asarray(values, dtype=float)
    if len(array) < 2:
        return float(array.mean()) if len(array) else float("nan"), float("nan")
    return float(array.mean()), float(stats.t.ppf(0.5 + confidence / 2, len(array) - 1) * stats.sem(array))


def signed_interval(mean: float, half: float, digits: int = 1) -> str:
    """``+1.2 ± 0.8`` (no ``±`` part when the half-width is nan)."""
    return f"{mean:+.{digits}f} ± {half:.{digits}f}" if np.isfinite(half) else f"{mean:+.{digits}f}"
