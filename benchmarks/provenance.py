"""Where a result came from: the versions of the packages, the processor whose kernels computed it, and the code
that computed it (a hash of the source files, not of the checkout's commit: a result file or an unrelated edit
does not change it, an edited controller does).

The processor is part of it because full trainings are reproducible on one kind of CPU, not across kinds: torch
picks its vector kernels by the CPU's instruction set (``torch.backends.cpu.get_cpu_capability()``) and MKL its GEMM
code path by the processor, the rounding of their sums differs, and hundreds of optimizer steps amplify it to a few
test images (measured by ``python -m benchmarks.studies.numerics``).
"""

from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE_PACKAGES: tuple[str, ...] = ("pruning_env", "agents")
"""The packages whose source every benchmark number depends on (the env, its data and training; the controllers)."""


@functools.cache
def git_describe() -> str:
    """``git describe --always --dirty`` of this package's checkout, or ``"unknown"`` outside one."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def source_hash(paths: Iterable[Path]) -> str:
    """A short SHA-256 of the files' contents and their names relative to the repository root (``.py`` files of
    folders, recursively, in sorted order; ``__pycache__`` ignored)."""
    digest = hashlib.sha256()
    files: list[Path] = []
    for path in paths:
        files += sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts) if path.is_dir() else [path]
    for file in files:
        resolved = file.resolve()
        name = resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else resolved
        digest.update(str(name).encode() + b"\0" + resolved.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@functools.cache
def code_fingerprint(*extra: str) -> str:
    """The hash of this project's source that computes results: ``CODE_PACKAGES`` and the files or folders
    ``extra`` (relative to the repository root, e.g. the benchmark modules that train the plans)."""
    return source_hash([ROOT / name for name in (*CODE_PACKAGES, *extra)])


@functools.cache
def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``'s "model name"; ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    """The versions of pruning_env and of the packages its numbers depend on, the processor (``cpu``) and the vector
    kernels torch runs on it (``cpu_capability``: "AVX512", "AVX2", "DEFAULT", ...), and the GPU when CUDA is
    available (``cuda_device``)."""
    import gymnasium
    import numpy
    import pettingzoo
    import torch

    from pruning_env import __version__

    found = {
        "pruning_env": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
        "gymnasium": gymnasium.__version__, "pettingzoo": pettingzoo.__version__, "python": platform.python_version(),
        "cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if torch.cuda.is_available():
        found["cuda_device"] = torch.cuda.get_device_name(0)
    return found
