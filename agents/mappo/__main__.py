"""Train transformer MAPPO from the command line: ``python -m agents.mappo --help``.

Example: ``python -m agents.mappo --tasks mlp-digits --target-sparsity 0.99 --episodes 600 --workers 2
--out runs/mappo-digits`` (add ``--resume`` to continue from the run folder's last checkpoint).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import tyro

from agents.mappo.config import MappoConfig
from agents.mappo.controller import CONTROLLER_FILE, MappoController
from pruning_env.parallel import PruningEnv


@dataclass(frozen=True)
class Args:
    """Train transformer MAPPO on one or several pruning tasks; the run folder gets logs, checkpoints, a
    learning curve and the trained controller (``controller.pt``, loadable with ``MappoController.load``)."""

    tasks: tuple[str, ...] = ("mlp-digits",)
    """Tasks to train on; episodes are drawn uniformly across them."""
    dataset: str | None = None
    """Dataset override for every task (e.g. synthetic-cifar10 when no CIFAR archive is at hand)."""
    target_sparsity: tuple[float, ...] = (0.99,)
    """Global target: one value, or two (low high) for a range drawn per episode."""
    reward: str = "neg_loss"
    """Reward kind: accuracy, neg_loss, zero_cost or full."""
    reward_steps: int | None = None
    """Training steps of the proxy reward (None: the task's K)."""
    init: Literal["fixed", "per_episode"] = "fixed"
    """fixed: one initialization per seed; per_episode: a new initialization every episode."""
    action_type: Literal["continuous", "discrete"] = "continuous"
    """Continuous sparsities, or discrete bins."""
    device: str = "auto"
    """Device of the envs' networks (the policy runs on the CPU)."""
    episodes: int = 600
    """Reward evaluations to spend (the training budget)."""
    seed: int = 0
    """Seed of the run: the instance (with fixed init), episode draws, the weights' initialization."""
    mappo: MappoConfig = field(default_factory=lambda: MappoConfig(out="runs/mappo"))
    """The algorithm and run options."""

    def sources(self) -> list[functools.partial[PruningEnv]]:
        """One picklable env factory per task (worker processes build their envs from them)."""
        if len(self.target_sparsity) not in (1, 2):
            raise ValueError(f"target_sparsity takes one value or two (low high), got {self.target_sparsity}")
        target = self.target_sparsity[0] if len(self.target_sparsity) == 1 else tuple(self.target_sparsity)
        options = {
            "target_sparsity": target, "reward": self.reward, "reward_steps": self.reward_steps, "init": self.init,
            "action_type": self.action_type, "device": self.device, "seed": self.seed,
        }
        return [functools.partial(PruningEnv, task, data=self.dataset, **options) for task in self.tasks]


def main(args: Args) -> None:
    sources = args.sources()
    controller = MappoController(sources[0](), args.mappo, seed=args.seed)
    report = controller.train_on(sources, args.episodes, args.seed)
    print(f"{report.episodes} episodes in {report.seconds:.0f} s, best reward {report.best_reward:.4f}")
    if args.mappo.out is not None:
        print(f"run folder {args.mappo.out}: controller {Path(args.mappo.out) / CONTROLLER_FILE}")


if __name__ == "__main__":
    main(tyro.cli(Args, config=(tyro.conf.OmitArgPrefixes,)))
