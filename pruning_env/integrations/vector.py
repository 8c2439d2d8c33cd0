"""Vectorized PruningEnv without Ray: SuperSuit's multi-process concatenation and Gymnasium's AsyncVectorEnv.

``supersuit_vec_env`` flattens the layer agents of ``num_envs`` env copies into one vector env of
``num_envs x L`` slots (parameter sharing: one policy acts for every slot), stepped in ``workers`` processes.
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

Closing. Every vector env these helpers return is a context manager (``with supersuit_vec_env(...) as venv:``
closes it, workers included, when the block ends) and ``close()`` is idempotent. One left open is closed at
interpreter exit: SuperSuit's workers are not daemonic and wait on their pipes for the next command, so
multiprocessing's exit handler, which joins every child, would otherwise wait for them forever. The helpers'
exit handler holds the envs weakly and is registered with ``atexit`` after the first workers have started, hence
after multiprocessing registered its own (when ``multiprocessing.util`` was first imported; ``import
multiprocessing`` alone does not import it), and atexit runs handlers last-registered first: the envs close
before multiprocessing joins (checked: a handler registered before multiprocessing's would run after the join,
that is never). The returned objects keep their library's type (a subclass of it, made here, adds
``__enter__``/``__exit__`` and the idempotent ``close``).
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, Literal, TypeVar

import supersuit
import torch
from gymnasium.vector import AsyncVectorEnv, AutoresetMode

from pruning_env.gym_env import PruningControllerEnv
from pruning_env.parallel import PruningEnv

VecEnvT = TypeVar("VecEnvT")


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


def _enter(self: VecEnvT) -> VecEnvT:
    return self


def _exit(self: Any, *exc_info: Any) -> None:
    self.close()


@functools.cache
def _closing_type(cls: type) -> type:
    """A subclass of ``cls`` (same name, so reprs read as before) that is a context manager whose ``close`` runs
    once. Its methods sit in its own namespace, not in a mixin base: an instance's ``__class__`` can only be swapped
    for a subclass with the same layout, and a mixin placed before ``cls`` changes it."""

    def close(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.__dict__.get("_helper_closed", False):
            return None
        self._helper_closed = True  # set first: the env's own __del__ may call close again from inside close
        _open_envs.discard(self)
        return cls.close(self, *args, **kwargs)

    close.__doc__ = "Closes the env and its workers; does nothing if already closed."
    namespace = {"__module__": __name__, "__doc__": cls.__doc__, "__enter__": _enter, "__exit__": _exit,
                 "close": close}
    return type(cls.__name__, (cls,), namespace)


_open_envs: weakref.WeakSet = weakref.WeakSet()  # returned and not yet closed; weak: dropping an env frees it
_exit_handler_registered = False
_registration_lock = threading.Lock()


def _close_open_envs() -> None:
    """The atexit handler: closes every env the helpers returned that is still open."""
    for env in list(_open_envs):
        try:
            env.close()
        except Exception as error:  # noqa: BLE001 - one env's failure must not keep the others open
            print(f"pruning_env: closing {env!r} at exit failed: {error!r}")


def _closed_at_exit(env: VecEnvT) -> VecEnvT:
    """Makes ``env`` a context manager with an idempotent ``close`` and has it closed at exit if still open.

    Called after ``env`` started its workers, so ``multiprocessing.util`` (whose import registers the exit handler
    that joins children) is imported and its handler registered before ours: ours runs first.
    """
    global _exit_handler_registered
    try:
        env.__class__ = _closing_type(type(env))
    except BaseException:
        env.close()  # its workers would otherwise keep this process from exiting
        raise
    _open_envs.add(env)
    with _registration_lock:
        if not _exit_handler_registered:
            import multiprocessing.util  # noqa: F401 - makes sure its exit handler is registered before ours

            atexit.register(_close_open_envs)
            _exit_handler_registered = True
    return env


def supersuit_vec_env(
    num_envs: int = 2,
    workers: int = 2,
    base_class: Literal["gymnasium", "stable_baselines3"] = "gymnasium",
    **env_kwargs: Any,
) -> Any:
    """``num_envs`` copies of ``PruningEnv(**env_kwargs)`` as one SuperSuit vector env over ``workers`` processes.

    Observations ``(num_envs x L, F)``, actions ``(num_envs x L, 1)`` (continuous); slot ``c x L + i`` is layer
    ``i`` of copy ``c``. ``reset(seed=s)`` seeds copy ``c`` with ``s + c``. Use it in a ``with`` block or close
    it; one left open is closed at exit.
    """
    return concat_copies(PruningEnv(**env_kwargs), num_envs, workers, base_class)


def concat_copies(
    env: PruningEnv,
    num_envs: int,
    workers: int,
    base_class: Literal["gymnasium", "stable_baselines3"] = "gymnasium",
) -> Any:
    """``num_envs`` copies of ``env`` (cloned as it is, e.g. already reset) as one SuperSuit vector env over
    ``workers`` worker processes started, and closed, as the module docstring says."""
    agents_vec = supersuit.pettingzoo_env_to_vec_env_v1(env)
    with worker_processes(worker_start_method()):  # SuperSuit starts its workers with the default method
        venv = supersuit.concat_vec_envs_v1(agents_vec, num_envs, num_cpus=workers, base_class=base_class)
    return _closed_at_exit(venv)


def async_vector_env(num_envs: int = 2, **env_kwargs: Any) -> AsyncVectorEnv:
    """``num_envs`` subprocesses, each with ``PruningControllerEnv(**env_kwargs)``, resetting in the same step.
    Use it in a ``with`` block or close it; one left open is closed at exit."""
    factories = [partial(PruningControllerEnv, **env_kwargs)] * num_envs
    method = worker_start_method()
    with worker_processes(method):
        venv = AsyncVectorEnv(factories, autoreset_mode=AutoresetMode.SAME_STEP, context=method)
    return _closed_at_exit(venv)
