"""Transformer MAPPO against random search (same reward budget) and heuristics, re-evaluated on fresh seeds.

For every training seed s: train each learning controller with at most ``episodes`` reward evaluations on the
task at the target (MAPPO: ``MappoController``; random search: ``agents.random_search.RandomSearch`` around the
same reference as MAPPO, always on the instance of seed s). Then every final controller, and the uniform, ERK and
global-SNIP heuristics, act on fresh instances (``eval_seeds``, never seen in training) and earn the same reward.
Prints a Markdown table, writes ``<name>.json`` and the learning curves ``<name>.png`` under ``results``.

The proxy: minus the validation loss after ``reward_steps`` Adam steps at ``proxy_lr``. The task's default
proxy (Adam lr 1e-3, cosine) leaves every plan of mlp-digits at chance at 99 % sparsity after 100 steps (all
heuristics within 0.001 of ln 10: a flat reward), hence lr 1e-2 here.

Run: ``python -m benchmarks.mappo_vs_baselines --help`` (a few minutes per training run on 2 cores).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
import tyro

from agents.base import Actions, Controller, Observations, make_controller, to_actions
from agents.mappo import EnvSpec, MappoConfig, MappoController
from agents.mappo.rollout import collect, episode_plan, make_pool
from agents.random_search import RandomSearch
from pruning_env.env import PruningEnv
from pruning_env.tasks import get_task

HEURISTICS: tuple[str, ...] = ("uniform", "erk", "global_snip")


@dataclass(frozen=True)
class Args:
    """MAPPO vs random search vs heuristics on one task at one target."""

    task: str = "mlp-digits"
    """Task to search on."""
    target_sparsity: float = 0.99
    """Global target."""
    episodes: int = 600
    """Reward evaluations per training run (the equal budget)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds (each one the instance random search searches and MAPPO trains on)."""
    eval_seeds: tuple[int, ...] = (100, 101, 102, 103, 104)
    """Fresh instances every final controller is evaluated on."""
    reward_steps: int = 100
    """Proxy training steps K."""
    proxy_lr: float = 1e-2
    """Adam learning rate of the proxy (cosine over K steps)."""
    variants: tuple[str, ...] = ("mappo",)
    """MAPPO variants to train: mappo (encoder-only) and/or mappo_ar (autoregressive)."""
    random_search_scale: float = 1.0
    """Std of random search's logit-space noise around its reference."""
    mappo: MappoConfig = field(default_factory=lambda: MappoConfig(workers=2, progress=False))
    """MAPPO's configuration (its reference_feature also centres random search)."""
    name: str = "mappo_vs_baselines"
    """Stem of the output files."""
    results: Path = Path("benchmarks/results")
    """Output folder."""
    timing_episodes: int = 0
    """If > 0: also time the collection of this many episodes with 1 and with ``mappo.workers`` workers."""


def env_spec(args: Args, seed: int) -> EnvSpec:
    """The task with the benchmark's proxy, on the instance of ``seed``."""
    base = get_task(args.task)
    task = replace(base, reward_train=replace(base.reward_train, steps=args.reward_steps, lr=args.proxy_lr))
    return EnvSpec(task, options={"reward": "neg_loss", "target_sparsity": args.target_sparsity, "seed": seed})


def random_search_center(config: MappoConfig) -> str:
    """Random search's reference: the one MAPPO is an offset from (uniform when MAPPO has none)."""
    reference = config.reference_feature
    return "uniform" if reference in (None, "target_sparsity") else reference.removesuffix("_density")


def train_random_search(spec: EnvSpec, episodes: int, seed: int, center: str, scale: float) -> tuple[list[float], list]:
    """Random search's best plan and history (runs in a worker process)."""
    search = RandomSearch(spec(), episodes=episodes, center=center, scale=scale, seed=seed, progress=False)
    report = search.train(spec, episodes, seed)
    return search.best_plan.tolist(), report.history  # type: ignore[union-attr]


def train_mappo(args: Args, variant: str, seed: int) -> tuple[MappoController, list[dict[str, float]]]:
    spec = env_spec(args, seed)
    out = args.results / "runs" / f"{args.name}-{variant}-seed{seed}"
    config = replace(args.mappo, autoregressive=variant == "mappo_ar", out=str(out), resume=False)
    controller = MappoController(spec(), config, seed=seed)
    report = controller.train(spec, args.episodes, seed)
    return controller, report.history


class FixedPlan:
    """Random search's final controller: its best plan, whatever the observation (as ``RandomSearch.act``)."""

    def __init__(self, plan: list[float]) -> None:
        self.name, self.plan = "random_search", np.asarray(plan)

    def act(self, observations: Observations, infos: dict[str, dict[str, float]]) -> Actions:
        return to_actions(self.plan)


def evaluate(controller: Controller, env: PruningEnv, eval_seeds: tuple[int, ...]) -> list[tuple[float, float]]:
    """(reward, accuracy) of the controller's plan on each fresh instance."""
    outcomes = []
    for seed in eval_seeds:
        observations, infos = env.reset(seed=seed)
        _, rewards, _, _, infos = env.step(controller.act(observations, infos))
        outcomes.append((rewards["layer_0"], infos["layer_0"]["accuracy"]))
    return outcomes


