"""Env speed and memory: episodes per second, reset and step latency, the step against a plain torch loop, where
an episode's time goes, and the reward training's arithmetic rate against a plain matmul's.

    python -m benchmarks.studies.env_speed                      # mlp-digits and lenet300-mnist on the default device
    python -m benchmarks.studies.env_speed --device cuda --tasks resnet20-cifar10
    python -m benchmarks.studies.env_speed --tasks mlp-digits-trained cnn-digits-trained --threads 1   # K = 0
    python -m benchmarks.studies.env_speed --tasks lenet300-mnist lenet5-mnist --prune-at trained --threads 1

For each task it prints the median seconds of an uncached reset (new initialization: proxies scored), a cached
reset, a step (projection + masks + K masked training steps + evaluation) and the same K training steps and
evaluation written as a plain hand-written torch loop on the same network and data, and their ratio. Then the cost
breakdown of an episode, each phase timed on its own from the env's pieces on one instance (medians):

- scoring: an uncached minus a cached reset (the proxies and mask scores of a new initialization);
- features: ``features.observation_matrix`` at the target (every reset);
- plan pipeline: ``plan.prune_plan`` of uniform requests (projection onto the budget and the masks), as in a step;
- training and evaluation: the reward's ``MaskedTrainer.run`` (its ``train_seconds`` and ``eval_seconds``);
- step overhead: the step minus plan pipeline, training and evaluation (restoring θ0, the optimizer, infos;
  a difference of medians, so it can come out negative when timing noise exceeds it).

The training's arithmetic rate is an estimate for the DENSE network (masked training does the same dense math):
2 FLOPs per multiply-accumulate x 3 (forward + backward ≈ 3 forwards) x the layers' MACs per sample x batch x K
/ training seconds, printed next to a plain ``torch.mm`` of two ``--matmul-size`` square float32 matrices on the
same device, timed in the same run. Then the resident memory over ``--memory-episodes`` episodes of the first task.
A CIFAR task falls back to synthetic CIFAR-shaped data when the archive is absent.

A task whose reward trains nothing (``reward_steps=0``, the default after training) is timed as evaluations per
second instead: ``--plans`` random plans one per ``evaluate_plan`` call and all in one ``evaluate_plans`` call, and a
step's median time against its forward pass (``EpisodeResult.seconds``).
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import tyro

from benchmarks.provenance import cpu_model
from benchmarks.study import publish
from pruning_env.compute import synchronize
from pruning_env.data import Dataset, load_dataset
from pruning_env.device import resolve_device
from pruning_env.features import observation_matrix, static_features
from pruning_env.layers import PrunableLayer
from pruning_env.models import build_model
from pruning_env.parallel import PruningEnv
from pruning_env.plan import prune_plan
from pruning_env.registry import get_task
from pruning_env.training import TrainConfig, evaluate


@dataclass
class Args:
    tasks: tuple[str, ...] = ("mlp-digits", "lenet300-mnist")
    """Tasks to time."""
    device: str = "auto"
    """"auto", "cpu" or "cuda"."""
    repeats: int = 15
    """Timed repetitions of each measurement (the median is reported)."""
    reward_steps: int | None = None
    """K of the proxy reward; the task's own when omitted."""
    memory_episodes: int = 500
    """Episodes of the memory check on the first task (0 skips it)."""
    memory_warmup: int = 50
    """Episodes after which the memory baseline is taken."""
    seed: int = 0
    """Seed of the first instance."""
    matmul_size: int = 1024
    """Side of the square float32 matrices of the plain matmul reference."""
    plans: int = 200
    """Random plans timed per task with the zero-step reward (``reward_steps=0``, e.g. a ``-trained`` task)."""
    out: Path | None = None
    """Also write what is printed to this Markdown report (e.g. ``benchmarks/results/env_speed_trained.md``)."""
    threads: int | None = None
    """Torch intra-op CPU threads; torch's default when omitted (1 is steadier on a shared machine)."""
    prune_at: str | None = None
    """"trained": prune the network trained from each initialization (``prune_at``; with the zero-step reward by
    default), e.g. ``--tasks lenet5-mnist --prune-at trained``; the task's own when omitted."""


def resident_mib() -> float:
    """Resident set size of this process in MiB (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096 / 2**20


def task_data(task_name: str, device: torch.device) -> Dataset:
    """The task's dataset, or synthetic CIFAR-shaped data for a CIFAR task whose archive is absent."""
    dataset = get_task(task_name).dataset
    try:
        return load_dataset(dataset, device=device, download=False)
    except FileNotFoundError:
        if not dataset.startswith("cifar"):
            raise
        print(f"  {dataset} archive absent: using synthetic-cifar10 data")
        return load_dataset("synthetic-cifar10", device=device)


