"""``pip install pruning-env`` alone (no extras) gives a working environment: a new virtual environment (no system
site-packages) gets the pinned torch and then this project without extras, and runs the quick start.

    python -m pytest tests/test_core_install.py -q -m slow      # about 2 min on 2 shared cores, most of it torch

pip reaches only PyPI and the local wheels pip is configured with (torch's CPU wheel); the quick start downloads
nothing (the digits data ships with scikit-learn). The project is installed from a copy of its source, so the
build leaves nothing (build/, *.egg-info) in the checkout.
"""

from __future__ import annotations

import ast
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"  # the Makefile's pin: the CPU wheel the project venv resolves against
QUICK_START = """
import numpy as np
import pruning_env
env = pruning_env.parallel_env(task="mlp-digits", target_sparsity=0.99, reward_steps=20)
obs, infos = env.reset(seed=0)
actions = {a: np.array([0.99], dtype=np.float32) for a in env.agents}
obs, rewards, terms, truncs, infos = env.step(actions)
print(sorted(set(rewards.values())))
"""
# in the extras, not in the core: none of them may be installed by `pip install pruning-env`
EXTRAS_ONLY = ("stable_baselines3", "supersuit", "cma", "optuna", "tyro", "matplotlib", "rliable", "pandas", "ray",
               "torchrl", "pytest")


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def source_copy(target: Path) -> Path:
    """What the sdist would hold: the metadata files and the three packages (no results, no caches)."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "results")
    for package in ("pruning_env", "agents", "benchmarks"):
        shutil.copytree(ROOT / package, target / package, ignore=ignore)
    return target


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_core_install_runs_the_quick_start(tmp_path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    # --no-compile: no .pyc files written for the thousands of modules installed (torch's alone took 20 s of the
    # install's 30 s here); the interpreters below compile what they import, as they would from any install
    run([python, "-m", "pip", "install", "--quiet", "--no-compile", TORCH], tmp_path, env)
    source = source_copy(tmp_path / "source")
    run([python, "-m", "pip", "install", "--quiet", "--no-compile", str(source)], tmp_path, env)

    work = tmp_path / "work"  # not the checkout: `import pruning_env` must find the installed package
    work.mkdir()
    where = run([python, "-c", "import pruning_env, torch; print(pruning_env.__file__); print(torch.__version__)"],
                work, env).split()
    assert Path(where[0]).is_relative_to(venv), where
    assert where[1].split("+")[0] == TORCH.split("==")[1]
    found = run([python, "-c", f"import importlib.util; print([m for m in {EXTRAS_ONLY!r} "
                 "if importlib.util.find_spec(m)])"], work, env)
    assert found.strip() == "[]", f"the core install brought packages of the extras: {found}"

    printed = run([python, "-c", QUICK_START], work, env).strip().splitlines()[-1]
    rewards = ast.literal_eval(printed)  # one team reward for every agent, e.g. [-2.30...]
    assert len(rewards) == 1 and isinstance(rewards[0], float) and math.isfinite(rewards[0]), printed
    # the same numbers as in this environment, with all extras installed
    expected = run([sys.executable, "-c", QUICK_START], work, env).strip().splitlines()[-1]
    assert printed == expected
