"""One progress display for a benchmark run: cells done of the total, the phase, and an ETA weighted by cost.

Plans and full trainings cost very different amounts of compute, so the bar counts masked training steps (a
reward evaluation costs its K steps, a full training its schedule's steps, a heuristic's plan nothing) and the
postfix counts cells; tqdm's rate and ETA are then per training step, which is what the wall time follows.

    progress = Progress(total_cost=12_000, total_cells=58, enabled=True)
    progress.phase("plans mlp-digits seed 0")
    progress.advance(cost=2_000)              # a learner trained (no cell finished yet)
    progress.advance(cost=0, cells=2)         # its two cells' plans
    progress.close()
"""

from __future__ import annotations

from tqdm import tqdm


class Progress:
    """A tqdm bar over training steps (``total_cost``) with the phase as description and cells in the postfix."""

    def __init__(self, total_cost: float, total_cells: int, enabled: bool, desc: str = "bench") -> None:
        self.desc = desc
        self.cells = 0
        self.total_cells = total_cells
        self.bar = tqdm(total=max(1.0, float(total_cost)), desc=desc, unit="step", unit_scale=True,
                        disable=not enabled, bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix} "
                        "[{elapsed}<{remaining}, {rate_fmt}]")
        self._postfix()

    def phase(self, name: str) -> None:
        """Show what the run is doing now."""
        self.bar.set_description_str(f"{self.desc} · {name}", refresh=True)

    def grow(self, cost: float, cells: int = 0) -> None:
        """Add work found on the way (e.g. the best-plan candidates, known only after the trainings)."""
        self.bar.total += cost
        self.total_cells += cells
        self._postfix()

    def advance(self, cost: float, cells: int = 0) -> None:
        """Count ``cost`` training steps and ``cells`` finished (plans or trainings)."""
        self.cells += cells
        self.bar.update(cost)
        self._postfix()

    def _postfix(self) -> None:
        self.bar.set_postfix_str(f"{self.cells}/{self.total_cells} done", refresh=False)

    def close(self) -> None:
        self.bar.close()
