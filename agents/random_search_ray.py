"""Random search with its plans evaluated on a Ray pool (``pruning_env.pools.ray.RayPool``), from the command line.

    python -m agents.random_search_ray --task lenet300-mnist --episodes 64 --workers 2    # local Ray
    python -m agents.random_search_ray --task lenet300-mnist --episodes 512 --workers 16 --ray-address auto  # cluster

A plan's reward depends only on (reset seed, plan) on one kind of device, so 1 and N workers give the same
rewards and the same best plan as ``RandomSearch`` evaluating in-process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import tyro

from agents.random_search import RandomSearch
from pruning_env.pools.ray import RayPool


@dataclass
class Args:
    """Random search with its plans evaluated on a Ray pool."""

    task: str = "mlp-digits"
    """Task name (``pruning_env.TASKS``)."""
    episodes: int = 64
    """Plans (= reward evaluations)."""
    workers: int = 2
    """Ray actors, one env each."""
    ray_address: str | None = None
    """Cluster to join ("auto", "host:port", "ray://host:10001"); None starts a local one."""
    gpus_per_worker: float | None = None
    """GPUs per actor; None: one each when the cluster has enough, else an even share."""
    target_sparsity: float | None = None
    """Global sparsity target (the task's when None)."""
    reward: str = "neg_loss"
    """Reward kind."""
    reward_steps: int | None = None
    """K of the reward (the task's when None)."""
    reference: str = "erk"
    """Reference allocation the plans are drawn around."""
    scale: float = 1.0
    """Logit-space standard deviation of the plans."""
    seed: int = 0
    """Reset seed of every evaluation and seed of the plan sampler."""

    def env_kwargs(self) -> dict[str, Any]:
        return {"task": self.task, "target_sparsity": self.target_sparsity, "reward": self.reward,
                "reward_steps": self.reward_steps}


def main(args: Args) -> None:
    gpus: float | Literal["auto"] = "auto" if args.gpus_per_worker is None else args.gpus_per_worker
    with RayPool([args.env_kwargs()], args.workers, args.ray_address, gpus) as pool:
        search = RandomSearch(None, args.episodes, args.reference, args.scale, args.seed, progress=True, pool=pool)
        report = search.search()
        restarts = pool.restarts
    print(f"{args.episodes} episodes on {args.workers} workers in {report.seconds:.1f} s "
          f"({restarts} actors replaced); best reward {report.best_reward:.5f}")
    print("best plan (requested sparsity per layer):", np.array2string(search.best_plan, precision=4))


if __name__ == "__main__":
    main(tyro.cli(Args))
