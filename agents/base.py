"""The controller interface every baseline implements, and the registry of controllers by name.

A controller maps the layer agents' observations to their actions through the env's public PettingZoo API only:
``act(observations, infos) -> actions``. Learning controllers also implement ``train``. Observation columns are
looked up by name in ``env.feature_names`` (e.g. ``"target_sparsity"``, ``"snip_density"``).

Every controller class declares what the benchmark does with it as class attributes (``Declaration``): its ``kind``,
whether its factory ``accepts_pool``, whether its ``train`` or ``search`` ``accepts_on_update``, and the
``budget_unit`` its budget is counted in (reward evaluations, or compute in sample-steps). The benchmark reads them
with ``declaration_of``; what a class leaves out is read from the protocol it implements.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Protocol, TypeVar, get_args, runtime_checkable

import numpy as np

from pruning_env.parallel import PruningEnv
from pruning_env.plan_env import EnvFactory
from pruning_env.spaces import stack_observations

Observations = dict[str, np.ndarray]
Actions = dict[str, np.ndarray]


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
    """Chooses every layer's requested sparsity.

    Its class also declares ``kind``, ``accepts_pool`` and ``accepts_on_update`` (``Declaration``; what it leaves
    out is read from the protocol it implements, see ``declaration_of``)."""

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

        A learner that declares ``accepts_on_update = True`` (ours, except BenchMARL's) also takes
        ``on_update(spent)``, called at the start and after each policy update (``act`` then gives the current
        policy's plan): the benchmark reads its plans there at ``CHECKPOINTS`` of the budget, the learning-curve
        benchmark at every update."""
        ...


@runtime_checkable
class SearchController(Controller, Protocol):
    """A per-instance searcher: it spends its budget on the one instance (seed, target) of the env it was built
    for, and then acts with the best plan found; the benchmark runs it on every cell."""

    def search(self, episodes: int | None = None, seed: int | None = None) -> TrainingReport:
        """Spend at most ``episodes`` reward evaluations on the instance of ``seed``; return the report.

        A searcher that declares ``accepts_on_update = True`` (ours) also takes ``on_update(spent)``, called after
        each generation or batch; ours also have ``current_plan()`` (what they would return at that moment): the
        learning-curve benchmark reads both. One that declares ``accepts_pool = True`` (ours) is built as
        ``factory(None, seed=seed, pool=pool, **options)`` and evaluates on the pool's workers."""
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


Kind = Literal["reference", "heuristic", "searcher", "learner"]
KINDS: tuple[Kind, ...] = get_args(Kind)
BudgetUnit = Literal["evaluations", "compute"]
BUDGET_UNITS: tuple[BudgetUnit, ...] = get_args(BudgetUnit)
"""What the benchmark does with a controller: a reference (a fixed target: evaluated once per task and seed), a
heuristic (acts on every cell without reward evaluations), a searcher (``search`` on every cell), a learner
(``train`` once per task and seed over the target range, then acts on every cell)."""


