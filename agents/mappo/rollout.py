"""Collecting one-step episodes from env copies, in-process or in worker processes.

The policy stays in the main process; workers only host envs. Every episode is fixed in advance by
``episode_plan`` (its task, reset seed and sampling seed are functions of the run seed and the episode's index),
so a run's numbers do not depend on the number of workers or on their timing. Workers take episodes as they
become free: reset -> the main process samples the actions -> step -> next episode.
"""

from __future__ import annotations

import multiprocessing
import pickle
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

import numpy as np
import torch

from agents.base import Actions, stacked, to_actions
from agents.mappo.policy import TokenPolicy, sparsities
from pruning_env.data import load_dataset
from pruning_env.env import PruningEnv
from pruning_env.multi_task import MultiTaskPruningEnv
from pruning_env.tasks import Task

LOGIT_CLIP = 15.0  # requested sparsities stay in [sigmoid(-15), sigmoid(15)], exactly representable below 1
SEED_LIMIT = 2**31 - 1
EnvFactory = Callable[[], PruningEnv]


@dataclass(frozen=True)
class EnvSpec:
    """A picklable env factory (worker processes need one): ``PruningEnv(task, data=..., **options)``.

    ``task`` is a task name or a ``Task`` (e.g. one with another proxy schedule); ``dataset`` overrides the task's dataset by name (e.g. ``"synthetic-cifar10"`` when no CIFAR archive is at
    hand); ``options`` are further ``PruningEnv`` keyword arguments (target_sparsity, reward, reward_steps, ...).
    """

    task: str | Task = "mlp-digits"
    dataset: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> PruningEnv:
        data = None if self.dataset is None else load_dataset(self.dataset)
        return PruningEnv(self.task, data=data, **self.options)


@dataclass(frozen=True)
class EnvInfo:
    """What the trainer needs to know about one env factory's envs."""

    feature_names: tuple[str, ...]
    action_bins: int | None
    """Discrete bins, or None for continuous actions."""
    draws_per_episode: bool
    """The env draws something new on every reset: an initialization, a target or (multi-task) a network."""

    @classmethod
    def of(cls, env: PruningEnv | MultiTaskPruningEnv) -> EnvInfo:
        bins = env.action_bins if env.action_type == "discrete" else None
        return cls(tuple(env.feature_names), bins, env.draws_per_episode)


@dataclass(frozen=True)
class PlannedEpisode:
    """Which env factory, the seed to reset it with, the seed of the action sample."""

    task: int
    reset_seed: int
    sample_seed: int


@dataclass
class Episode:
    """A finished one-step episode: observation ``(L, F)``, actions / log-probs ``(L,)``, value, reward, infos."""

    task: int
    obs: np.ndarray
    actions: np.ndarray
    log_prob: np.ndarray
    value: float
    reward: float
    accuracy: float
    loss: float
    applied: np.ndarray
    """Applied sparsity per layer (after the budget projection)."""


