"""Controllers declare what the benchmark does with them (``agents.base.Declaration``: ``kind``, ``accepts_pool``,
``accepts_on_update`` as class attributes); the runner reads the declarations, guesses nothing, and builds each
controller once per use. An outside class that declares nothing is read by the protocol it implements; a function
factory must declare."""

from __future__ import annotations

import functools
import inspect
from dataclasses import astuple, replace
from pathlib import Path

import numpy as np
import pytest
from test_usability import registry  # noqa: F401  (the fixture restoring CONTROLLERS after a test)

from agents.base import (
    CONTROLLERS,
    DECLARED,
    Declaration,
    TrainingReport,
    declaration_of,
    declare,
    describe_factory,
    register_controller,
    to_actions,
)
from agents.mappo import MappoController
from benchmarks.outside import register_outside
from benchmarks.records import read_records
from benchmarks.run import group_plans
from benchmarks.suites import CHECKPOINTS, get_suite
from pruning_env.parallel import PruningEnv

REFERENCE = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "reference"

EXPECTED = {
    "dense": ("reference", False, False, "evaluations"),
    **{name: ("heuristic", False, False, "evaluations") for name in (
        "uniform", "er", "erk", "lamp", "global_magnitude", "global_snip", "global_grasp", "global_synflow", "random")},
    **{name: ("searcher", True, True, "evaluations") for name in ("random_search", "cma_es", "tpe")},
    "successive_halving": ("searcher", False, False, "compute"),
    "sensitivity": ("heuristic", False, False, "evaluations"),
    **{name: ("learner", False, True, "evaluations") for name in ("sb3_ppo", "mappo", "mappo_ar", "pretrained")},
    **{name: ("learner", False, False, "evaluations") for name in ("benchmarl_mappo", "benchmarl_ippo", "benchmarl_iql")},
}
"""(kind, accepts_pool, accepts_on_update, budget_unit) of every controller of ours, by hand."""


def ours() -> set[str]:
    return {name for name, factory in CONTROLLERS.items() if describe_factory(factory).startswith("agents.")}


def test_every_controller_of_ours_declares_all_four_facts() -> None:
    assert ours() == set(EXPECTED)
    for name, expected in EXPECTED.items():
        inner = getattr(CONTROLLERS[name], "func", CONTROLLERS[name])
        assert [attribute for attribute in DECLARED if not hasattr(inner, attribute)] == [], name  # none derived
        assert astuple(declaration_of(CONTROLLERS[name])) == expected, name


def test_the_declarations_say_what_the_signatures_take() -> None:
    """What the benchmark read from the signatures before the declarations: the same answers."""
    for name in EXPECTED:
        factory = CONTROLLERS[name]
        cls = MappoController if name == "pretrained" else getattr(factory, "func", factory)
        method = getattr(cls, "train", None) or getattr(cls, "search", None)
        declared = declaration_of(factory)
        assert declared.accepts_pool == ("pool" in inspect.signature(cls).parameters), name
        takes_on_update = method is not None and "on_update" in inspect.signature(method).parameters
        assert declared.accepts_on_update == takes_on_update, name


@pytest.mark.parametrize("name", ["short/short_plans.jsonl", "short/short_checkpoint_plans.jsonl", "short/short.jsonl",
                                  "short_trained/short_trained.jsonl"])
def test_the_committed_records_kinds_and_probes_are_the_declared_ones(name: str) -> None:
    """The default suites' reference records: kinds and probes are the controllers' declared ones."""
    records = read_records(REFERENCE / name)
    assert records
    for record in records:
        declared = declaration_of(CONTROLLERS[record["controller"]])
        assert (record["kind"], record["probe"]) == (declared.kind, declared.accepts_on_update), record["controller"]


# Outside classes and factories ----------------------------------------------------------------------------------


class Acts:
    name = "acts"

    def __init__(self, env: object, seed: int = 0) -> None:
        self.env = env

    def act(self, observations: dict, infos: dict) -> dict:
        return to_actions(np.full(len(observations), 0.5))


class Trains(Acts):
    def train(self, make_env, episodes, seed, on_update=None) -> TrainingReport:
        return TrainingReport(episodes, 0.0, 0.0)


class Searches(Acts):
    def __init__(self, env: object, seed: int = 0, pool: object = None) -> None:
        self.env = env

    def search(self, episodes=None, seed=None) -> TrainingReport:
        return TrainingReport(episodes, 0.0, 0.0)


class Fixed(Acts):
    target_sparsity = 0.0


class SpendsCompute(Acts):
    def search(self, compute=None, seed=None) -> TrainingReport:
        return TrainingReport(0, 0.0, 0.0)


def test_an_undeclared_class_is_read_by_the_protocol_it_implements() -> None:
    assert astuple(declaration_of(Acts)) == ("heuristic", False, False, "evaluations")
    assert astuple(declaration_of(Trains)) == ("learner", False, True, "evaluations")
    assert astuple(declaration_of(Searches)) == ("searcher", True, False, "evaluations")
    assert astuple(declaration_of(Fixed)) == ("reference", False, False, "evaluations")
    assert astuple(declaration_of(SpendsCompute)) == ("searcher", False, False, "compute")
    assert declaration_of(Trains(None)) == declaration_of(functools.partial(Trains, seed=1)) == declaration_of(Trains)


def test_a_declaration_overrides_what_the_protocol_suggests_one_attribute_at_a_time() -> None:
    class Quiet(Trains):
        accepts_on_update = False  # takes on_update, but the benchmark is told not to pass it

    assert astuple(declaration_of(Quiet)) == ("learner", False, False, "evaluations")


