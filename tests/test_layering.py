"""The layers: ``pruning_env`` (the environment) imports neither ``agents`` (the controllers) nor ``benchmarks``, and
importing a layer loads only what it needs (a fresh interpreter each, so nothing the tests imported counts).

    python -m pytest tests/test_layering.py -q
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UPPER_LAYERS = ("agents", "benchmarks")

# what `pip install pruning-env` does not install (the agents and bench extras), or what is slow to import
NOT_WITH_THE_ENV = ("stable_baselines3", "cma", "optuna", "rliable", "matplotlib", "sklearn", "pandas")
# loaded when a controller that needs them is built or trained, not when the controllers are registered
NOT_WITH_THE_CONTROLLERS = (
    "stable_baselines3", "supersuit", "cma", "optuna", "ray", "torchrl", "tensordict", "benchmarl", "matplotlib",
    "tyro",
)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every absolute module an ``import`` statement of the file names (top level, functions, TYPE_CHECKING
    blocks), with its line; ``from x import y`` counts as ``x``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def loaded_by(statement: str) -> list[str]:
    """The top-level packages in ``sys.modules`` after ``statement`` runs in a fresh interpreter (repository root as
    the working directory, as the tests and the Makefile run)."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_the_parser_sees_every_kind_of_import(tmp_path) -> None:
    module = tmp_path / "module.py"
    module.write_text("import agents.base\nfrom benchmarks import plots\nfrom . import sibling\n"
                      "def f():\n    from agents.mappo import train\n")
    assert imported_modules(module) == [(1, "agents.base"), (2, "benchmarks"), (5, "agents.mappo")]


def test_the_env_imports_no_controller_or_benchmark_module() -> None:
    files = sorted((ROOT / "pruning_env").rglob("*.py"))
    assert len(files) > 20  # the package was really read
    offending = [
        f"{path.relative_to(ROOT)}:{line}: import {name}"
        for path in files
        for line, name in imported_modules(path)
        if name.split(".")[0] in UPPER_LAYERS
    ]
    assert offending == [], "pruning_env must not import agents or benchmarks:\n" + "\n".join(offending)


def test_import_pruning_env_loads_no_controller_or_benchmark_library() -> None:
    loaded = set(loaded_by("import pruning_env"))
    assert "pruning_env" in loaded
    assert sorted(loaded & {*NOT_WITH_THE_ENV, *UPPER_LAYERS}) == []


def test_import_pruning_env_leaves_scipy_to_the_first_step() -> None:
    """scipy.special (the budget projection) takes about 0.4 s to import: with it ``import pruning_env`` took
    1.35x ``import torch``, without it 1.2x."""
    assert "scipy" not in loaded_by("import pruning_env")


def test_import_agents_registers_every_controller_and_loads_no_rl_library() -> None:
    statement = ("import agents\nfrom agents import SB3PPOController, PPOConfig, train_sb3_ppo, CMAESSearch, TPESearch\n"
                 "assert {'sb3_ppo', 'cma_es', 'tpe', 'mappo', 'pretrained', 'benchmarl_mappo'} <= set(agents.CONTROLLERS)")
    loaded = set(loaded_by(statement))
    assert "agents" in loaded
    assert sorted(loaded & {*NOT_WITH_THE_CONTROLLERS, "benchmarks"}) == []


def test_a_controller_loads_its_library_when_it_is_used() -> None:
    """The other side of the lazy imports: CMA-ES imports pycma when it searches (10 zero-cost evaluations)."""
    build = ("import agents, pruning_env\nenv = pruning_env.parallel_env(task='mlp-digits', reward='zero_cost')\n"
             "controller = agents.make_controller('cma_es', env)")
    assert "cma" not in loaded_by(build)
    assert "cma" in loaded_by(f"{build}\ncontroller.search(episodes=10, seed=0)")
