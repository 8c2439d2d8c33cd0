"""Evaluate one-step episodes on Ray actors: a pool for our own controllers, on one machine or a cluster.

``EvaluationPool`` starts ``workers`` Ray actors, each holding its own env (one CPU each, and one GPU each when
the cluster has one GPU per worker; fewer GPUs are shared evenly). ``evaluate`` dispatches whole episodes
``(reset seed, plan of per-layer sparsities)`` to whichever actor is free and returns the results in input order.

Failures. An actor that dies mid-episode (killed, out of memory, node lost) is replaced by a new actor in the same
slot and its episode is resubmitted, up to ``max_attempts`` times per episode. Every request has an index and one
result slot that is filled once, from a successful call only, so an episode is never lost and never counted
twice; an error raised by the env itself is not retried but raised.

Determinism. A plan's reward depends only on (reset seed, plan) on one kind of device (see ``PruningEnv``'s
Seeding), so 1 and N workers give the same rewards; ``random_search`` reproduces ``RandomSearch.train`` exactly.

``RayEnvPool`` offers the same actors to the MAPPO trainer through its ``EnvPool`` protocol (reset / step
commands), replaying the running episode's commands on a replacement actor.

    python -m agents.ray_pool --task lenet300-mnist --episodes 64 --workers 2          # local Ray
    python -m agents.ray_pool --task lenet300-mnist --episodes 512 --workers 16 --ray-address auto  # a cluster
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import ray
import torch
from ray.exceptions import RayActorError

from agents.base import TrainingReport, stacked, to_actions
from agents.mappo.rollout import EnvFactory, EnvHost, EnvInfo
from agents.random_search import RandomSearch
from pruning_env.env import PruningEnv

EnvSource = Mapping[str, Any] | Callable[[], PruningEnv]
"""``PruningEnv`` keyword arguments, or a picklable factory (e.g. ``functools.partial(PruningEnv, ...)``)."""
Plan = tuple[int, np.ndarray]
"""One episode: the reset seed and the requested sparsity of every layer ``(L,)``."""
ACTOR_START_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class EpisodeResult:
    """The outcome of one episode of ``EvaluationPool.evaluate``."""

    index: int
    """Position of the episode in ``evaluate``'s input."""
    reset_seed: int
    reward: float
    accuracy: float
    """Validation accuracy of the reward's evaluation (NaN for the zero-cost reward)."""
    loss: float
    applied: np.ndarray
    """Applied sparsity per layer ``(L,)`` after the budget projection."""
    seconds: float
    """Wall time of reset + step in the actor."""
    worker: int
    """Slot of the actor that produced the result."""
    attempts: int = 1
    """1 + the number of times the episode was resubmitted after its actor died."""


def build_env(source: EnvSource) -> PruningEnv:
    """The env of ``source``: ``PruningEnv(**source)`` for keyword arguments, else ``source()``."""
    return PruningEnv(**source) if isinstance(source, Mapping) else source()


class EnvActor:
    """One env running whole episodes (the body of a Ray actor; usable in-process too)."""

    def __init__(self, source: EnvSource, worker: int) -> None:
        torch.set_num_threads(1)  # one core per actor: actors share the node
        self.env = build_env(source)
        self.worker = worker

    def describe(self) -> dict[str, Any]:
        """Process id, device and the env's feature names."""
        return {"pid": os.getpid(), "device": str(self.env.device), "feature_names": list(self.env.feature_names)}

    def observe(self, reset_seed: int) -> np.ndarray:
        """The stacked observation ``(L, F)`` of the instance of ``reset_seed``."""
        observations, _ = self.env.reset(seed=reset_seed)
        return stacked(observations)

    def evaluate(self, index: int, reset_seed: int, plan: np.ndarray) -> EpisodeResult:
        """Reset with ``reset_seed``, request ``plan`` ``(L,)``, return the outcome."""
        start = time.perf_counter()
        self.env.reset(seed=reset_seed)
        _, rewards, _, _, infos = self.env.step(to_actions(plan))
        first = infos["layer_0"]
        applied = np.array([infos[agent]["applied_sparsity"] for agent in self.env.possible_agents])
        return EpisodeResult(
            index, reset_seed, float(rewards["layer_0"]), float(first["accuracy"]), float(first["loss"]),
            applied, time.perf_counter() - start, self.worker,
        )


