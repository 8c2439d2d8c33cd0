"""Vectorized PruningEnv without Ray: SuperSuit's multi-process concatenation and Gymnasium's AsyncVectorEnv.

``supersuit_vec_env`` flattens the layer agents of ``num_envs`` env copies into one vector env of
``num_envs x L`` slots (parameter sharing: one policy acts for every slot), stepped in ``num_cpus`` processes.
``async_vector_env`` runs ``num_envs`` copies of the controller env (``PruningControllerEnv``, one action per
layer) in subprocesses; its episodes are one step long, so it resets in the same step (``AutoresetMode.SAME_STEP``;
the default NEXT_STEP mode would spend every other step on a reset). The final observation and info of an
episode are in ``infos["final_obs"]`` and ``infos["final_info"]``.

Worker processes. Both choose how their workers start instead of taking the process-wide default (importing
torchrl switches that default to "spawn", which makes every worker re-import torch: seconds each). They fork
(fast) unless CUDA is initialized in this process or fork is unavailable, then they spawn. Forked workers start
with one torch thread: a child forked from a parent whose torch already ran multi-threaded hangs in OpenMP at its
first parallel op (seen here with SuperSuit), and one thread per process is the right share of the cores anyway.
The caller's start method and thread count are restored once the workers run.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, Literal

import supersuit
import torch
from gymnasium.vector import AsyncVectorEnv, AutoresetMode

from pruning_env.env import PruningEnv
from pruning_env.gym_env import PruningControllerEnv


def worker_start_method() -> str:
    """"fork" unless CUDA is initialized in this process (forked children cannot use it) or fork is unavailable."""
    forkable = "fork" in multiprocessing.get_all_start_methods() and not torch.cuda.is_initialized()
    return "fork" if forkable else "spawn"


@contextmanager
def worker_processes(method: str) -> Iterator[None]:
    """Processes started in the block use ``method`` (as the process-wide default) and, forked, one torch thread."""
    previous = multiprocessing.get_start_method(allow_none=True)
    threads = torch.get_num_threads()
    multiprocessing.set_start_method(method, force=True)
    if method == "fork":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        multiprocessing.set_start_method(previous, force=True)
        torch.set_num_threads(threads)


def supersuit_vec_env(
    num_envs: int = 2,
    num_cpus: int = 2,
    base_class: Literal["gymnasium", "stable_baselines3"] = "gymnasium",
    **env_kwargs: Any,
) -> Any:
    """``num_envs`` copies of ``PruningEnv(**env_kwargs)`` as one SuperSuit vector env over ``num_cpus`` processes.

    Observations ``(num_envs x L, F)``, actions ``(num_envs x L, 1)`` (continuous); slot ``c x L + i`` is layer
    ``i`` of copy ``c``. ``reset(seed=s)`` seeds copy ``c`` with ``s + c``.
    """
    return concat_copies(PruningEnv(**env_kwargs), num_envs, num_cpus, base_class)


def concat_copies(
    env: PruningEnv,
    num_envs: int,
    num_cpus: int,
    base_class: Literal["gymnasium", "stable_baselines3"] = "gymnasium",
) -> Any:
    """``num_envs`` copies of ``env`` (cloned as it is, e.g. already reset) as one SuperSuit vector env over
    ``num_cpus`` worker processes started as the module docstring says."""
    agents_vec = supersuit.pettingzoo_env_to_vec_env_v1(env)
    with worker_processes(worker_start_method()):  # SuperSuit starts its workers with the default method
        return supersuit.concat_vec_envs_v1(agents_vec, num_envs, num_cpus=num_cpus, base_class=base_class)


def async_vector_env(num_envs: int = 2, **env_kwargs: Any) -> AsyncVectorEnv:
    """``num_envs`` subprocesses, each with ``PruningControllerEnv(**env_kwargs)``, resetting in the same step."""
    factories = [partial(PruningControllerEnv, **env_kwargs)] * num_envs
    method = worker_start_method()
    with worker_processes(method):
        return AsyncVectorEnv(factories, autoreset_mode=AutoresetMode.SAME_STEP, context=method)
