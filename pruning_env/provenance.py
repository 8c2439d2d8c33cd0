"""Where a result came from: the versions of the packages and the commit of this code."""

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


def versions() -> dict[str, str]:
    """The versions of pruning_env and of the packages its numbers depend on."""
    import gymnasium
    import numpy
    import pettingzoo
    import torch

    from pruning_env import __version__

    return {
        "pruning_env": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
        "gymnasium": gymnasium.__version__, "pettingzoo": pettingzoo.__version__, "python": platform.python_version(),
    }