@dataclass(frozen=True)
class Declaration:
    """What a controller declares about itself, as class attributes of the same names on its class (``kind =
    "searcher"``, ``accepts_pool = True``, ...; a function factory through ``declare``). The benchmark reads it with
    ``declaration_of`` before it builds anything, and builds each controller once per use: a reference or a heuristic
    once per cell it acts on, a searcher once per cell it searches, a learner once per (task, seed)."""

    kind: Kind
    """``KINDS`` entry: ``"learner"`` implements ``TrainableController``, ``"searcher"`` ``SearchController``,
    ``"reference"`` has a fixed ``target_sparsity`` (``fixed_target``), ``"heuristic"`` only acts."""
    accepts_pool: bool
    """Its factory takes ``pool=`` (an evaluation pool, ``pruning_env.pools``): the benchmark builds it as
    ``factory(None, seed=seed, pool=pool, **options)`` with the cell's pool, whose worker processes evaluate its
    plans."""
    accepts_on_update: bool
    """Its ``train`` or ``search`` takes ``on_update(spent)`` (called with the reward evaluations spent, at the start
    and after each update): the benchmark reads its plans there at ``CHECKPOINTS`` of the budget (the
    sample-efficiency table); without it they are read at 100% only."""
    budget_unit: BudgetUnit = "evaluations"
    """What its budget counts: ``"evaluations"`` (reward evaluations at the env's fidelity: ``train(make_env,
    episodes, seed)``, ``search(episodes, seed)``) or ``"compute"`` (sample-steps, ``pruning_env.fidelity``: a
    searcher that chooses each evaluation's fidelity, ``search(compute, seed)``). The benchmark gives a compute
    searcher its share of the suite's budget times the cost of one evaluation at the env's fidelity: the same
    compute as every other searcher's."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"a controller's kind is one of {', '.join(map(repr, KINDS))}, got {self.kind!r}")
        if self.budget_unit not in BUDGET_UNITS:
            raise ValueError(f"a controller's budget_unit is one of {', '.join(map(repr, BUDGET_UNITS))}, "
                             f"got {self.budget_unit!r}")
        for flag in ("accepts_pool", "accepts_on_update"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"a controller's {flag} is True or False, got {getattr(self, flag)!r}")


DECLARED: tuple[str, ...] = tuple(f.name for f in fields(Declaration))
"""The class attributes a controller declares (``Declaration``'s fields)."""

FactoryT = TypeVar("FactoryT", bound=Callable[..., Any])


def declare(kind: Kind, accepts_pool: bool = False, accepts_on_update: bool = False,
            budget_unit: BudgetUnit = "evaluations") -> Callable[[FactoryT], FactoryT]:
    """Decorator setting the ``Declaration`` of what a function factory builds on the function (a controller class
    declares with class attributes instead), e.g. ``@declare("learner", accepts_on_update=True)``."""
    declaration = Declaration(kind, accepts_pool, accepts_on_update, budget_unit)

    def mark(factory: FactoryT) -> FactoryT:
        for attribute in DECLARED:
            setattr(factory, attribute, getattr(declaration, attribute))
        return factory

    return mark


def declaration_of(controller: Controller | Callable[..., Any]) -> Declaration:
    """The ``Declaration`` of a controller object or factory: the attributes of its class (of the class a
    ``functools.partial`` wraps), or those ``declare`` set on a function factory.

    A class that leaves an attribute out (an outside controller, say) gets it derived from the protocol it
    satisfies: kind ``"reference"`` with a ``target_sparsity``, else ``"learner"`` with ``train``, ``"searcher"``
    with ``search``, ``"heuristic"`` otherwise; ``accepts_pool`` when its constructor takes ``pool``;
    ``accepts_on_update`` when its ``train`` or ``search`` takes ``on_update``; ``budget_unit`` ``"compute"`` when
    its ``search`` names its first parameter ``compute``.

    Raises:
        ValueError: for a function factory without ``declare`` (what it builds is unknown until it is called), a
            declared value out of range, a kind other than ``"reference"`` with a fixed target (or the reverse), or
            a learner without ``train`` or a searcher without ``search``.
    """
    inner = getattr(controller, "func", controller)
    function = callable(inner) and not isinstance(inner, type) and not hasattr(inner, "act")
    described = describe_factory(inner if function or isinstance(inner, type) else type(inner))
    if function and not hasattr(inner, "kind"):
        raise ValueError(
            f"the controller factory {described} is a function, which does not say what it "
            f"builds: decorate it with @agents.base.declare(kind, accepts_pool=..., accepts_on_update=...) (kind one "
            f"of {', '.join(map(repr, KINDS))}), or register the controller class itself"
        )
    derive = {"kind": _derived_kind, "accepts_pool": _takes_pool, "accepts_on_update": _takes_on_update,
              "budget_unit": _budget_unit}
    declaration = Declaration(**{attribute: getattr(inner, attribute) if hasattr(inner, attribute)
                                 else derive[attribute](inner) for attribute in DECLARED})
    if (declaration.kind == "reference") != (fixed_target(inner) is not None):
        raise ValueError(f"{described} declares kind {declaration.kind!r} with target_sparsity "
                         f"{fixed_target(inner)!r}: a reference, and only a reference, has a fixed target_sparsity")
    method = {"learner": "train", "searcher": "search"}.get(declaration.kind)
    if method and not function and not callable(getattr(inner, method, None)):
        raise ValueError(f"{described} declares kind {declaration.kind!r} but has no {method}() "
                         f"(agents.base.{'TrainableController' if method == 'train' else 'SearchController'})")
    return declaration


def _budget_unit(inner: Any) -> BudgetUnit:
    search = getattr(inner, "search", None)
    if not callable(search):
        return "evaluations"
    parameters = [p for p in inspect.signature(search).parameters if p != "self"]
    return "compute" if parameters[:1] == ["compute"] else "evaluations"


def _derived_kind(inner: Any) -> Kind:
    if fixed_target(inner) is not None:
        return "reference"
    if callable(getattr(inner, "train", None)):
        return "learner"
    if callable(getattr(inner, "search", None)):
        return "searcher"
    return "heuristic"


def _takes_pool(inner: Any) -> bool:
    return "pool" in _parameters(inner if isinstance(inner, type) else type(inner))


def _takes_on_update(inner: Any) -> bool:
    method = getattr(inner, "train", None) or getattr(inner, "search", None)
    return method is not None and "on_update" in _parameters(method)


def _parameters(function: Callable[..., Any]) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(function).parameters
    except (TypeError, ValueError):  # a builtin or C-level callable without a signature
        return {}


def controller_kind(controller: Controller | Callable[..., Any]) -> Kind:
    """The declared ``kind`` of a controller object or factory (``declaration_of``)."""
    return declaration_of(controller).kind


def kind_of(name: str, recorded: Mapping[str, str] | None = None) -> str:
    """The kind of the controller named ``name``: as ``recorded`` (e.g. with a benchmark's plans), else declared by
    its registered factory; a name no longer registered (records of an earlier run) reads as a heuristic."""
    if recorded and name in recorded:
        return recorded[name]
    return controller_kind(CONTROLLERS[name]) if name in CONTROLLERS else "heuristic"


def has_update_probe(controller: Controller | Callable[..., Any]) -> bool:
    """Whether a controller object or factory declares ``accepts_on_update`` (``declaration_of``): the benchmark reads
    its plans at 25% and 50% of the budget through ``on_update`` (the sample-efficiency table)."""
    return declaration_of(controller).accepts_on_update


@register_controller("dense")
class DenseController:
    """The unpruned reference: requests sparsity 0 for every layer and is evaluated at target 0."""

    name = "dense"
    kind = "reference"
    accepts_pool = False
    accepts_on_update = False
    budget_unit = "evaluations"
    target_sparsity = 0.0

    def __init__(self, env: object, seed: int = 0) -> None:
        del env, seed  # nothing to read or draw

    def act(self, observations: Observations, infos: dict[str, dict[str, float]]) -> Actions:
        return to_actions(np.zeros(len(observations)))
