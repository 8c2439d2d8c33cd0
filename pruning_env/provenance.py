"""Where a result came from: the versions of the packages, the processor whose kernels computed it, and the commit
of this code.

The processor is part of it because full trainings are reproducible on one kind of CPU, not across kinds: torch
picks its vector kernels by the CPU's instruction set (``torch.backends.cpu.get_cpu_capability()``) and MKL its GEMM
code path by the processor, the rounding of their sums differs, and hundreds of optimizer steps amplify it to a few
test images (measured by ``python -m benchmarks.numerics``).
"""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path


@functools.cache
def git_describe() -> str:
    """``git describe --always --dirty`` of this package's checkout, or ``"unknown"`` outside one."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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
