"""Bring your own controller: ``make bench CONTROLLER=package.module:factory`` (``python -m benchmarks.run
--controller package.module:factory``) imports the factory and registers it, so the benchmark runs it in the same
cells, the same report and the same statistics as ours.

The factory is a controller class or a function ``(env, seed=0, **options) -> controller`` (as for
``agents.register_controller``); the object it builds follows ``agents.base.Controller`` (``name`` and
``act(observations, infos)``), and also ``TrainableController`` (``train``: a learner, trained once per task and
seed over the suite's target range) or ``SearchController`` (``search``: searched on every cell) when it
implements them. The class declares which (``agents.base.Declaration``: ``kind``, ``accepts_pool``,
``accepts_on_update`` as class attributes); what it leaves out is derived from the protocol it implements
(``agents.base.declaration_of``), and a function factory declares with ``@agents.base.declare``. Its row is named
by the factory's ``name`` attribute (else the object's name after ``:``).

A cell's fingerprint covers the factory's module file (``controller_source``): edit it and rerun, and that
controller's cells are computed again while the others are reused. Code it imports from other files of yours is
not covered: keep a controller in one module, or start its cells again with ``--fresh``.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import agents
from agents.base import Controller, declaration_of
from benchmarks.provenance import CODE_PACKAGES, ROOT, source_hash
from pruning_env.parallel import PruningEnv


def load_factory(path: str) -> tuple[str, Callable[..., Any]]:
    """``"package.module:factory"`` -> (row name, factory), imported from the working directory or sys.path.

    Raises:
        ValueError: for a path without one ``:``, a module that does not import (with the import's error), a
            missing attribute, or an object that is not callable.
    """
    module_name, colon, attribute = path.partition(":")
    if not colon or not module_name or not attribute or ":" in attribute:
        raise ValueError(f"a controller is given as package.module:factory (e.g. my_lab.pruners:Mine), got {path!r}")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # any error while importing the user's module is reported as theirs
        raise ValueError(f"cannot import {module_name!r} for the controller {path!r}: "
                         f"{type(error).__name__}: {error}") from error
    factory = getattr(module, attribute, None)
    if factory is None:
        raise ValueError(f"module {module_name!r} ({module.__file__}) has no {attribute!r} for the controller {path!r}")
    if not callable(factory):
        raise ValueError(f"{path!r} is a {type(factory).__name__}, not a controller class or factory "
                         "(env, seed=0, **options) -> controller")
    return str(getattr(factory, "name", attribute)), factory


def register_outside(path: str, env: PruningEnv) -> str:
    """Import and register the controller of ``path`` after checking, on ``env``, that what it builds follows the
    controller protocol and that its declaration reads (``agents.base.declaration_of``); its registered name.

    Raises:
        ValueError: see ``load_factory``; or the factory fails on ``env``, or builds an object without ``name`` and
            ``act``, or declares nothing as a function or something inconsistent, or its name is taken by another
            registered controller.
    """
    name, factory = load_factory(path)
    try:
        controller = factory(env, seed=0)
    except Exception as error:
        raise ValueError(f"the controller {path!r} could not be built as factory(env, seed=0): "
                         f"{type(error).__name__}: {error}") from error
    if not isinstance(controller, Controller):
        missing = [attribute for attribute in ("name", "act") if not hasattr(controller, attribute)]
        raise ValueError(f"{path!r} builds a {type(controller).__name__}, which lacks {', '.join(missing)}: a "
                         "controller has a name and act(observations, infos) -> actions (agents.base.Controller)")
    declaration_of(factory)
    agents.register_controller(name)(factory)
    return name


def controller_source(name: str) -> str | None:
    """The hash of the module file that defines the registered controller ``name`` when it lives outside this
    project's packages (an outside controller), None for ours (covered by ``code_fingerprint``)."""
    factory = agents.CONTROLLERS[name]
    try:
        source = Path(inspect.getsourcefile(getattr(factory, "func", factory)) or "")
    except TypeError:  # a builtin or C-level callable: no file to follow
        return None
    ours = [ROOT / package for package in CODE_PACKAGES]
    if not source.is_file() or any(source.resolve().is_relative_to(package) for package in ours):
        return None
    return source_hash([source])
