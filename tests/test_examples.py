"""The example scripts, ``examples/*.py``: each is a complete script that the docs show by including the file (one
copy), says in its docstring what it shows and how long it takes, imports only what exists, and runs to exit
status 0 in a fresh interpreter (tests/test_readme.py's ``run_block``: temporary working directory, HOME and
TMPDIR), printing figures that are checked here, not just its exit status."""

from __future__ import annotations

import ast
import math
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from test_docs import INCLUDES, assert_imports_exist
from test_readme import RUN_IN_PROCESS, run_block

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
TIMEOUT_S = 900  # catches a script whose process cannot exit (a pool left open), far above the times measured
MLP_DIGITS_WEIGHTS = (64 * 256, 256 * 256, 256 * 256, 256 * 256, 256 * 128, 128 * 10)
"""Weights of mlp-digits' prunable layers (MLP 64-256-256-256-256-128-10), by hand."""


def numbers(text: str) -> list[float]:
    return [float(value) for value in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?|nan|-?inf", text)]


def line_after(output: str, label: str) -> str:
    """The rest of the output's last line that starts with ``label``."""
    lines = [line[len(label):] for line in output.splitlines() if line.startswith(label)]
    assert lines, f"no line starts with {label!r}; the output:\n{output[-4000:]}"
    return lines[-1]


def assert_rewards(values: list[float], count: int) -> None:
    """``count`` neg_loss rewards: finite and at most 0 (minus a validation loss)."""
    assert len(values) == count and all(math.isfinite(v) and v <= 0 for v in values), values


def check_torchrl(output: str) -> None:
    assert_rewards(numbers(line_after(output, "team rewards:")), 16)
    assert math.isfinite(numbers(line_after(output, "PPO loss"))[0])


def check_benchmarl(output: str) -> None:
    assert_rewards(numbers(line_after(output, "mean reward per iteration:")), 2)


def check_rllib(output: str) -> None:
    # RLlib sums the 6 layer agents' rewards: 6 x a neg_loss reward per episode
    assert_rewards([numbers(line_after(output, f"iteration {i}: mean episode return"))[0] for i in (0, 1)], 2)


def check_pretrained(output: str) -> None:
    layers = ast.literal_eval(next(line for line in output.splitlines() if line.startswith("{")))
    # TwoBranch's prunable weights, by hand: conv 24 x 1 x 3 x 3, dense 64 x 300, head 396 x 10
    weights = {"conv.0": 24 * 9, "dense.1": 64 * 300, "head": 396 * 10}  # 23,376 in all
    assert set(layers) == set(weights) and all(0 <= sparsity <= 1 for sparsity in layers.values()), layers
    pruned = sum(layers[name] * count for name, count in weights.items()) / sum(weights.values())
    assert pruned == pytest.approx(0.98, abs=1e-4)  # the per-layer figures (4 decimals) add up to the target
    assert float(line_after(output, "global sparsity:")) == round(round(0.98 * 23376) / 23376, 6)  # to the weight


def check_my_pruners(output: str) -> None:
    requested = numbers(line_after(output, "requested:"))
    applied = numbers(line_after(output, "applied:"))
    # halfway between a sparsity in [0, 1] and the target 0.98: within [0.49, 0.99]
    assert len(requested) == 6 and all(0.49 - 1e-4 <= value <= 0.99 + 1e-4 for value in requested), requested
    assert len(applied) == 6 and all(0 <= value <= 1 for value in applied), applied
    total = sum(MLP_DIGITS_WEIGHTS)
    pruned = sum(s * n for s, n in zip(applied, MLP_DIGITS_WEIGHTS, strict=True)) / total
    assert pruned == pytest.approx(0.98, abs=1e-4)
    assert float(line_after(output, "global sparsity:")) == round(round(0.98 * total) / total, 6)  # to the weight


def check_register_controller(output: str) -> None:
    line = re.search(r"^kind (\w+), reward (\S+)$", output, re.M)
    assert line and line[1] == "heuristic" and math.isfinite(float(line[2])), output[-2000:]


CHECKS: dict[str, tuple[Callable[[str], None], bool]] = {
    "torchrl_ppo_step": (check_torchrl, True),
    "benchmarl_mappo": (check_benchmarl, True),
    "rllib_ppo": (check_rllib, True),
    "pretrained_any_network": (check_pretrained, False),
    "my_pruners": (check_my_pruners, False),
    "register_controller": (check_register_controller, False),
}
"""Each example's check of its output, and whether it is slow (over about 10 s here)."""
IN_PROCESS = {path.stem for path in EXAMPLES if path.read_text(encoding="utf-8").strip() in RUN_IN_PROCESS}
"""Examples tests/test_first_contact.py runs in this process and checks (sb3_one_step): not run twice."""


def test_every_example_is_checked_and_shown_once_in_the_docs():
    assert EXAMPLES and set(CHECKS) | IN_PROCESS == {path.stem for path in EXAMPLES}
    shown = Counter(name for _, name in INCLUDES)
    assert shown == Counter(f"examples/{path.name}" for path in EXAMPLES), shown


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_says_what_and_how_long_and_its_imports_exist(path: Path):
    code = path.read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(code)) or ""
    assert "2 CPU cores" in docstring, f"{path.name}: the docstring says how long it takes on 2 CPU cores"
    assert_imports_exist(code, f"examples/{path.name}")


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=[pytest.mark.slow] if slow else [], id=name) for name, (_, slow) in CHECKS.items()])
def test_example_runs_and_prints_what_it_promises(name: str):
    check, _ = CHECKS[name]
    status, output = run_block((ROOT / "examples" / f"{name}.py").read_text(encoding="utf-8"), TIMEOUT_S, name)
    assert status is not None, f"examples/{name}.py did not exit within {TIMEOUT_S} s; its output:\n{output[-6000:]}"
    assert status == 0, f"examples/{name}.py exited with status {status}; its output:\n{output[-6000:]}"
    check(output)
