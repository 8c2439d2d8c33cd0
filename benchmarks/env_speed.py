"""Env speed and memory: episodes per second, reset and step latency, and the step against a plain torch loop.

    python -m benchmarks.env_speed                      # mlp-digits and lenet300-mnist on the default device
    python -m benchmarks.env_speed --device cuda --tasks resnet20-cifar10

For each task it prints the median seconds of an uncached reset (new initialization: proxies scored), a cached
reset, a step (projection + masks + K masked training steps + evaluation) and the same K training steps and
evaluation written as a plain hand-written torch loop on the same network and data, and their ratio. Then the
resident memory over ``--memory-episodes`` episodes of the first task. A CIFAR task falls back to synthetic
CIFAR-shaped data when the archive is absent.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import tyro

from pruning_env.data import Dataset, load_dataset
from pruning_env.env import PruningEnv, resolve_device
from pruning_env.models import build_model
from pruning_env.tasks import get_task
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
    if device.type == "cuda":
        torch.cuda.synchronize(device)
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


def time_task(task_name: str, args: Args, device: torch.device) -> PruningEnv:
    data = task_data(task_name, device)
    env = PruningEnv(task_name, data=data, device=device, reward_steps=args.reward_steps, cache_size=args.repeats + 2)
    target = env.target_range[0]
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
    config = env._reward.train_config
    eval_size = len(env._reward.x_eval)
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
    return env


def memory_check(env: PruningEnv, episodes: int, warmup: int) -> None:
    target = env.target_range[0]
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
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    envs = [time_task(name, args, device) for name in args.tasks]
    if args.memory_episodes > 0:
        memory_check(envs[0], args.memory_episodes, args.memory_warmup)


if __name__ == "__main__":
    main(tyro.cli(Args))
