"""The controller interface every baseline implements, and the registry of controllers by name.

A controller maps the layer agents' observations to their actions through the env's public PettingZoo API only:
``act(observations, infos) -> actions``. Learning controllers also implement ``train``. Observation columns are
looked up by name in ``env.feature_names`` (e.g. ``"target_sparsity"``, ``"snip_density"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pruning_env.env import PruningEnv

Observations = dict[str, np.ndarray]
Actions = dict[str, np.ndarray]
EnvFactory = Callable[[], PruningEnv]


@dataclass
class TrainingReport:
    """What a training run spent and achieved."""

    episodes: int
    """Reward evaluations (env steps) used."""
    seconds: float
    """Wall time."""
    best_reward: float
    """Highest reward seen."""
    history: list[dict[str, float]] = field(default_factory=list)
    """One row per update or episode batch (episode count, mean reward, ...), for logs and plots."""


@runtime_checkable
class Controller(Protocol):
    """Chooses every layer's requested sparsity."""

    name: str

    def act(self, observations: Observations, infos: dict[str, dict[str, float]]) -> Actions:
        """Actions for every agent in ``observations`` (Box actions as float32 arrays of shape (1,))."""
        ...


@runtime_checkable
class TrainableController(Controller, Protocol):
    """A controller that learns from reward evaluations."""

    def train(self, make_env: EnvFactory, episodes: int, seed: int) -> TrainingReport:
        """Spend at most ``episodes`` reward evaluations on envs from ``make_env``; return the report."""
        ...


def stacked(observations: Observations) -> np.ndarray:
    """Observations ``layer_0 … layer_{L-1}`` stacked into ``(L, F)`` in layer order."""
    return np.stack([observations[f"layer_{i}"] for i in range(len(observations))])


def to_actions(sparsities: np.ndarray) -> Actions:
    """Per-layer sparsities ``(L,)`` -> the env's action dict of float32 arrays of shape (1,)."""
    return {f"layer_{i}": np.array([value], dtype=np.float32) for i, value in enumerate(np.asarray(sparsities))}


CONTROLLERS: dict[str, Callable[..., Any]] = {}


def register_controller(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Class decorator adding a controller factory to ``CONTROLLERS`` under ``name``."""

    def add(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in CONTROLLERS:
            raise ValueError(f"controller {name!r} is already registered")
        CONTROLLERS[name] = factory
        return factory

    return add


def make_controller(name: str, env: PruningEnv, **kwargs: Any) -> Controller:
    """Build a registered controller for ``env`` (it reads ``env.feature_names`` and ``env.possible_agents``)."""
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller {name!r}; known controllers: {', '.join(sorted(CONTROLLERS))}")
    return CONTROLLERS[name](env, **kwargs)
