"""Every ```python block of README.md runs, in order, each in a fresh interpreter, and its process exits with status 0
within a time limit (a block whose process cannot exit, e.g. one that leaves worker processes waiting, fails with
its output). The processes run from the repository root with a temporary HOME and TMPDIR, so that Ray, SB3 and
the data cache write nothing in the user's home."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_first_contact import DENSE_CUE, QUICK_START, SB3_ONE_STEP

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# The limit catches a block whose process never exits (a pool left open), not a slow one: it sits far above the
# times measured. The README keeps only the quick start (run in-process by tests/test_first_contact.py); the longer
# examples live in docs/ (tests/test_docs.py runs them).
TIMEOUT_S = 600  # per block


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    heading: str  # the nearest heading above it
    code: str

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")[:48].rstrip("-")
        return f"L{self.line}-{slug or 'top'}"


def python_blocks(text: str) -> list[Block]:
    """The ```python fenced blocks of ``text`` in order; headings are only read outside fences."""
    blocks, heading, fence, start, lines = [], "", None, 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if fence is None:
            if stripped.startswith("```"):
                fence, start, lines = stripped[3:].strip().lower(), number, []
            elif re.match(r"#{1,6}\s", line):
                heading = line.lstrip("#").strip()
        elif stripped == "```":
            if fence == "python":
                blocks.append(Block(start, heading, "\n".join(lines) + "\n"))
            fence = None
        else:
            lines.append(line)
    assert fence is None, f"README.md: the fence opened at line {start} is never closed"
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))
RUN_IN_PROCESS = {snippet.strip() for snippet in (QUICK_START, SB3_ONE_STEP, DENSE_CUE)}
"""Blocks that ``tests/test_first_contact.py`` runs and checks (the quick start's two plans apart, SB3 learning
beyond its start, the dense cue for K), after checking that README.md holds them character for character: not run
twice (they start no worker process whose exit could hang)."""


def test_readme_has_python_blocks():
    assert BLOCKS, "README.md has no ```python block: test_readme_block would pass on nothing"


def run_block(code: str, timeout: float, name: str = "block") -> tuple[int | None, str]:
    """Runs ``code`` (as ``<name>.py``) in a fresh interpreter in its own session, in a temporary working directory
    (what an example writes, such as ``runs/``, stays out of the work tree) with the repository on PYTHONPATH and a
    temporary HOME and TMPDIR; returns (exit status or None on timeout, output). tests/test_docs.py runs the docs'
    examples through it too.

    The output goes to a file, not a pipe, so that a leftover grandchild holding it cannot block the read; the whole
    process group is killed afterwards (on timeout, and after a normal exit, for any worker left behind)."""
    scratch = Path(tempfile.mkdtemp(prefix="readme-"))  # short: Ray's socket paths live under TMPDIR
    try:
        (scratch / "home").mkdir()
        (scratch / "tmp").mkdir()
        (scratch / "work").mkdir()
        script = scratch / f"{name}.py"
        script.write_text(code, encoding="utf-8")
        env = dict(os.environ, HOME=str(scratch / "home"), TMPDIR=str(scratch / "tmp"), MPLBACKEND="Agg",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                   PYTHONUNBUFFERED="1")
        env.pop("PRUNING_ENV_DATA", None)  # let nothing point the data cache elsewhere than the temporary home
        log = scratch / "output.txt"
        with open(log, "wb") as out:
            process = subprocess.Popen([sys.executable, str(script)], cwd=scratch / "work", env=env, stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                status: int | None = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                status = None
            finally:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                process.wait()
        return status, log.read_text(encoding="utf-8", errors="replace")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.mark.parametrize(
    "block", [pytest.param(b, id=b.id) for b in BLOCKS
              if b.code.strip() not in RUN_IN_PROCESS]
)
def test_readme_block(block: Block):
    status, output = run_block(block.code, TIMEOUT_S, f"readme_L{block.line}")
    tail = output[-6000:]
    where = f"README.md block at line {block.line} (under {block.heading!r})"
    assert status is not None, f"{where} did not exit within {TIMEOUT_S} s; its output:\n{tail}"
    assert status == 0, f"{where} exited with status {status}; its output:\n{tail}"


def test_a_block_that_does_not_exit_in_time_is_caught():
    """The time limit works: a block that never ends is reported as such (and killed with its children)."""
    status, output = run_block("import time\nprint('started', flush=True)\ntime.sleep(600)\n", 5)
    assert status is None and "started" in output