def owned(value: Any) -> Any:
    """``value`` with its arrays copied (arrays Ray returns are read-only views of its object store), in tuples too."""
    if isinstance(value, np.ndarray):
        return value.copy()
    return tuple(owned(item) for item in value) if isinstance(value, tuple) else value


def gpus_for(workers: int, gpus_per_worker: float | Literal["auto"]) -> float:
    """GPUs per actor: ``"auto"`` gives one each when the cluster has enough, else an even share, else 0."""
    if gpus_per_worker == "auto":
        total = float(ray.cluster_resources().get("GPU", 0.0))
        return min(1.0, total / workers)
    if not (isinstance(gpus_per_worker, int | float) and gpus_per_worker >= 0):
        raise ValueError(f"gpus_per_worker must be 'auto' or a number >= 0, got {gpus_per_worker!r}")
    return float(gpus_per_worker)


@functools.cache
def _isolated_home() -> str:
    """One HOME per process: Ray keeps the auth token of its first ``init`` (in ``$HOME/.ray``) for the process."""
    folder = tempfile.mkdtemp(prefix="rayhome", dir="/tmp")
    atexit.register(shutil.rmtree, folder, True)
    return folder


@contextmanager
def local_ray(num_cpus: int, isolate_home: bool = False) -> Iterator[None]:
    """A local Ray cluster of ``num_cpus`` CPUs for the block, its files in a fresh short folder under /tmp.

    The folder path must stay short: Ray's unix socket paths live in it (about 107 bytes at most).
    ``isolate_home`` points HOME at a folder of this process's own for the block, so Ray writes nothing in the
    user's home (``~/.ray``, ``~/ray_results``): for tests.
    """
    folder = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    home = os.environ.get("HOME")
    if isolate_home:
        os.environ["HOME"] = _isolated_home()
    try:
        ray.init(num_cpus=num_cpus, include_dashboard=False, _temp_dir=folder)
        try:
            yield
        finally:
            ray.shutdown()
    finally:
        if isolate_home and home is not None:
            os.environ["HOME"] = home
        shutil.rmtree(folder, ignore_errors=True)


