"""Bring your own controller (``benchmarks.outside``, ``make bench CONTROLLER=package.module:factory``): a
controller defined outside the package is imported, checked, registered and benchmarked in the same cells and
table (end to end, with reruns and an edit: ``tests/test_rerun.py``); a bad path or an object that is not a
controller is a clear error."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from agents.base import CONTROLLERS
from benchmarks.outside import load_factory, register_outside
from pruning_env.parallel import PruningEnv

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_pruners.py"
MODULE = EXAMPLE.read_text(encoding="utf-8") + '''

class NoAct:
    def __init__(self, env, seed=0):
        pass


def broken(env, seed=0):
    raise RuntimeError("no GPU here")


NOT_CALLABLE = 3
'''
"""The docs' example controller module (``HalfSnip``), with objects that are not controllers added."""


@pytest.fixture
def outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "my_pruners.py").write_text(textwrap.dedent(MODULE))
    (tmp_path / "raises_on_import.py").write_text("raise ImportError('needs jax')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("my_pruners", "raises_on_import"):  # another test's module of that name, imported in this worker
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield tmp_path
    CONTROLLERS.pop("half_snip", None)


@pytest.fixture(scope="module")
def env() -> PruningEnv:
    return PruningEnv("mlp-digits", target_sparsity=0.99, reward="zero_cost", device="cpu")


@pytest.mark.parametrize(("path", "message"), [
    ("my_pruners.HalfSnip", "package.module:factory"),
    ("my_pruners:", "package.module:factory"),
    ("no_such_module_here:Thing", "cannot import 'no_such_module_here'.*ModuleNotFoundError"),
    ("raises_on_import:Thing", "cannot import 'raises_on_import'.*needs jax"),
    ("my_pruners:Missing", "has no 'Missing'"),
    ("my_pruners:NOT_CALLABLE", "is a int, not a controller class or factory"),
])
def test_bad_paths_are_clear_errors(outside, path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_factory(path)


def test_objects_that_are_not_controllers_are_refused(outside, env: PruningEnv) -> None:
    with pytest.raises(ValueError, match="NoAct, which lacks name, act"):
        register_outside("my_pruners:NoAct", env)
    with pytest.raises(ValueError, match="could not be built.*no GPU here"):
        register_outside("my_pruners:broken", env)
    assert register_outside("my_pruners:HalfSnip", env) == "half_snip"
    assert "half_snip" in CONTROLLERS
