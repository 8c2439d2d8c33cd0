"""The training loop: collect -> advantages -> PPO update -> log -> checkpoint, one small function per phase.

With ``config.out`` set, a run folder holds ``progress.csv`` (one row per update), TensorBoard events (when
tensorboardX or tensorboard is installed; one subfolder ``tensorboard/run-<start time>`` per run or resumed run), ``checkpoint.pt`` (written atomically every ``checkpoint_every``
updates and at the end) and ``learning_curve.png``. ``config.resume`` continues from the checkpoint: the CSV
is rewritten from the checkpoint's history (rows after it are dropped, so the log stays continuous) and the run
goes on to the requested episode count; ``config.overwrite`` replaces the run, and a folder that already holds a
run is refused otherwise. Episode seeds are functions of (seed, episode index) and minibatch
orders of (seed, update), so a resumed run reproduces the uninterrupted one.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.base import TrainingReport
from agents.mappo.config import MappoConfig
from agents.mappo.policy import TokenPolicy
from agents.mappo.ppo import Batch, RunningMeanStd, group_advantages, one_step_targets, ppo_update
from agents.mappo.rollout import Episode, collect, episode_plan, pad
from pruning_env.files import replacing
from pruning_env.pools import EnvInfo, EvaluationPool

CHECKPOINT = "checkpoint.pt"
PROGRESS = "progress.csv"
CURVE = "learning_curve.png"


@dataclass
class TrainState:
    """Everything a checkpoint restores besides the weights and the optimizer."""

    update: int = 0
    episodes: int = 0
    seconds: float = 0.0
    best_reward: float = -math.inf
    best_plan: list[float] = field(default_factory=list)
    """Applied sparsities of the best episode so far."""
    best_task: int = 0
    """Index of the env factory the best episode ran on."""
    best_observation: list[list[float]] = field(default_factory=list)
    """Observation ``(L, F)`` of the best episode."""
    reward_stats: RunningMeanStd = field(default_factory=RunningMeanStd)
    history: list[dict[str, float]] = field(default_factory=list)

    def record_best(self, episodes: Sequence[Episode]) -> None:
        best = max(episodes, key=lambda episode: episode.reward)
        if best.reward > self.best_reward:
            self.best_reward, self.best_plan, self.best_task = best.reward, best.result.applied.tolist(), best.task
            self.best_observation = best.obs.tolist()


def check_compatible(policy: TokenPolicy, infos: Sequence[EnvInfo]) -> None:
    """Raise ValueError unless every env has the policy's feature columns and action type."""
    for index, info in enumerate(infos):
        if list(info.feature_names) != policy.feature_names:
            raise ValueError(
                f"env factory {index} has features {list(info.feature_names)}, the policy reads {policy.feature_names}"
            )
        if info.action_bins != policy.action_bins:
            raise ValueError(
                f"env factory {index} has action_bins {info.action_bins} (None = continuous), "
                f"the policy acts with {policy.action_bins}"
            )


def fresh_seeds(config: MappoConfig, infos: Sequence[EnvInfo]) -> list[bool]:
    """Per env factory: does every episode get a new reset seed? (see ``MappoConfig.episode_seeds``)."""
    if config.episode_seeds == "auto":
        return [info.draws_per_episode for info in infos]
    return [config.episode_seeds == "fresh"] * len(infos)


def _derived_seed(*keys: int) -> int:
    return int(np.random.default_rng(list(keys)).integers(2**62))