def time_collection(args: Args) -> dict[str, float]:
    """Seconds to collect ``timing_episodes`` episodes in-process (torch at 1 thread, then at its default) and
    with ``mappo.workers`` worker processes (1 thread each)."""
    spec = env_spec(args, args.seeds[0])
    controller = MappoController(spec(), args.mappo)
    default_threads = torch.get_num_threads()
    seconds = {}
    for label, workers, threads in (("in-process, 1 thread", 1, 1),
                                    (f"in-process, {default_threads} threads", 1, default_threads),
                                    (f"{args.mappo.workers} worker processes", args.mappo.workers, 1)):
        torch.set_num_threads(threads)
        pool = make_pool([spec], workers)
        try:
            collect(controller.policy, pool, episode_plan(0, 0, workers, [False]))  # warm-up: instance scoring
            start = time.perf_counter()
            collect(controller.policy, pool, episode_plan(0, workers, args.timing_episodes, [False]))
            seconds[label] = time.perf_counter() - start
        finally:
            pool.close()
    torch.set_num_threads(default_threads)
    return seconds


def plot(curves: dict[str, list[tuple[list[float], list[float]]]], heuristics: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    colors = {"mappo": "tab:blue", "mappo_ar": "tab:purple", "random_search": "tab:orange"}
    for label, runs in curves.items():
        for index, (x, y) in enumerate(runs):
            axes.plot(x, y, color=colors.get(label.split(" ")[0], "gray"), alpha=0.8,
                      linestyle="--" if "best" in label else "-", label=label if index == 0 else None)
    for (name, value), color in zip(heuristics.items(), ("tab:red", "tab:green", "tab:brown"), strict=False):
        axes.axhline(value, color=color, linestyle=":", label=f"{name} (fresh seeds)")
    axes.set(xlabel="episodes (reward evaluations)", ylabel="reward (minus validation loss)",
             title="training instance: MAPPO batch mean / best so far; heuristics on fresh seeds")
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)


def main(args: Args) -> None:
    args.results.mkdir(parents=True, exist_ok=True)
    center = random_search_center(args.mappo)
    pool = ProcessPoolExecutor(args.mappo.workers, get_context("spawn"), torch.set_num_threads, (1,))
    with pool as executor:
        searches = [executor.submit(train_random_search, env_spec(args, seed), args.episodes, seed, center,
                                    args.random_search_scale) for seed in args.seeds]
        searched = [future.result() for future in searches]
    controllers: dict[str, list[Controller]] = {"random_search": [FixedPlan(plan) for plan, _ in searched]}
    curves: dict[str, list] = {"random_search best": [([row["episode"] for row in history],
                                                       [row["best_reward"] for row in history])
                                                      for _, history in searched]}
    for variant in args.variants:
        trained = [train_mappo(args, variant, seed) for seed in args.seeds]
        controllers[variant] = [controller for controller, _ in trained]
        curves[f"{variant} batch mean"] = [([row["episodes"] for row in h], [row["reward_mean"] for row in h])
                                           for _, h in trained]
        curves[f"{variant} best"] = [([row["episodes"] for row in h], [row["best_reward"] for row in h])
                                     for _, h in trained]

    env = env_spec(args, args.eval_seeds[0])()
    results: dict[str, dict] = {}
    for name in HEURISTICS:
        outcomes = np.array(evaluate(make_controller(name, env), env, args.eval_seeds))
        results[name] = {"reward": outcomes[:, 0].tolist(), "accuracy": outcomes[:, 1].tolist()}
    for name, trained in controllers.items():
        outcomes = np.array([evaluate(controller, env, args.eval_seeds) for controller in trained])
        results[name] = {"reward": outcomes[..., 0].tolist(), "accuracy": outcomes[..., 1].tolist()}

    lines = [f"{args.task} at sparsity {args.target_sparsity}, budget {args.episodes} episodes, proxy K="
             f"{args.reward_steps} lr {args.proxy_lr}; reward on fresh seeds {list(args.eval_seeds)}",
             "", "| controller | reward mean | std | per training seed | accuracy |", "|---|---|---|---|---|"]
    for name, result in results.items():
        reward = np.asarray(result["reward"])
        per_seed = " ".join(f"{value:.4f}" for value in reward.mean(-1)) if reward.ndim == 2 else "-"
        lines.append(f"| {name} | {reward.mean():.4f} | {reward.std():.4f} | {per_seed} | "
                     f"{np.mean(result['accuracy']):.3f} |")
    if args.timing_episodes:
        timing = time_collection(args)
        results["timing_seconds"] = timing
        lines.append(f"\ncollection of {args.timing_episodes} episodes: " + ", ".join(f"{k}: {v:.1f} s" for k, v in timing.items()))
    table = "\n".join(lines)
    print(table)
    png = args.results / f"{args.name}.png"
    plot(curves, {name: float(np.mean(results[name]["reward"])) for name in HEURISTICS}, png)
    record = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()}, "results": results,
              "table": table, "curves": curves}
    (args.results / f"{args.name}.json").write_text(json.dumps(record, indent=1, default=str))
    print(f"wrote {png} and {args.results / f'{args.name}.json'}")


if __name__ == "__main__":
    main(tyro.cli(Args, config=(tyro.conf.OmitArgPrefixes,)))
