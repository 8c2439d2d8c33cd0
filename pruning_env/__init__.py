"""pruning_env: ARLP-style learned one-shot pruning at initialization as PettingZoo and Gymnasium environments.

Entry points (PettingZoo's conventions):
- ``parallel_env(**kwargs)``: the native ``PruningEnv`` (a ``ParallelEnv``), one agent per prunable layer;
- ``env(**kwargs)``: the same as an AEC env (PettingZoo's ``parallel_to_aec``, order-enforced, each action checked
  at its agent's turn);
- ``raw_env(**kwargs)``: the unwrapped ``PruningEnv``;
- ``gymnasium.make("pruning_env/<TaskId>")``: ``PruningControllerEnv``, one controller for all layers.
"""

from __future__ import annotations

from typing import Any

from pruning_env.aec import aec_env
from pruning_env.gym_env import PruningControllerEnv
from pruning_env.multi_task import MultiTaskPruningEnv
from pruning_env.parallel import PruningEnv
from pruning_env.plan import EpisodeResult
from pruning_env.registry import get_task, register_envs
from pruning_env.tasks import TASKS, Task

__all__ = [
    "TASKS",
    "EpisodeResult",
    "MultiTaskPruningEnv",
    "PruningControllerEnv",
    "PruningEnv",
    "Task",
    "env",
    "get_task",
    "parallel_env",
    "raw_env",
]
__version__ = "0.1.0"


def parallel_env(**kwargs: Any) -> PruningEnv:
    """The pruning task as a PettingZoo ParallelEnv; keyword arguments as ``PruningEnv``."""
    return PruningEnv(**kwargs)


raw_env = parallel_env  # PruningEnv is parallel-native: the unwrapped env is the parallel env itself


def env(**kwargs: Any):
    """The pruning task as a PettingZoo AEC env (agents act in turn; the step happens after the last layer)."""
    return aec_env(PruningEnv(**kwargs))


register_envs()