def matmul_gflops(size: int, device: torch.device, repeats: int = 20, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of ``torch.mm`` on two ``(size, size)`` matrices of ``dtype``: 2 size^3 FLOPs per product."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=generator).to(device=device, dtype=dtype) for _ in range(2))
    torch.mm(a, b)  # warm-up
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def training_gflops(layers: list[PrunableLayer], batch_size: int, steps: int, seconds: float) -> float:
    """Estimated dense GFLOP/s of ``steps`` training steps of ``batch_size`` samples that took ``seconds``.

    ``layer.flops`` counts multiply-accumulates per sample: x2 for FLOPs, x3 for forward + backward.
    """
    return 2 * 3 * sum(layer.flops for layer in layers) * batch_size * steps / seconds / 1e9


def plain_loop_seconds(task_name: str, data: Dataset, config: TrainConfig, eval_size: int, device: torch.device) -> float:
    """The reward's K steps and evaluation as a plain loop: fresh Adam/SGD, cosine schedule, random minibatches."""
    model = build_model(get_task(task_name).model, num_classes=data.num_classes, seed=0).to(device)
    if config.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps)
    generator = torch.Generator().manual_seed(0)
    batches = torch.randint(len(data.x_train), (config.steps, config.batch_size), generator=generator).to(device)
    synchronize(device)
    start = time.perf_counter()
    model.train()
    for indices in batches:
        loss = F.cross_entropy(model(data.x_train[indices]), data.y_train[indices])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    loss.item()
    evaluate(model, data.x_val[:eval_size], data.y_val[:eval_size])
    return time.perf_counter() - start


def uniform_actions(env: PruningEnv, target: float) -> dict[str, np.ndarray]:
    return {agent: np.array([target], dtype=np.float32) for agent in env.possible_agents}


def time_task(task_name: str, args: Args, device: torch.device, matmul_rate: float) -> PruningEnv:
    data = task_data(task_name, device)
    options = {} if args.prune_at is None else {"prune_at": args.prune_at}
    env = PruningEnv(task_name, data=data, device=device, reward_steps=args.reward_steps, cache_size=args.repeats + 2,
                     **options)
    target = env.config.target_range[0]
    if env.config.reward_train is None:
        time_zero_step(env, target, args)
        return env
    uncached, cached, steps = [], [], []
    env.reset(seed=args.seed)
    env.step(uniform_actions(env, target))  # warm-up: allocator, kernels
    for repeat in range(args.repeats):
        start = time.perf_counter()
        env.reset(seed=args.seed + 1 + repeat)
        uncached.append(time.perf_counter() - start)
        start = time.perf_counter()
        env.reset(seed=args.seed + 1 + repeat)
        cached.append(time.perf_counter() - start)
        start = time.perf_counter()
        env.step(uniform_actions(env, target))
        steps.append(time.perf_counter() - start)
    config = env.reward_evaluator.train_config
    eval_size = len(env.reward_evaluator.x_eval)
    plain_loop_seconds(task_name, data, config, eval_size, device)  # warm-up
    plain = [plain_loop_seconds(task_name, data, config, eval_size, device) for _ in range(args.repeats)]
    step, loop = statistics.median(steps), statistics.median(plain)
    episode = statistics.median(cached) + step
    print(
        f"{task_name:<18} {device.type:<5} K={config.steps:<4} layers={len(env.layers):<3} "
        f"episodes/s={1 / episode:7.2f}  reset uncached={statistics.median(uncached):.4f}s "
        f"cached={statistics.median(cached):.5f}s  step={step:.4f}s  plain loop={loop:.4f}s  "
        f"step/plain={step / loop:.3f}"
    )
    phases = cost_breakdown(env, target, args.repeats)
    phases = {"scoring": statistics.median(uncached) - statistics.median(cached), **phases}
    phases["step overhead"] = step - sum(phases[name] for name in ("plan pipeline", "training", "evaluation"))
    print_breakdown(env, phases, matmul_rate, args.matmul_size)
    return env


def time_zero_step(env: PruningEnv, target: float, args: Args) -> None:
    """The zero-step reward (``reward_steps=0``: one forward pass): evaluations/s one plan per call and
    ``--plans`` plans in one ``evaluate_plans`` call, random plans around the target on one instance, then where a
    step's time goes."""
    plans = np.random.default_rng(args.seed).uniform(max(0.0, 2 * target - 1), 1.0, (args.plans, len(env.layers)))
    env.evaluate_plans([(args.seed, plan) for plan in plans[:2]])  # warm-up: scoring, allocator, kernels
    start = time.perf_counter()
    for plan in plans:
        env.evaluate_plan(args.seed, plan)
    single = args.plans / (time.perf_counter() - start)
    start = time.perf_counter()
    env.evaluate_plans([(args.seed, plan) for plan in plans])
    together = args.plans / (time.perf_counter() - start)
    steps, evaluations = [], []
    for plan in plans[: args.repeats]:
        env.reset(seed=args.seed)
        start = time.perf_counter()
        env.step({agent: np.array([value], dtype=np.float32) for agent, value in zip(env.possible_agents, plan, strict=True)})
        steps.append(time.perf_counter() - start)
        evaluations.append(env.last_result.seconds)
    step, evaluation = statistics.median(steps), statistics.median(evaluations)
    print(f"{env.task.name:<18} {env.device.type:<5} K=0    layers={len(env.layers):<3} "
          f"evaluations/s one per call={single:8.1f}  {args.plans} per call={together:8.1f}  "
          f"step={step * 1e3:.3f} ms  forward pass={evaluation * 1e3:.3f} ms  rest of the step={(step - evaluation) * 1e3:.3f} ms")


