"""Ray scale-out of random search: the same plans on 1 and N workers; wall time, speedup, equality of rewards.

    python -m benchmarks.studies.ray_scaling                                  # lenet300-mnist, K = 200, 1 and 2 workers
    python -m benchmarks.studies.ray_scaling --task mlp-digits --reward-steps 200 --workers 1 2
    python -m benchmarks.studies.ray_scaling --ray-address auto --workers 1 8 16   # on a running cluster

Every run uses one Ray cluster (a local one of max(workers) CPUs unless ``--ray-address`` is given). Each pool
is started and warmed first, untimed: one episode per actor pays the process start, data loading and torch's
first-step initialization. Then random search over ``--episodes`` plans (``agents.random_search.RandomSearch`` on a ``RayPool``,
the same plans and seed for every worker count) is timed. The speedup is the first run's time over each run's.
Exits with status 1 when any run's rewards differ from the first run's. The 1-minute load average before and
after each run is printed: other processes on the machine make the speedup meaningless.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import ray
import tyro

from agents.random_search import RandomSearch
from pruning_env.pools import PlanRequest
from pruning_env.pools.ray import RayPool, local_ray


@dataclass
class Args:
    task: str = "lenet300-mnist"
    """Task name."""
    reward_steps: int | None = 200
    """K of the reward (the task's when None); K = 200 makes one lenet300-mnist episode cost about 0.3 s here."""
    reward: str = "neg_loss"
    """Reward kind."""
    episodes: int = 64
    """Random-search plans per run."""
    workers: tuple[int, ...] = (1, 2)
    """Worker counts to compare; the first is the baseline."""
    seed: int = 0
    """Reset seed of every evaluation and seed of the plan sampler."""
    device: str = "auto"
    """Env device in the actors ("auto": the actor's GPU when it has one)."""
    ray_address: str | None = None
    """Cluster to join; None starts a local one."""
    out: Path | None = Path("benchmarks/results/ray_scaling.json")
    """Where to write the figures as JSON (None: nowhere)."""


def measure(args: Args, workers: int) -> dict:
    """Warm a pool of ``workers`` actors, then time random search on it."""
    env_kwargs = {"task": args.task, "reward": args.reward, "reward_steps": args.reward_steps, "device": args.device}
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    with RayPool([env_kwargs], workers) as pool:
        layers = pool.observe([args.seed])[0].shape[0]
        pool.evaluate([PlanRequest(args.seed, np.full(layers, 0.5))] * workers)  # one warm-up episode per actor
        warm_seconds = time.perf_counter() - start
        report = RandomSearch(None, args.episodes, seed=args.seed, progress=False, pool=pool).search()
        devices = sorted({device for info in pool.describe() for device in info["devices"]})
    return {
        "workers": workers,
        "seconds": report.seconds,
        "episodes_per_second": args.episodes / report.seconds,
        "start_and_warm_up_seconds": warm_seconds,
        "best_reward": report.best_reward,
        "rewards": [row["reward_mean"] for row in report.history],
        "devices": devices,
        "load_average_1min": [load_before, os.getloadavg()[0]],
    }


def main(args: Args) -> int:
    cluster = contextlib.nullcontext() if args.ray_address else local_ray(num_cpus=max(args.workers))
    with cluster:
        if args.ray_address:
            ray.init(address=args.ray_address)
        runs = [measure(args, workers) for workers in args.workers]
    base = runs[0]
    print(f"{args.task}, {args.reward} K={args.reward_steps}, {args.episodes} episodes, seed {args.seed}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'workers':>7} {'seconds':>8} {'s/episode':>9} {'speedup':>7} {'same rewards':>12} {'warm-up s':>9} {'load':>9}")
    for run in runs:
        run["speedup"] = base["seconds"] / run["seconds"]
        run["same_rewards"] = run["rewards"] == base["rewards"]
        print(f"{run['workers']:>7} {run['seconds']:>8.2f} {run['seconds'] / args.episodes:>9.3f} {run['speedup']:>7.2f} "
              f"{run['same_rewards']!s:>12} {run['start_and_warm_up_seconds']:>9.1f} "
              f"{run['load_average_1min'][0]:>4.1f}-{run['load_average_1min'][1]:<4.1f}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {"args": {k: str(v) for k, v in asdict(args).items()}, "cpus": os.cpu_count(),
                  "python": platform.python_version(), "ray": ray.__version__, "runs": runs}
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0 if all(run["same_rewards"] for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main(tyro.cli(Args)))