def test_a_function_factory_must_declare() -> None:
    def make(env, seed=0):
        return Trains(env, seed)

    with pytest.raises(ValueError, match=r"make is a function, which does not say what it builds: decorate it with "
                                         r"@agents.base.declare"):
        declaration_of(make)
    assert astuple(declaration_of(declare("learner", accepts_on_update=True)(make))) == (
        "learner", False, True, "evaluations")
    assert declaration_of(functools.partial(make, seed=3)).kind == "learner"


@pytest.mark.parametrize(("attributes", "message"), [
    ({"kind": "planner"}, "kind is one of 'reference', 'heuristic', 'searcher', 'learner', got 'planner'"),
    ({"accepts_pool": "yes"}, "accepts_pool is True or False, got 'yes'"),
    ({"budget_unit": "seconds"}, "budget_unit is one of 'evaluations', 'compute', got 'seconds'"),
    ({"kind": "learner"}, "declares kind 'learner' but has no train"),
    ({"kind": "searcher"}, "declares kind 'searcher' but has no search"),
    ({"kind": "reference"}, "a reference, and only a reference, has a fixed target_sparsity"),
    ({"kind": "heuristic", "target_sparsity": 0.0}, "a reference, and only a reference"),
])
def test_an_inconsistent_declaration_is_a_clear_error(attributes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        declaration_of(type("Odd", (Acts,), attributes))


OUTSIDE = """
from agents.base import declare, to_actions


class Half:
    name = "half"

    def __init__(self, env, seed=0):
        pass

    def act(self, observations, infos):
        return to_actions([0.5] * len(observations))


def half(env, seed=0):
    return Half(env, seed)


@declare("heuristic")
def declared_half(env, seed=0):
    return Half(env, seed)
"""


@pytest.mark.usefixtures("registry")
def test_bring_your_own_function_factory_must_declare_before_any_cell_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``make bench CONTROLLER=module:factory`` (``benchmarks.outside``): a class needs no declaration, a function
    factory is refused at the check on the first cell unless it declares."""
    (tmp_path / "outside_declared.py").write_text(OUTSIDE)
    monkeypatch.syspath_prepend(str(tmp_path))
    env = PruningEnv("mlp-digits", target_sparsity=0.99, reward="zero_cost", device="cpu")
    with pytest.raises(ValueError, match=r"outside_declared\.half is a function, which does not say what it builds"):
        register_outside("outside_declared:half", env)
    assert "half" not in CONTROLLERS
    assert register_outside("outside_declared:declared_half", env) == "declared_half"
    assert register_outside("outside_declared:Half", env) == "half"
    assert declaration_of(CONTROLLERS["declared_half"]) == declaration_of(CONTROLLERS["half"]) == Declaration(
        "heuristic", False, False, "evaluations")


# The runner -----------------------------------------------------------------------------------------------------

BUILDS: list[tuple[str, object]] = []
"""(name, target or "pool") of every build of the counting controllers below."""


class Counted(Acts):
    name = "counted_heuristic"
    kind = "heuristic"
    accepts_pool = False
    accepts_on_update = False

    def __init__(self, env, seed: int = 0, pool=None) -> None:
        BUILDS.append((self.name, "pool" if pool is not None else env.config.target_range))


class CountedReference(Counted):
    name = "counted_reference"
    kind = "reference"
    target_sparsity = 0.0


class CountedLearner(Counted):
    name = "counted_learner"
    kind = "learner"
    accepts_on_update = True

    def train(self, make_env, episodes, seed, on_update=None) -> TrainingReport:
        on_update(0)
        on_update(episodes)
        return TrainingReport(episodes, 0.0, 0.0)


class CountedSearcher(Counted):
    name = "counted_searcher"
    kind = "searcher"
    accepts_pool = True

    def search(self, episodes=None, seed=None) -> TrainingReport:
        return TrainingReport(episodes, 0.0, 0.0)


@pytest.mark.usefixtures("registry")
def test_the_runner_builds_each_controller_once_per_use_and_records_its_declaration() -> None:
    for cls in (Counted, CountedReference, CountedLearner, CountedSearcher):
        register_controller(cls.name)(cls)
    BUILDS.clear()
    names = ["counted_reference", "counted_heuristic", "counted_searcher", "counted_learner"]
    suite = replace(get_suite("tiny"), sparsities=(0.5, 0.9), seeds=(0,), episodes_per_seed=4, reward="zero_cost",
                    workers=1, controllers=tuple(names))
    records = list(group_plans(suite, "mlp-digits", 0, names, "cpu"))
    assert BUILDS == [("counted_reference", (0.0, 0.0)),
                      ("counted_heuristic", (0.5, 0.5)), ("counted_heuristic", (0.9, 0.9)),  # once per cell
                      ("counted_searcher", "pool"), ("counted_searcher", "pool"),  # once per cell, on its pool
                      ("counted_learner", (0.5, 0.9))]  # once per (task, seed), over the target range
    kinds = {(r["controller"], r["kind"], r["probe"]) for r in records}
    assert kinds == {("counted_reference", "reference", False), ("counted_heuristic", "heuristic", False),
                     ("counted_searcher", "searcher", False), ("counted_learner", "learner", True)}
    early = sorted((r["budget_fraction"], r["target_sparsity"]) for r in records if "budget_fraction" in r)
    assert early == sorted((fraction, target) for fraction in CHECKPOINTS for target in suite.sparsities)
    assert {r["controller"]: r["evaluations"] for r in records if "evaluations" in r} == {
        "counted_reference": 0, "counted_heuristic": 0, "counted_searcher": suite.search_episodes_per_cell,
        "counted_learner": suite.episodes_per_seed}