def run_update(
    policy: TokenPolicy, optimizer: torch.optim.Optimizer, pool: EvaluationPool, state: TrainState,
    count: int, seed: int, fresh: Sequence[bool], config: MappoConfig,
) -> dict[str, float]:
    """Collect ``count`` episodes, update the policy once, advance ``state``; the update's log row."""
    start = time.perf_counter()
    episodes = collect(policy, pool, episode_plan(seed, state.episodes, count, fresh, config.group_size))
    rewards = np.array([episode.reward for episode in episodes])
    values = np.array([episode.value for episode in episodes])
    advantages, returns = one_step_targets(rewards, values, state.reward_stats if config.normalize_rewards else None)
    if config.group_size > 1:
        advantages = group_advantages(returns, (state.episodes + np.arange(count)) // config.group_size)
    obs, mask, actions, log_prob = pad(episodes)
    batch = Batch(obs, mask, actions, log_prob, torch.as_tensor(advantages).float(), torch.as_tensor(returns).float())
    generator = torch.Generator().manual_seed(_derived_seed(seed, state.update, 1))
    stats = ppo_update(policy, optimizer, batch, config, generator)
    state.update += 1
    state.episodes += count
    state.seconds += time.perf_counter() - start
    state.record_best(episodes)
    row = {
        "update": state.update, "episodes": state.episodes, "seconds": state.seconds,
        "reward_mean": float(rewards.mean()), "reward_std": float(rewards.std()), "reward_max": float(rewards.max()),
        "best_reward": state.best_reward,
        "accuracy_mean": float(np.mean([episode.result.accuracy for episode in episodes])),
        "loss_mean": float(np.mean([episode.result.loss for episode in episodes])),
        "value_mean": float(values.mean()), "std": policy.log_std.exp().item(), **stats,
    }
    state.history.append(row)
    return row


# --- files ----------------------------------------------------------------------------------------------------
def save_checkpoint(path: Path, policy: TokenPolicy, optimizer: torch.optim.Optimizer, state: TrainState,
                    config: MappoConfig, seed: int) -> None:
    """Weights, optimizer, ``state`` and the config, written atomically."""
    payload = {
        "config": asdict(config.numbers()), "seed": seed, "policy": policy.state_dict(),
        "optimizer": optimizer.state_dict(), "state": asdict(state),
    }
    with replacing(path) as temporary:
        torch.save(payload, temporary)


def load_checkpoint(path: Path, policy: TokenPolicy, optimizer: torch.optim.Optimizer, config: MappoConfig,
                    seed: int) -> TrainState:
    """Restore weights and optimizer in place; the saved state. ValueError if the run's numbers differ."""
    if not path.exists():
        raise ValueError(f"resume=True but there is no checkpoint at {path}")
    payload = torch.load(path, weights_only=True)
    current = asdict(config.numbers())
    changed = {key: (payload["config"][key], current[key]) for key in current if payload["config"][key] != current[key]}
    if changed or payload["seed"] != seed:
        raise ValueError(f"resume needs the checkpoint's config and seed; differences (saved, now): {changed}, "
                         f"seed {payload['seed']} vs {seed}")
    policy.load_state_dict(payload["policy"])
    optimizer.load_state_dict(payload["optimizer"])
    saved = payload["state"]
    return TrainState(**{**saved, "reward_stats": RunningMeanStd(**saved["reward_stats"])})


class RunLog:
    """CSV rows (and TensorBoard scalars) of a run; on resume the CSV restarts from the checkpoint's history."""

    def __init__(self, out: Path | None, history: Sequence[dict[str, float]], tensorboard: bool) -> None:
        self.csv_path = None if out is None else out / PROGRESS
        self.writer = _tensorboard_writer(out, purge_step=len(history) + 1) if out is not None and tensorboard else None
        self.fields: list[str] | None = list(history[0]) if history else None
        if self.csv_path is not None:
            with replacing(self.csv_path) as temporary:
                self._write(temporary, history)

    def _write(self, path: Path, rows: Sequence[dict[str, float]]) -> None:
        with open(path, "w", newline="") as file:
            if rows:
                writer = csv.DictWriter(file, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)

    def append(self, row: dict[str, float]) -> None:
        if self.csv_path is not None:
            with open(self.csv_path, "a", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=list(row))
                if self.fields is None:
                    writer.writeheader()
                    self.fields = list(row)
                writer.writerow(row)
        if self.writer is not None:
            for key, value in row.items():
                self.writer.add_scalar(f"mappo/{key}", value, int(row["update"]))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _tensorboard_writer(out: Path, purge_step: int) -> Any:
    """A SummaryWriter from tensorboardX or torch.utils.tensorboard, or None when neither is installed."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
    run = datetime.now().strftime("run-%Y%m%d-%H%M%S-%f")
    return SummaryWriter(str(out / "tensorboard" / run), purge_step=purge_step)


def plot_learning_curve(history: Sequence[dict[str, float]], path: Path, title: str = "transformer MAPPO") -> None:
    """Mean reward per update and best reward so far against episodes, as a PNG."""
    # matplotlib (the agents extra) is imported only when a run folder gets its curve, not with ``import agents``
    from benchmarks.plots import Panel, Series, save_lines

    episodes = [row["episodes"] for row in history]
    series = [Series("mean reward of the update", episodes, [row["reward_mean"] for row in history]),
              Series("best reward so far", episodes, [row["best_reward"] for row in history])]
    save_lines(path, [Panel(title, "episodes (reward evaluations)", "reward", series)])


# --- the loop -------------------------------------------------------------------------------------------------
def run_training(policy: TokenPolicy, pool: EvaluationPool, episodes: int, seed: int, config: MappoConfig,
                 on_update: Callable[[int], None] | None = None) -> tuple[TrainingReport, TrainState]:
    """Train ``policy`` in place for ``episodes`` reward evaluations drawn across the pool's env sources (the
    caller owns the pool and closes it); ``on_update(episodes spent)`` at the start and after each update."""
    if episodes < 0:
        raise ValueError(f"episodes must be >= 0, got {episodes}")
    from tqdm.auto import tqdm

    out = None if config.out is None else Path(config.out)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.learning_rate, eps=1e-5)
    if config.resume:
        state = load_checkpoint(out / CHECKPOINT, policy, optimizer, config, seed)  # type: ignore[operator]
    else:
        state = TrainState()
    if out is not None:
        existing = sorted(path.name for path in out.glob("*")) if out.exists() else []
        if existing and not (config.resume or config.overwrite):
            raise ValueError(
                f"the run folder {out} already holds a run ({', '.join(existing)}): pass resume=True to continue it "
                "(--resume on the command line), overwrite=True to replace it (--overwrite), or another out"
            )
        out.mkdir(parents=True, exist_ok=True)
    log = RunLog(out, state.history, config.tensorboard)
    bar = tqdm(total=episodes, initial=min(state.episodes, episodes), unit="episode", disable=not config.progress)
    try:
        check_compatible(policy, pool.infos)
        fresh = fresh_seeds(config, pool.infos)
        if on_update is not None:
            on_update(state.episodes)
        while state.episodes < episodes:
            count = min(config.episodes_per_update, episodes - state.episodes)
            row = run_update(policy, optimizer, pool, state, count, seed, fresh, config)
            log.append(row)
            bar.update(count)
            bar.set_postfix(reward=f"{row['reward_mean']:.4f}", best=f"{state.best_reward:.4f}")
            if on_update is not None:
                on_update(state.episodes)
            if out is not None and state.update % config.checkpoint_every == 0:
                save_checkpoint(out / CHECKPOINT, policy, optimizer, state, config, seed)
    finally:
        bar.close()
        log.close()
    if out is not None:
        save_checkpoint(out / CHECKPOINT, policy, optimizer, state, config, seed)
        if state.history:
            title = f"transformer MAPPO{' (autoregressive)' if config.autoregressive else ''}: {pool.infos[0].label}"
            plot_learning_curve(state.history, out / CURVE, title)
    report = TrainingReport(state.episodes, state.seconds, state.best_reward, list(state.history))
    return report, state