def print_breakdown(env: PruningEnv, phases: dict[str, float], matmul_rate: float, matmul_size: int) -> None:
    """The phases in milliseconds, then the reward training's estimated GFLOP/s against the matmul's."""
    print("  breakdown: " + " | ".join(f"{name} {seconds * 1e3:.2f} ms" for name, seconds in phases.items()))
    config = env.reward_evaluator.train_config
    batch = min(config.batch_size, len(env.data.x_train))
    rate = training_gflops(env.layers, batch, config.steps, phases["training"])
    print(
        f"  reward training ≈ {rate:.2f} GFLOP/s (dense estimate: 2 x 3 x {sum(layer.flops for layer in env.layers):,} "
        f"MAC/sample x batch {batch} x {config.steps} steps) = {100 * rate / matmul_rate:.1f}% of the plain "
        f"{matmul_size}x{matmul_size} float32 matmul's {matmul_rate:.1f} GFLOP/s"
    )


def timed(action: Callable[[], object], device: torch.device) -> float:
    """Seconds of ``action()``, the device synchronized before and after."""
    synchronize(device)
    start = time.perf_counter()
    action()
    synchronize(device)
    return time.perf_counter() - start


def cost_breakdown(env: PruningEnv, target: float, repeats: int) -> dict[str, float]:
    """Median seconds of features, the plan pipeline, reward training and evaluation on the current instance.

    Each phase is the env's own code, called on the instance of the last ``reset`` with uniform requests:
    ``features.observation_matrix``, ``plan.prune_plan`` (projection onto the budget and masks) and the reward's
    ``MaskedTrainer.run``.
    """
    instance = env.instance
    reward = env.reward_evaluator
    static = static_features(env.layers)
    requested = np.full(len(env.layers), target)
    orders = env.mask_orders()
    masks = prune_plan(requested, env.layers, target, orders, budget=env.config.budget).masks
    phases: dict[str, list[float]] = {name: [] for name in ("features", "plan pipeline", "training", "evaluation")}
    for _ in range(repeats):
        phases["features"].append(
            timed(lambda: observation_matrix(env.layers, static, instance.summaries, target, env.config.budget),
                  env.device)
        )
        phases["plan pipeline"].append(
            timed(lambda: prune_plan(requested, env.layers, target, orders, budget=env.config.budget), env.device))
        result = reward.trainer.run(instance.state, masks, reward.train_config, instance.init_seed, reward.x_eval,
                                    reward.y_eval)
        phases["training"].append(result.train_seconds)
        phases["evaluation"].append(result.eval_seconds)
    return {name: statistics.median(values) for name, values in phases.items()}


def memory_check(env: PruningEnv, episodes: int, warmup: int) -> None:
    target = env.config.target_range[0]
    baseline = 0.0
    for episode in range(episodes):
        env.reset(seed=episode % 4)
        env.step(uniform_actions(env, target))
        if episode + 1 == warmup:
            baseline = resident_mib()
    final = resident_mib()
    growth = (final - baseline) / baseline * 100
    print(f"memory over {episodes} episodes of {env.task.name}: {baseline:.1f} MiB after {warmup}, "
          f"{final:.1f} MiB at the end, growth {growth:+.2f}%")


def main(args: Args) -> None:
    if args.out is None:
        measure(args)
        return
    printed = io.StringIO()
    with contextlib.redirect_stdout(Tee(sys.stdout, printed)):
        measure(args)
    command = "python -m benchmarks.studies.env_speed " + " ".join(sys.argv[1:])
    publish(args.out.parent, args.out.stem,
            f"# Env speed\n\nBuilt by `{command}` on {cpu_model()} ({os.cpu_count()} cores).\n\n"
            f"```text\n{printed.getvalue()}```\n")


class Tee(io.TextIOBase):
    """Writes to several text streams."""

    def __init__(self, *streams: io.TextIOBase) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)


def measure(args: Args) -> None:
    """Time every task of ``args`` and print the figures."""
    device = resolve_device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    matmul_rate = matmul_gflops(args.matmul_size, device)
    print(f"plain matmul {args.matmul_size}x{args.matmul_size} float32: {matmul_rate:.1f} GFLOP/s")
    envs = [time_task(name, args, device, matmul_rate) for name in args.tasks]
    if args.memory_episodes > 0:
        memory_check(envs[0], args.memory_episodes, args.memory_warmup)


if __name__ == "__main__":
    main(tyro.cli(Args))
