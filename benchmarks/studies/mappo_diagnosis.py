"""Why MAPPO's mean plan does not improve on one instance while its samples find good plans: two measurements.

1. Ruggedness of the proxy around a reference plan: the reward of plans moved by small random logit offsets
   (``offset_plans``) at several scales, for 1 and more minibatch orders (``reward_orders``). A reward that is
   smooth at the scale of the policy's steps changes little for small offsets.
2. The mean plan against evaluations: MAPPO variants (config overrides) and CMA-ES on the same instance, the reward
   of the deterministic plan (MAPPO's mean action, CMA-ES's mean) after every update / generation, beside the best
   sample so far and the mean reward of the update's samples.

    python -m benchmarks.studies.mappo_diagnosis                       # mlp-digits at 0.99, instance 0: ~15 min on 2 cores

Writes ``mappo_diagnosis.jsonl`` (one record per measurement) and ``mappo_diagnosis.md``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro

import agents
from agents.mappo.controller import MappoController
from agents.plan_search import offset_plans
from benchmarks.cells import plan_of
from benchmarks.study import check_known, publish, write_records
from pruning_env.parallel import PruningEnv
from pruning_env.pools import JobPool

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "leave-one-out groups of 24": {"group_size": 24},
    "std 0.7, groups of 10, 10 per update": {"init_log_std": -0.357, "group_size": 10, "episodes_per_update": 10},
    "as above, lr 1e-2, clip 0.3": {"init_log_std": -0.357, "group_size": 10, "episodes_per_update": 10,
                                    "learning_rate": 0.01, "clip_coef": 0.3},
    "as above, no critic loss": {"init_log_std": -0.357, "group_size": 10, "episodes_per_update": 10,
                                 "learning_rate": 0.01, "clip_coef": 0.3, "vf_coef": 0.0},
}
"""MAPPO config overrides measured (``MappoConfig`` fields)."""


@dataclass
class Args:
    task: str = "mlp-digits"
    target: float = 0.99
    seed: int = 0
    """The instance (initialization and minibatch order)."""
    episodes: int = 300
    """Reward evaluations per MAPPO variant and for CMA-ES."""
    scales: tuple[float, ...] = (0.003, 0.03, 0.3)
    """Logit offset scales of the ruggedness measurement."""
    perturbations: int = 10
    """Plans per scale."""
    orders: tuple[int, ...] = (1, 4)
    """``reward_orders`` of the ruggedness measurement."""
    workers: int = 2
    out: Path = Path("benchmarks/results")
    reward_steps: int | None = None
    """K of the proxy reward (None: the task's); a small K makes a quick smoke run."""
    variants: tuple[str, ...] = tuple(VARIANTS)
    """MAPPO variants to trace (names of ``VARIANTS``; all by default)."""


def _env(args: Args, reward_orders: int = 1) -> PruningEnv:
    return PruningEnv(args.task, target_sparsity=args.target, reward="neg_loss", init=args.seed, seed=args.seed,
                      device="cpu", reward_orders=reward_orders, reward_steps=args.reward_steps)


def ruggedness(args: Args, reward_orders: int) -> dict[str, Any]:
    """Reward mean and std of ``perturbations`` plans around global SNIP's plan at every scale."""
    torch.set_num_threads(1)
    env = _env(args, reward_orders)
    center = plan_of(agents.make_controller("global_snip", env), env, args.seed)
    rng = np.random.default_rng(0)
    rows = []
    for scale in args.scales:
        plans = offset_plans(center, scale * rng.standard_normal((args.perturbations, len(center))))
        rewards = [result.reward for result in env.evaluate_plans([(args.seed, plan) for plan in plans])]
        rows.append({"scale": scale, "mean": float(np.mean(rewards)), "std": float(np.std(rewards))})
    reference = env.evaluate_plan(args.seed, center).reward
    return {"kind": "ruggedness", "reward_orders": reward_orders, "reference": reference, "rows": rows}


def mappo_trace(args: Args, name: str) -> dict[str, Any]:
    """The variant's mean-plan reward, best reward and update mean reward after every update."""
    torch.set_num_threads(1)
    env = _env(args)
    controller = MappoController(env, seed=args.seed, progress=False, tensorboard=False, **VARIANTS[name])
    means: list[float] = []
    report = controller.train(functools.partial(_env, args), args.episodes, args.seed, on_update=lambda _: means.append(
        env.evaluate_plan(args.seed, plan_of(controller, env, args.seed)).reward))
    rows = [{"episodes": 0, "mean_plan": means[0], "best": float("nan"), "update_mean": float("nan")}]
    rows += [{"episodes": int(row["episodes"]), "mean_plan": mean, "best": row["best_reward"],
              "update_mean": row["reward_mean"], "std": row["std"]}
             for row, mean in zip(report.history, means[1:], strict=True)]
    return {"kind": "mappo", "variant": name, "overrides": VARIANTS[name], "rows": rows}


def cma_trace(args: Args) -> dict[str, Any]:
    """CMA-ES's mean-plan reward, best reward and generation mean reward after every generation."""
    torch.set_num_threads(1)
    env = _env(args)
    searcher = agents.make_controller("cma_es", env, seed=args.seed, episodes=args.episodes, progress=False)
    rows = [{"episodes": 0, "mean_plan": env.evaluate_plan(args.seed, searcher.reference_plan(args.seed)).reward,
             "best": float("nan"), "update_mean": float("nan")}]

    def record(spent: int) -> None:
        generation = [row["reward_mean"] for row in searcher.history[rows[-1]["episodes"]:spent]]
        rows.append({"episodes": spent, "mean_plan": env.evaluate_plan(args.seed, searcher.current_plan()).reward,
                     "best": searcher.best_reward, "update_mean": float(np.mean(generation))})

    searcher.search(on_update=record)
    return {"kind": "cma_es", "rows": rows}


def _run(job: tuple[str, Any], args: Args) -> dict[str, Any]:
    kind, value = job
    if kind == "ruggedness":
        return ruggedness(args, value)
    return mappo_trace(args, value) if kind == "mappo" else cma_trace(args)


def markdown(args: Args, records: Sequence[dict[str, Any]]) -> str:
    lines = [f"**Ruggedness** of the proxy (neg_loss) around global SNIP's plan on {args.task} at {args.target:g}, "
             f"instance {args.seed}: std of the reward over {args.perturbations} plans moved by logit offsets of "
             "each scale", "", "| reward orders | reference | " + " | ".join(f"scale {s:g}" for s in args.scales)
             + " |", "|---" * (2 + len(args.scales)) + "|"]
    for record in (r for r in records if r["kind"] == "ruggedness"):
        lines.append(f"| {record['reward_orders']} | {record['reference']:.3f} | "
                     + " | ".join(f"{row['std']:.3f}" for row in record["rows"]) + " |")
    lines += ["", f"**Mean plan against evaluations** ({args.episodes} evaluations on the same instance): reward "
              "of the deterministic plan (MAPPO's mean action, CMA-ES's mean) at the start, its best and last "
              "value after an update, the best sample, and the mean reward of the last update's samples", "",
              "| learner | mean plan at 0 | best mean plan | mean plan at the end | best sample | last update's "
              "samples |", "|---|---|---|---|---|---|"]
    for record in (r for r in records if r["kind"] != "ruggedness"):
        rows = record["rows"]
        name = "cma_es" if record["kind"] == "cma_es" else f"mappo: {record['variant']}"
        lines.append(f"| {name} | {rows[0]['mean_plan']:.3f} | {max(r['mean_plan'] for r in rows[1:]):.3f} | "
                     f"{rows[-1]['mean_plan']:.3f} | {rows[-1]['best']:.3f} | {rows[-1]['update_mean']:.3f} |")
    return "\n".join(lines) + "\n"


def main(args: Args) -> str:
    check_known(args.variants, VARIANTS, "MAPPO variants")
    torch.set_num_threads(1)
    start = time.perf_counter()
    jobs = [("ruggedness", n) for n in args.orders] + [("mappo", name) for name in args.variants] + [("cma_es", None)]
    with JobPool(max(1, min(args.workers, len(jobs)))) as pool:
        records = pool.map(_run, [(job, args) for job in jobs], progress="MAPPO diagnosis")
    write_records(args.out / "mappo_diagnosis.jsonl", records)
    text = publish(args.out, "mappo_diagnosis",
                   markdown(args, records) + f"\nWall time {(time.perf_counter() - start) / 60:.1f} min (CPU).\n")
    print(text)
    return text


if __name__ == "__main__":
    main(tyro.cli(Args))