class ActorSlots:
    """``workers`` actors of one class, each replaceable in its slot; joins or starts Ray as needed.

    Ray already initialized in this process is used as it is (and left running); else ``ray_address`` is joined
    (``"auto"``, ``"host:port"``, ``"ray://host:10001"``) or, when None, a local cluster with at least one CPU per
    worker is started, and shut down by ``close``.
    """

    def __init__(
        self,
        actor_class: type,
        args: tuple,
        workers: int,
        ray_address: str | None = None,
        gpus_per_worker: float | Literal["auto"] = "auto",
        max_attempts: int = 3,
    ) -> None:
        if not (isinstance(workers, int) and workers >= 1):
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.max_attempts = max_attempts
        """How many times one episode may be started before its failures are raised (the pools read it)."""
        self.owns_ray = not ray.is_initialized()
        if self.owns_ray:
            num_cpus = None if ray_address is not None else max(workers, os.cpu_count() or 1)
            ray.init(address=ray_address, num_cpus=num_cpus, include_dashboard=False)
        gpus = gpus_for(workers, gpus_per_worker)
        self.remote_class = ray.remote(actor_class).options(num_cpus=1, num_gpus=gpus)
        self.args = args
        self.actors = [self._start(slot) for slot in range(workers)]
        self.restarts = 0
        self.infos: list[dict[str, Any]] = self.describe()

    def _start(self, slot: int) -> Any:
        return self.remote_class.remote(*self.args, slot)

    def describe(self) -> list[dict[str, Any]]:
        """Every actor's ``describe()``, waiting for them to start."""
        try:
            return ray.get([actor.describe.remote() for actor in self.actors], timeout=ACTOR_START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError as error:
            raise RuntimeError(
                f"Ray actors did not start within {ACTOR_START_TIMEOUT_S:.0f} s: does the cluster have 1 CPU "
                f"per worker? cluster resources: {ray.cluster_resources()}"
            ) from error

    def replace(self, slot: int) -> None:
        """Kill the actor of ``slot`` (if still alive) and start a new one there."""
        ray.kill(self.actors[slot], no_restart=True)
        self.actors[slot] = self._start(slot)
        self.restarts += 1

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
        if self.owns_ray:
            ray.shutdown()


class EvaluationPool:
    """``workers`` Ray actors, each holding an env built from ``env``; see the module docstring.

    Args:
        env: ``PruningEnv`` keyword arguments, or a picklable factory returning the env.
        workers: number of actors (one CPU each).
        ray_address: cluster to join; None starts a local one (unless Ray is already initialized here).
        gpus_per_worker: GPUs per actor, or ``"auto"`` (one each when the cluster has enough, else shared).
        max_attempts: how many times one episode may be started before its failures are raised.
    """

    def __init__(
        self,
        env: EnvSource,
        workers: int = 1,
        ray_address: str | None = None,
        gpus_per_worker: float | Literal["auto"] = "auto",
        max_attempts: int = 3,
    ) -> None:
        self.slots = ActorSlots(EnvActor, (env,), workers, ray_address, gpus_per_worker, max_attempts)
        self.feature_names: list[str] = self.slots.infos[0]["feature_names"]

    @property
    def workers(self) -> int:
        return len(self.slots.actors)

    @property
    def restarts(self) -> int:
        """Actors replaced so far."""
        return self.slots.restarts

    def describe(self) -> list[dict[str, Any]]:
        """Each live actor's process id, device and feature names."""
        return self.slots.describe()

    def observe(self, reset_seed: int) -> np.ndarray:
        """The stacked observation ``(L, F)`` of the instance of ``reset_seed``."""
        return owned(self._run([("observe", (reset_seed,))])[0][0])

    def evaluate(self, plans: Sequence[Plan]) -> list[EpisodeResult]:
        """Run every ``(reset seed, plan)`` once; the results in input order."""
        calls = [("evaluate", (index, int(seed), np.asarray(plan, dtype=np.float64))) for index, (seed, plan) in enumerate(plans)]
        results, attempts = self._run(calls)
        return [replace(r, applied=owned(r.applied), attempts=a) for r, a in zip(results, attempts, strict=True)]

    def rewards(self, reset_seed: int, plans: np.ndarray) -> np.ndarray:
        """The reward of each plan ``(N, L)`` on the instance of ``reset_seed``, ``(N,)`` (a ``PlanEvaluator``)."""
        return np.array([result.reward for result in self.evaluate([(reset_seed, plan) for plan in plans])])

    def _run(self, calls: Sequence[tuple[str, tuple]]) -> tuple[list[Any], list[int]]:
        """Each ``(method, args)`` run once on some actor; results and attempts in input order."""
        queue = deque(range(len(calls)))
        results: list[Any] = [None] * len(calls)
        done = [False] * len(calls)
        attempts = [0] * len(calls)
        idle = deque(range(self.workers))
        running: dict[ray.ObjectRef, tuple[int, int]] = {}  # call's result -> (call index, actor slot)
        while queue or running:
            while queue and idle:
                index, slot = queue.popleft(), idle.popleft()
                method, args = calls[index]
                attempts[index] += 1
                running[getattr(self.slots.actors[slot], method).remote(*args)] = (index, slot)
            ready, _ = ray.wait(list(running), num_returns=1)
            index, slot = running.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except RayActorError as error:
                if attempts[index] >= self.slots.max_attempts:
                    raise RuntimeError(f"request {index} failed on {attempts[index]} actors; the last error follows") from error
                self.slots.replace(slot)
                queue.appendleft(index)
            else:
                if done[index]:
                    raise RuntimeError(f"request {index} returned twice")  # unreachable: one call in flight per request
                results[index], done[index] = result, True
            idle.append(slot)
        return results, attempts

    def close(self) -> None:
        """Kill the actors (and shut Ray down if this pool started it)."""
        self.slots.close()

    def __enter__(self) -> EvaluationPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class PoolView:
    """What ``RandomSearch`` reads from its env, served by a pool: feature names and the instance's observation."""

    def __init__(self, pool: EvaluationPool) -> None:
        self.pool = pool
        self.feature_names = pool.feature_names

    def reset(self, seed: int) -> tuple[dict[str, np.ndarray], dict]:
        matrix = self.pool.observe(seed)
        return {f"layer_{i}": row for i, row in enumerate(matrix)}, {}


def random_search(
    pool: EvaluationPool,
    episodes: int,
    center: str = "erk",
    scale: float = 1.0,
    seed: int = 0,
    include_center: bool = False,
) -> tuple[TrainingReport, np.ndarray]:
    """``RandomSearch.train`` with every plan evaluated on ``pool`` (all at once): the same plans, rewards and
    history. Returns the report and the best plan ``(L,)``."""
    search = RandomSearch(
        PoolView(pool), episodes, center, scale, seed, include_center, progress=False,  # type: ignore[arg-type]
        evaluate_plans=pool.rewards,
    )
    report = search.train()
    return report, search.best_plan  # type: ignore[return-value]


class EnvHostActor:
    """The MAPPO trainer's ``EnvHost`` (every env factory's env) in a Ray actor."""

    def __init__(self, factories: Sequence[EnvFactory], worker: int) -> None:
        torch.set_num_threads(1)
        self.host = EnvHost(factories)

    def describe(self) -> dict[str, Any]:
        """Process id and the hosted envs' ``EnvInfo``."""
        return {"pid": os.getpid(), "infos": self.host.infos}

    def handle(self, command: tuple) -> Any:
        return self.host.handle(command)


class RayEnvPool:
    """The MAPPO trainer's ``EnvPool`` (``agents.mappo.rollout``) on Ray actors, each hosting every env.

    An actor that dies is replaced and the commands of its running episode (the reset, and the step if one was
    sent) are replayed on the new actor in order, so the trainer gets exactly one reply to every command it sent;
    an episode whose actors die ``max_attempts`` times raises. Other arguments as ``EvaluationPool``.
    """

    def __init__(
        self,
        factories: Sequence[EnvFactory],
        num_workers: int,
        ray_address: str | None = None,
        gpus_per_worker: float | Literal["auto"] = "auto",
        max_attempts: int = 3,
    ) -> None:
        self.slots = ActorSlots(EnvHostActor, (list(factories),), num_workers, ray_address, gpus_per_worker,
                                max_attempts)
        self.num_workers = num_workers
        self.infos: list[EnvInfo] = self.slots.infos[0]["infos"]
        self._episode: list[list[tuple]] = [[] for _ in range(num_workers)]  # commands since each worker's reset
        self._failures = [0] * num_workers
        self._running: dict[ray.ObjectRef, int] = {}

    def send(self, worker: int, command: tuple) -> None:
        if command[0] == "reset":
            self._episode[worker], self._failures[worker] = [], 0
        self._episode[worker].append(command)
        self._running[self.slots.actors[worker].handle.remote(command)] = worker

    def receive(self) -> list[tuple[int, Any]]:
        """The next reply as ``[(worker, reply)]``, waiting for it (failed actors are replaced meanwhile)."""
        while True:
            ready, _ = ray.wait(list(self._running), num_returns=1)
            worker = self._running.pop(ready[0])
            try:
                return [(worker, owned(ray.get(ready[0])))]
            except RayActorError as error:
                self._restart(worker, error)

    def _restart(self, worker: int, error: RayActorError) -> None:
        self._failures[worker] += 1
        if self._failures[worker] >= self.slots.max_attempts:
            raise RuntimeError(f"worker {worker}'s episode failed on {self._failures[worker]} actors") from error
        self.slots.replace(worker)
        *delivered, last = self._episode[worker]
        actor = self.slots.actors[worker]
        for command in delivered:  # their replies already reached the trainer; an actor runs its calls in order
            actor.handle.remote(command)
        self._running[actor.handle.remote(last)] = worker

    def close(self) -> None:
        self.slots.close()


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
    center: str = "erk"
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
    with EvaluationPool(args.env_kwargs(), args.workers, args.ray_address, gpus) as pool:
        report, plan = random_search(pool, args.episodes, args.center, args.scale, args.seed)
        restarts = pool.restarts
    print(f"{args.episodes} episodes on {args.workers} workers in {report.seconds:.1f} s "
          f"({restarts} actors replaced); best reward {report.best_reward:.5f}")
    print("best plan (requested sparsity per layer):", np.array2string(plan, precision=4))


if __name__ == "__main__":
    import tyro

    from agents import ray_pool  # the actors' class must come from the importable module, not from __main__

    ray_pool.main(tyro.cli(ray_pool.Args))
