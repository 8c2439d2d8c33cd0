"""What every benchmark shares: the env of one instance, a controller's plan on it, and the full trainings of
plans in worker processes (the ground truth), with the versions each record carries.

    env = instance_env("mlp-digits", 0.99, seed=0, reward="neg_loss", reward_steps=None, device="cpu")
    plan = plan_of(agents.make_controller("erk", env), env, seed=0)        # (L,) requested sparsities
"""

from __future__ import annotations

import functools
import multiprocessing
import time
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from agents.base import Controller, stacked
from benchmarks.final_accuracy import FinalEvaluator
from benchmarks.records import RecordFile
from pruning_env.parallel import PruningEnv
from pruning_env.provenance import versions
from pruning_env.registry import get_task


def instance_env(
    task: str, target: float | tuple[float, float], seed: int, reward: str, reward_steps: int | None, device: str
) -> PruningEnv:
    """A new env on seed ``seed``'s initialization of ``task`` (``init=seed``: reset seeds then only vary the
    targets drawn from a range), with the given reward."""
    return PruningEnv(
        task, target_sparsity=target, reward=reward, reward_steps=reward_steps, init=seed, seed=seed, device=device
    )


def plan_of(controller: Controller, env: PruningEnv, seed: int) -> np.ndarray:
    """The requested sparsities ``(L,)`` a controller chooses on the seed's instance."""
    observations, infos = env.reset(seed=seed)
    actions = controller.act(observations, infos)
    return stacked({agent: np.asarray(a, dtype=np.float64).reshape(1) for agent, a in actions.items()})[:, 0]


@functools.lru_cache(maxsize=4)
def _evaluator(task: str, target: float, final_steps: int | None, device: str) -> FinalEvaluator:
    """One evaluator per worker process and cell kind: it caches the seeds' instances."""
    torch.set_num_threads(1)
    final_train = None if final_steps is None else replace(get_task(task).final_train, steps=final_steps)
    return FinalEvaluator(task, target, device=device, final_train=final_train)


def final_cell(task: str, target: float, seed: int, requested: list[float], final_steps: int | None,
               device: str) -> dict[str, Any]:
    """Test accuracy of one plan on seed ``seed``'s instance after the task's full training (masks held)."""
    result = _evaluator(task, target, final_steps, device)(np.asarray(requested), seed)
    return {
        "applied": result.applied.tolist(),
        "global_sparsity": result.global_sparsity,
        "test_accuracy": result.accuracy,
        "test_loss": result.loss,
        "diverged": result.diverged,
        "train_seconds": result.seconds,
    }


def run_finals(
    plans: list[dict[str, Any]], cells: RecordFile, workers: int, final_steps: int | None, device: str, bar: tqdm,
    **fields: Any,
) -> None:
    """Train every plan record (``task``, ``target_sparsity``, ``seed``, ``requested``) fully in ``workers``
    processes and add each result to ``cells`` with the plan, ``fields``, the device and the versions."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures: dict[Future, dict[str, Any]] = {
            pool.submit(final_cell, p["task"], p["target_sparsity"], p["seed"], p["requested"], final_steps, device): p
            for p in plans
        }
        for future in as_completed(futures):
            cells.add({
                **futures[future], **future.result(), **fields, "device": device, "versions": versions(),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            })
            bar.update(1)
