"""The evaluation protocol: env sources, requests, what a pool knows of its sources, and the scheduling loop.

``EnvHost`` is the worker side (the envs of every source, answering ``observe`` and ``evaluate`` calls);
``dispatch`` is the driver side shared by every backend: it runs each call once on some free worker, replaces a
worker that died and resubmits its call, and returns the results in input order.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from pruning_env.parallel import PruningEnv
from pruning_env.plan import EpisodeResult
from pruning_env.plan_env import EnvFactory, PlanEnv
from pruning_env.spaces import stack_observations

EnvSource = Mapping[str, Any] | EnvFactory
"""``PruningEnv`` keyword arguments, or a picklable factory (e.g. ``functools.partial(PruningEnv, ...)``)."""
Call = tuple[str, int, Any]
"""One worker call: ("observe", source index, reset seed) or ("evaluate", source index, [(seed, plan), ...])."""


def build_env(source: EnvSource | PlanEnv) -> PlanEnv:
    """The env of ``source``: ``PruningEnv(**source)`` for keyword arguments, ``source()`` for a factory, else the
    ready env itself."""
    if isinstance(source, Mapping):
        return PruningEnv(**source)
    return source() if callable(source) else source


@dataclass(frozen=True)
class PlanRequest:
    """One episode to evaluate: the reset seed, the requested sparsity of every layer ``(L,)``, the source."""

    seed: int
    plan: np.ndarray
    source: int = 0


@dataclass(frozen=True)
class EnvInfo:
    """What a pool's driver needs to know about one source's envs."""

    feature_names: tuple[str, ...]
    action_bins: int | None
    """Discrete bins, or None for continuous actions."""
    draws_per_episode: bool
    """The env draws something new on every reset: an initialization, a target or (multi-task) a network."""
    label: str = ""
    """What the env poses, for titles and logs: task, target, reward and K."""
    reward_batch: int = 1
    """Episodes one ``evaluate`` call to a worker carries (the env's ``reward_batch``: 1 on CPU)."""

    @classmethod
    def of(cls, env: PlanEnv) -> EnvInfo:
        bins = env.action_bins if env.action_type == "discrete" else None
        return cls(tuple(env.feature_names), bins, env.draws_per_episode, env.label, env.reward_batch)


class EnvHost:
    """The envs of every source, answering stateless calls (the body of a worker; usable in-process)."""

    def __init__(self, sources: Sequence[EnvSource | PlanEnv]) -> None:
        self.envs = [build_env(source) for source in sources]
        self.infos = [EnvInfo.of(env) for env in self.envs]

    def call(self, kind: str, source: int, payload: Any) -> np.ndarray | list[EpisodeResult]:
        """``observe`` (payload: a reset seed): the stacked observation ``(L, F)`` of the (source, seed) instance;
        ``evaluate`` (payload: ``[(seed, plan), ...]``): each episode's result (``evaluate_plans``)."""
        env = self.envs[source]
        if kind == "observe":
            observations, _ = env.reset(seed=payload)
            return stack_observations(observations)
        if kind == "evaluate":
            return [replace(result, source=source) for result in env.evaluate_plans(payload)]
        raise ValueError(f"unknown call {kind!r}: a host answers 'observe' and 'evaluate'")


class WorkerLost(Exception):
    """A worker died while running a call (its call is resubmitted elsewhere)."""


class Backend(Protocol):
    """Workers in slots ``0 … workers - 1``, each running one call at a time."""

    workers: int
    restarts: int
    """Workers replaced so far."""

    def submit(self, slot: int, call: Any) -> Any:
        """Start ``call`` on the worker of ``slot``; a hashable handle of the running call."""
        ...

    def wait(self, handles: list[Any]) -> Any:
        """Block until one of ``handles`` is done; that handle."""
        ...

    def result(self, handle: Any) -> Any:
        """The finished call's value; ``WorkerLost`` if its worker died, the env's own error if it raised."""
        ...

    def replace(self, slot: int) -> None:
        """Start a new worker in ``slot`` (the old one is gone or killed)."""
        ...


def dispatched(backend: Backend, calls: Sequence[Any], max_attempts: int, progress: str | None = None,
               unit: str = "call") -> Iterator[tuple[int, Any]]:
    """Run every call once on some free worker; ``(index in calls, value)`` of each as it finishes.

    A call whose worker died is resubmitted (first in the queue) on a replacement worker; after ``max_attempts``
    starts of one call its last failure is raised as RuntimeError. ``progress`` names a tqdm bar counting ``unit``
    (None: none).
    """
    queue = deque(range(len(calls)))
    attempts = [0] * len(calls)
    idle = deque(range(backend.workers))
    running: dict[Any, tuple[int, int]] = {}  # handle -> (call index, slot)
    with tqdm(total=len(calls), desc=progress, unit=unit, disable=progress is None, leave=False) as bar:
        while queue or running:
            while queue and idle:
                index, slot = queue.popleft(), idle.popleft()
                attempts[index] += 1
                running[backend.submit(slot, calls[index])] = (index, slot)
            handle = backend.wait(list(running))
            index, slot = running.pop(handle)
            try:
                value = backend.result(handle)
            except WorkerLost as error:
                if attempts[index] >= max_attempts:
                    raise RuntimeError(f"call {index} failed on {attempts[index]} workers; the last error follows") from error
                backend.replace(slot)
                queue.appendleft(index)
            else:
                bar.update(1)
                yield index, value
            idle.append(slot)


def dispatch(backend: Backend, calls: Sequence[Any], max_attempts: int, progress: str | None = None) -> list[Any]:
    """``dispatched``'s values in input order."""
    results = dict(dispatched(backend, calls, max_attempts, progress))
    return [results[index] for index in range(len(calls))]


class EvaluationPool(Protocol):
    """The protocol every pool follows (see ``pruning_env.pools``)."""

    infos: list[EnvInfo]
    """One ``EnvInfo`` per source."""

    def observe(self, seeds: Sequence[int], sources: Sequence[int] | None = None) -> list[np.ndarray]: ...

    def evaluate(self, requests: Sequence[PlanRequest], progress: str | None = None) -> list[EpisodeResult]: ...

    def close(self) -> None: ...


class PoolBase:
    """``observe`` / ``evaluate`` over a backend, checked requests, context management."""

    backend: Backend
    infos: list[EnvInfo]
    max_attempts: int

    @property
    def workers(self) -> int:
        return self.backend.workers

    @property
    def restarts(self) -> int:
        """Workers replaced so far (after dying mid-call)."""
        return self.backend.restarts

    @property
    def feature_names(self) -> list[str]:
        """The observation columns of source 0."""
        return list(self.infos[0].feature_names)

    def observe(self, seeds: Sequence[int], sources: Sequence[int] | None = None) -> list[np.ndarray]:
        """The stacked observation ``(L, F)`` of each (source, seed) instance (sources default to 0)."""
        sources = [0] * len(seeds) if sources is None else list(sources)
        if len(sources) != len(seeds):
            raise ValueError(f"seeds and sources must be equally long, got {len(seeds)} and {len(sources)}")
        calls = [("observe", self._source(source), int(seed)) for seed, source in zip(seeds, sources, strict=True)]
        return dispatch(self.backend, calls, self.max_attempts)

    def evaluate(self, requests: Sequence[PlanRequest], progress: str | None = None) -> list[EpisodeResult]:
        """Every request's ``EpisodeResult``, in input order (``progress``: a tqdm bar's name, None for none).

        The requests of one source go to the workers in chunks of up to that source's ``reward_batch`` (one
        episode per call on CPU), small enough that every worker gets one, so a worker trains the episodes of one
        instance in a chunk side by side.
        """
        if not requests:
            raise ValueError("evaluate needs at least one PlanRequest, got none")
        by_source: dict[int, list[int]] = {}
        for index, request in enumerate(requests):
            by_source.setdefault(self._source(request.source), []).append(index)
        calls: list[Call] = []
        order: list[int] = []
        for source, indices in by_source.items():
            chunk = max(1, min(self.infos[source].reward_batch, math.ceil(len(indices) / self.workers)))
            for start in range(0, len(indices), chunk):
                part = indices[start : start + chunk]
                calls.append(("evaluate", source, [
                    (int(requests[i].seed), np.asarray(requests[i].plan, dtype=np.float64)) for i in part
                ]))
                order.extend(part)
        results: list[EpisodeResult | None] = [None] * len(requests)
        flat = [result for chunk_results in dispatch(self.backend, calls, self.max_attempts, progress)
                for result in chunk_results]
        for index, result in zip(order, flat, strict=True):
            results[index] = result
        return results  # type: ignore[return-value]

    def _source(self, source: int) -> int:
        if not 0 <= source < len(self.infos):
            raise ValueError(f"source must be in [0, {len(self.infos) - 1}], got {source}")
        return source

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):  # noqa: ANN204
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_pool_arguments(workers: int, max_attempts: int) -> None:
    """ValueError unless ``workers`` and ``max_attempts`` are integers >= 1."""
    if not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if not (isinstance(max_attempts, int) and max_attempts >= 1):
        raise ValueError(f"max_attempts must be an integer >= 1, got {max_attempts!r}")