def episode_plan(seed: int, first: int, count: int, fresh: Sequence[bool], group_size: int = 1) -> list[PlannedEpisode]:
    """Episodes ``first .. first + count - 1`` of a run over ``len(fresh)`` env factories.

    Episode ``index`` belongs to group ``index // group_size``; a group shares its task, drawn uniformly, and its
    reset seed: ``seed`` itself for a factory whose entry in ``fresh`` is False (every episode on the same
    instance), else drawn; both from ``np.random.default_rng([seed, group])``. The action sample's seed is that
    generator's next draw when ``group_size`` is 1, else drawn from ``default_rng([seed, index, 1])``.
    """
    plan = []
    for index in range(first, first + count):
        rng = np.random.default_rng([seed, index // group_size])
        task = int(rng.integers(len(fresh)))
        drawn, sample_seed = (int(value) for value in rng.integers(SEED_LIMIT, size=2))
        if group_size > 1:
            sample_seed = int(np.random.default_rng([seed, index, 1]).integers(SEED_LIMIT))
        plan.append(PlannedEpisode(task, drawn if fresh[task] else seed, sample_seed))
    return plan


def env_actions(actions: np.ndarray, discrete: bool) -> Actions:
    """Policy actions ``(L,)`` -> the env's dict: sparsity ``sigmoid(logit)`` or the bin index."""
    if discrete:
        return {f"layer_{i}": np.int64(value) for i, value in enumerate(actions)}
    logits = torch.as_tensor(np.asarray(actions, dtype=np.float64)).clamp(-LOGIT_CLIP, LOGIT_CLIP)
    return to_actions(sparsities(logits).numpy())


class EnvHost:
    """Envs of every factory, one episode at a time (lives in a worker, or in the main process)."""

    def __init__(self, factories: Sequence[EnvFactory]) -> None:
        self.envs = [factory() for factory in factories]
        self.infos = [EnvInfo.of(env) for env in self.envs]
        self.current: PruningEnv | None = None

    def reset(self, task: int, seed: int) -> np.ndarray:
        self.current = self.envs[task]
        observations, _ = self.current.reset(seed=seed)
        return stacked(observations)

    def step(self, actions: Actions) -> tuple[float, float, float, np.ndarray]:
        """Reward, accuracy, loss and applied sparsities ``(L,)`` of the running episode."""
        assert self.current is not None
        _, rewards, _, _, infos = self.current.step(actions)
        first = infos["layer_0"]
        applied = np.array([infos[f"layer_{i}"]["applied_sparsity"] for i in range(len(infos))])
        return float(rewards["layer_0"]), float(first["accuracy"]), float(first["loss"]), applied

    def handle(self, command: tuple) -> Any:
        kind, *args = command
        return self.reset(*args) if kind == "reset" else self.step(*args)


class EnvPool(Protocol):
    """Workers that run ``("reset", task, seed)`` and ``("step", actions)`` commands."""

    num_workers: int
    infos: list[EnvInfo]

    def send(self, worker: int, command: tuple) -> None: ...

    def receive(self) -> list[tuple[int, Any]]:
        """Replies that are ready as ``(worker, reply)``, waiting for at least one."""
        ...

    def close(self) -> None: ...


class LocalPool:
    """One env host in this process: each command runs at once."""

    num_workers = 1

    def __init__(self, factories: Sequence[EnvFactory]) -> None:
        self.host = EnvHost(factories)
        self.infos = self.host.infos
        self.replies: deque[tuple[int, Any]] = deque()

    def send(self, worker: int, command: tuple) -> None:
        self.replies.append((worker, self.host.handle(command)))

    def receive(self) -> list[tuple[int, Any]]:
        replies = list(self.replies)
        self.replies.clear()
        return replies

    def close(self) -> None:
        self.host = None  # type: ignore[assignment]


def _worker_main(connection: Connection, factories: Sequence[EnvFactory]) -> None:
    torch.set_num_threads(1)  # one core per worker: the workers share the machine
    try:
        host = EnvHost(factories)
        connection.send(("ok", host.infos))
        while (command := connection.recv()) != ("close",):
            connection.send(("ok", host.handle(command)))
    except Exception:
        connection.send(("error", traceback.format_exc()))
    finally:
        connection.close()


class ProcessPool:
    """``num_workers`` spawned processes, each hosting its own copy of every env (one torch thread each).

    Spawned workers re-import the main module: a script that trains with workers > 1 needs the
    ``if __name__ == "__main__":`` guard.
    """

    def __init__(self, factories: Sequence[EnvFactory], num_workers: int) -> None:
        try:
            pickle.dumps(list(factories))
        except Exception as error:
            raise ValueError(
                "workers > 1 needs picklable env factories (e.g. EnvSpec or functools.partial(PruningEnv, ...)), "
                f"got {factories!r}: {error}"
            ) from error
        context = multiprocessing.get_context("spawn")
        self.num_workers = num_workers
        self.connections: list[Connection] = []
        self.processes = []
        for _ in range(num_workers):
            parent, child = context.Pipe()
            process = context.Process(target=_worker_main, args=(child, list(factories)), daemon=True)
            process.start()
            child.close()
            self.connections.append(parent)
            self.processes.append(process)
        try:
            self.infos: list[EnvInfo] = [self._reply(connection) for connection in self.connections][0]
        except Exception:
            self.close()
            raise

    def _reply(self, connection: Connection) -> Any:
        try:
            status, payload = connection.recv()
        except EOFError as error:
            raise RuntimeError("an env worker process died (see its output above)") from error
        if status == "error":
            raise RuntimeError(f"an env worker failed:\n{payload}")
        return payload

    def send(self, worker: int, command: tuple) -> None:
        self.connections[worker].send(command)

    def receive(self) -> list[tuple[int, Any]]:
        ready = wait(self.connections)
        return [(self.connections.index(c), self._reply(c)) for c in ready]  # type: ignore[arg-type]

    def close(self) -> None:
        for connection, process in zip(self.connections, self.processes, strict=True):
            if process.is_alive():
                try:
                    connection.send(("close",))
                except (BrokenPipeError, OSError):
                    pass
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
            connection.close()


def make_pool(factories: Sequence[EnvFactory], workers: int, ray_address: str | None = None) -> EnvPool:
    """Ray actors when ``ray_address`` is set ("local" starts a local cluster), else in-process for one worker,
    else spawned worker processes."""
    if ray_address is not None:
        from agents.ray_pool import RayEnvPool  # ray is an optional extra: imported only when asked for

        return RayEnvPool(factories, workers, None if ray_address == "local" else ray_address)
    return LocalPool(factories) if workers == 1 else ProcessPool(factories, workers)


@dataclass
class _Running:
    index: int
    planned: PlannedEpisode
    obs: np.ndarray | None = None
    actions: np.ndarray | None = None
    log_prob: np.ndarray | None = None
    value: float = 0.0


def _sample(policy: TokenPolicy, obs: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    tokens = torch.as_tensor(obs).unsqueeze(0)
    mask = torch.ones(tokens.shape[:2], dtype=torch.bool)
    actions, log_prob, value = policy.act(tokens, mask, generator=torch.Generator().manual_seed(seed))
    return actions[0].numpy(), log_prob[0].numpy(), float(value[0])


def collect(policy: TokenPolicy, pool: EnvPool, plan: Sequence[PlannedEpisode]) -> list[Episode]:
    """Run the planned episodes on the pool's workers; the episodes in plan order."""
    queue = deque(enumerate(plan))
    running: dict[int, _Running] = {}
    done: list[Episode | None] = [None] * len(plan)

    def start(worker: int) -> None:
        if queue:
            index, planned = queue.popleft()
            running[worker] = _Running(index, planned)
            pool.send(worker, ("reset", planned.task, planned.reset_seed))

    for worker in range(pool.num_workers):
        start(worker)
    while running:
        for worker, reply in pool.receive():
            episode = running[worker]
            if episode.obs is None:
                episode.obs = reply
                episode.actions, episode.log_prob, episode.value = _sample(policy, reply, episode.planned.sample_seed)
                discrete = pool.infos[episode.planned.task].action_bins is not None
                pool.send(worker, ("step", env_actions(episode.actions, discrete)))
                continue
            reward, accuracy, loss, applied = reply
            done[episode.index] = Episode(
                episode.planned.task, episode.obs, episode.actions, episode.log_prob, episode.value,
                reward, accuracy, loss, applied,
            )
            del running[worker]
            start(worker)
    return done  # type: ignore[return-value]


def pad(episodes: Sequence[Episode]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Observations ``(N, L, F)``, mask, actions and log-probs ``(N, L)``, zero-padded to the longest network."""
    length = max(len(episode.obs) for episode in episodes)
    count, features = len(episodes), episodes[0].obs.shape[1]
    obs = torch.zeros(count, length, features)
    mask = torch.zeros(count, length, dtype=torch.bool)
    actions, log_prob = torch.zeros(count, length), torch.zeros(count, length)
    for i, episode in enumerate(episodes):
        size = len(episode.obs)
        obs[i, :size] = torch.as_tensor(episode.obs)
        mask[i, :size] = True
        actions[i, :size] = torch.as_tensor(episode.actions)
        log_prob[i, :size] = torch.as_tensor(episode.log_prob)
    return obs, mask, actions, log_prob
