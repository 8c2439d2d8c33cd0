"""The controller interface every baseline implements, and the registry of controllers by name.

A controller maps the layer agents' observations to their actions through the env's public PettingZoo API only:
``act(observations, infos) -> actions``. Learning controllers also implement ``train``. Observation columns are
looked up by name in ``env.feature_names`` (e.g. ``"target_sparsity"``, ``"snip_density"``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pruning_env.parallel import PruningEnv
from pruning_env.spaces import stack_observations

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
    """One row per update, rollout or plan; every controller's rows have ``episodes`` (reward evaluations spent
    so far), ``reward_mean`` (mean reward of the row's episodes) and ``best_reward`` (highest so far)."""


@runtime_checkable
class Controller(Protocol):
    """Chooses every layer's requested sparsity."""

    name: str

    def act(self, observations: Observations, infos: dict[str, dict[str, float]]) -> Actions:
        """Actions for every agent in ``observations`` (Box actions as float32 arrays of shape (1,))."""
        ...


@runtime_checkable
class TrainableController(Controller, Protocol):
    """A controller that learns a policy from reward evaluations on a distribution of episodes (a learner): the
    benchmark trains it once per (task, seed) over the suite's target range."""

    def train(self, make_env: EnvFactory, episodes: int, seed: int) -> TrainingReport:
        """Spend at most ``episodes`` reward evaluations on envs from ``make_env``; return the report.

        Our learners also take ``on_update(spent)``, called at the start and after each policy update (``act`` then gives the
        current policy's plan): the learning-curve benchmark reads it."""
        ...


@runtime_checkable
class SearchController(Controller, Protocol):
    """A per-instance searcher: it spends its budget on the one instance (seed, target) of the env it was built
    for, and then acts with the best plan found; the benchmark runs it on every cell."""

    def search(self, episodes: int | None = None, seed: int | None = None) -> TrainingReport:
        """Spend at most ``episodes`` reward evaluations on the instance of ``seed``; return the report.

        Our searchers also take ``on_update(spent)``, called after each generation or batch, and have
        ``current_plan()`` (what they would return at that moment): the learning-curve benchmark reads both."""
        ...


stacked = stack_observations
"""Observations ``layer_0 … layer_{L-1}`` stacked into ``(L, F)`` in layer order."""


def to_actions(sparsities: np.ndarray) -> Actions:
    """Per-layer sparsities ``(L,)`` -> the env's action dict of float32 arrays of shape (1,)."""
    return {f"layer_{i}": np.array([value], dtype=np.float32) for i, value in enumerate(np.asarray(sparsities))}


CONTROLLERS: dict[str, Callable[..., Any]] = {}


def register_controller(name: str, replace: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding a controller factory (a class, or a function returning a controller) to ``CONTROLLERS``.

    A factory is called as ``factory(env, seed=seed, **options)``: ``seed`` seeds whatever the controller draws
    (its weights, its plans); deterministic controllers accept and ignore it. Registering the same factory again
    (the same qualified name and module, e.g. a re-run notebook cell, or a module run as ``python -m`` and also
    imported) replaces the entry; another factory under a taken name is an error unless ``replace=True``.

        @register_controller("mine")
        class Mine:
            name = "mine"
            def __init__(self, env, seed=0): ...
            def act(self, observations, infos): ...
    """

    def add(factory: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(factory) or (not isinstance(factory, type) and hasattr(factory, "act")):
            raise ValueError(
                f"register_controller({name!r}) takes a controller class or a factory (env, seed=0, **options) -> "
                f"controller, got {type(factory).__name__} instance {factory!r}: decorate the class, "
                f"@register_controller({name!r}) above 'class {type(factory).__name__}:'"
            )
        known = CONTROLLERS.get(name)
        if known is not None and not replace and not _same_factory(known, factory):
            raise ValueError(
                f"controller {name!r} is already registered ({describe_factory(known)}); pick another name or pass "
                f"replace=True to register {describe_factory(factory)} instead"
            )
        CONTROLLERS[name] = factory
        return factory

    return add


def describe_factory(factory: Callable[..., Any]) -> str:
    """``module.qualname`` of a registered factory (of the function inside a ``functools.partial``)."""
    inner = getattr(factory, "func", factory)
    return f"{getattr(inner, '__module__', '?')}.{getattr(inner, '__qualname__', repr(inner))}"


def _same_factory(first: Callable[..., Any], second: Callable[..., Any]) -> bool:
    """The same definition: equal qualified names, and equal modules or one of them run as ``__main__``."""
    a, b = getattr(first, "func", first), getattr(second, "func", second)
    if getattr(first, "keywords", None) != getattr(second, "keywords", None):
        return False
    modules = {getattr(a, "__module__", None), getattr(b, "__module__", None)}
    return getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None) and (
        len(modules) == 1 or "__main__" in modules
    )


def make_controller(name: str, env: PruningEnv, seed: int = 0, **kwargs: Any) -> Controller:
    """Build a registered controller for ``env`` (it reads ``env.feature_names`` and ``env.possible_agents``)."""
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller {name!r}; known controllers: {', '.join(sorted(CONTROLLERS))}")
    return CONTROLLERS[name](env, seed=seed, **kwargs)


def fixed_target(controller: Controller | str) -> float | None:
    """The target a controller prunes to whatever the cell's target (its ``target_sparsity`` attribute, e.g. 0
    for the dense reference), or None for a controller that prunes to the env's target. A name is looked up in
    ``CONTROLLERS`` (the attribute of its factory)."""
    if isinstance(controller, str):
        return getattr(CONTROLLERS.get(controller), "target_sparsity", None)
    return getattr(controller, "target_sparsity", None)


KINDS: tuple[str, ...] = ("reference", "heuristic", "searcher", "learner")
"""What the benchmark does with a controller: a reference (a fixed target: evaluated once per task and seed), a
heuristic (acts on every cell without reward evaluations), a searcher (``search`` on every cell), a learner
(``train`` once per task and seed over the target range, then acts on every cell)."""


def controller_kind(controller: Controller | Callable[..., Any]) -> str:
    """The ``KINDS`` entry of a controller, from the protocols it implements: read on the object, or on the class
    of a factory (a class, or a ``functools.partial`` of one); a function factory is read as a heuristic until the
    controller it builds is read."""
    if fixed_target(controller) is not None:
        return "reference"
    inner = getattr(controller, "func", controller)
    if callable(getattr(inner, "train", None)):
        return "learner"
    if callable(getattr(inner, "search", None)):
        return "searcher"
    return "heuristic"


def kind_of(name: str, recorded: Mapping[str, str] | None = None) -> str:
    """The kind of the controller named ``name``: as ``recorded`` (e.g. with a benchmark's plans), else read from
    its registered factory (``controller_kind``)."""
    if recorded and name in recorded:
        return recorded[name]
    return controller_kind(CONTROLLERS.get(name))


def has_update_probe(controller: Controller | Callable[..., Any]) -> bool:
    """Whether a learner's ``train`` or a searcher's ``search`` takes ``on_update(spent)``: the benchmark reads its
    plans at 25% and 50% of the budget through it (the sample-efficiency table)."""
    inner = getattr(controller, "func", controller)
    method = getattr(inner, "train", None) or getattr(inner, "search", None)
    return method is not None and "on_update" in inspect.signature(method).parameters


@register_controller("dense")
class DenseController:
    """The unpruned reference: requests sparsity 0 for every layer and is evaluated at target 0."""

    name = "dense"
    target_sparsity = 0.0

    def __init__(self, env: object, seed: int = 0) -> None:
        del env, seed  # nothing to read or draw

    def act(self, observations: Observations, infos: dict[str, dict[str, float]]) -> Actions:
        return to_actions(np.zeros(len(observations)))
