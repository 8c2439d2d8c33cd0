"""What every benchmark shares: the env of one instance, a controller's plan on it, and the full trainings of
plans in worker processes (the ground truth), with the versions each record carries.

    env = cell_env("mlp-digits", 0.99, seed=0, reward="neg_loss", reward_steps=None, device="cpu")
    plan = plan_of(agents.make_controller("erk", env), env, seed=0)        # (L,) requested sparsities
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from benchmarks.final_accuracy import FinalEvaluator
from benchmarks.ground_truth import GroundTruth
from benchmarks.provenance import versions
from benchmarks.records import RecordFile
from pruning_env.data import Dataset
from pruning_env.device import default_reward_batch, resolve_device
from pruning_env.instances import ModelSource
from pruning_env.parallel import PruningEnv
from pruning_env.pools import JobPool
from pruning_env.registry import get_task
from pruning_env.spaces import stack_observations

if TYPE_CHECKING:  # the full trainings' worker processes import this module: they need no controller package
    from agents.base import Controller


def cell_env(
    task: str, target: float | tuple[float, float], seed: int, reward: str, reward_steps: int | None, device: str,
    reward_orders: int = 1, model: ModelSource | None = None, data: Dataset | None = None,
) -> PruningEnv:
    """A new env on seed ``seed``'s initialization of ``task`` (``init=seed``: reset seeds then only vary the
    targets drawn from a range), with the given reward (averaged over ``reward_orders`` minibatch orders); on
    ``model`` and ``data`` instead of the task's network and dataset when given (see ``PruningEnv``)."""
    return PruningEnv(
        task, model=model, data=data, target_sparsity=target, reward=reward, reward_steps=reward_steps, init=seed,
        seed=seed, device=device, reward_orders=reward_orders,
    )


def plan_of(controller: Controller, env: PruningEnv, seed: int, act: Callable[..., Any] | None = None) -> np.ndarray:
    """The requested sparsities ``(L,)`` a controller chooses on the seed's instance (with ``act``, a method of the
    controller's signature, instead of ``controller.act`` when given)."""
    observations, infos = env.reset(seed=seed)
    actions = (controller.act if act is None else act)(observations, infos)
    return stack_observations({agent: np.asarray(a, dtype=np.float64).reshape(1) for agent, a in actions.items()})[:, 0]


@functools.lru_cache(maxsize=4)
def _evaluator(task: str, target: float, final_steps: int | None, device: str) -> FinalEvaluator:
    """One evaluator per worker process and cell kind: it caches the seeds' instances."""
    torch.set_num_threads(1)
    final_train = None if final_steps is None else replace(get_task(task).evaluation_train, steps=final_steps)
    return FinalEvaluator(task, target, device=device, final_train=final_train)


def final_cells(task: str, target: float, seed: int, plans: list[list[float]], final_steps: int | None,
                device: str, train_seed: int | None = None) -> list[dict[str, Any]]:
    """Test accuracy of each plan on seed ``seed``'s instance after the task's full training (masks held) with
    minibatch order ``train_seed`` (None: the init seed); the plans train side by side on the batched path where
    the device selects it. On a trained task the training is its fine-tuning, and the test accuracy before it is
    recorded too (``zero_shot_test_accuracy``)."""
    evaluator = _evaluator(task, target, final_steps, device)
    results = evaluator.evaluate_many([(np.asarray(p), seed) for p in plans], train_seed)
    return [
        {
            "applied": result.applied.tolist(),
            "global_sparsity": result.global_sparsity,
            "effective_sparsity": result.effective_sparsity,
            "flops_reduction": result.flops_reduction,
            "num_classes": evaluator.data.num_classes,
            "test_accuracy": result.test_accuracy,
            "test_loss": result.test_loss,
            "val_accuracy": result.validation_accuracy,
            "val_loss": result.validation_loss,
            "diverged": result.diverged,
            "train_seconds": result.seconds,
            **({} if result.zero_shot_test_accuracy is None else
               {"zero_shot_test_accuracy": result.zero_shot_test_accuracy}),
        }
        for result in results
    ]


Job = tuple[tuple[str, float, int, int | None], list[dict[str, Any]]]
"""Plans to train together: ((task, target, seed, train seed or None), plan records with ``requested``)."""


class FinalPool:
    """Full trainings (``final_cells``) of jobs in a ``pruning_env.pools.JobPool`` of ``workers``: spawned
    processes kept for the pool's life, or this process for one worker; the numbers are the same.

        with FinalPool(workers=2, final_steps=None, device="cpu") as pool:
            for members, results in pool.train(jobs):      # as each job finishes
                ...
    """

    def __init__(self, workers: int, final_steps: int | None, device: str) -> None:
        self.final_steps, self.device = final_steps, device
        self.workers = JobPool(workers)

    def __enter__(self) -> FinalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes (waiting for running trainings)."""
        self.workers.close()

    def train(self, jobs: list[Job]) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        """(plan records, their ``final_cells``) of every job, as it finishes."""
        arguments = [(task, target, seed, [p["requested"] for p in members], self.final_steps, self.device, train_seed)
                     for (task, target, seed, train_seed), members in jobs]
        for index, results in self.workers.run(final_cells, arguments):
            yield jobs[index][1], results


def store_record(plan: dict[str, Any], result: dict[str, Any], final_steps: int | None, source: str,
                 code: str) -> dict[str, Any]:
    """The ``benchmarks.ground_truth`` record of a plan record's full training ``result`` (``final_cells``)."""
    task = get_task(plan["task"])
    return {
        "task": plan["task"], "target_sparsity": plan["target_sparsity"], "budget": task.budget,
        "seed": plan["seed"], "train_seed": plan["seed"] if plan.get("train_seed") is None else plan["train_seed"],
        "steps": final_steps or task.evaluation_train.steps, "requested": list(map(float, plan["requested"])),
        "applied": result["applied"], "val_accuracy": result["val_accuracy"], "val_loss": result["val_loss"],
        "test_accuracy": result["test_accuracy"], "test_loss": result["test_loss"], "diverged": result["diverged"],
        "seconds": result["train_seconds"], "source": source, "code": code, "versions": versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def jobs_of(plans: list[dict[str, Any]], chunk: int) -> list[Job]:
    """Plan records grouped by (task, target, seed, train seed) in chunks of ``chunk`` plans trained together."""
    groups: dict[tuple[str, float, int, int | None], list[dict[str, Any]]] = {}
    for plan in plans:
        key = (plan["task"], plan["target_sparsity"], plan["seed"], plan.get("train_seed"))
        groups.setdefault(key, []).append(plan)
    return [(key, members[start : start + chunk]) for key, members in groups.items()
            for start in range(0, len(members), chunk)]


def run_finals(
    plans: list[dict[str, Any]], cells: RecordFile, workers: int, final_steps: int | None, device: str,
    done: Callable[[dict[str, Any]], None], store: GroundTruth | None = None, source: str = "bench",
    code: str = "", **fields: Any,
) -> None:
    """Train every plan record (``task``, ``target_sparsity``, ``seed``, ``requested``, optionally
    ``train_seed``: the minibatch order, the init seed when absent) fully in ``workers`` processes and add each
    result to ``cells`` with the plan, ``fields``, the device and the versions; ``done(plan)`` after each. One
    worker trains in this process. Each training is also appended to ``store`` (``benchmarks.ground_truth``, with
    ``source`` and the code fingerprint ``code``) when given.

    The plans of one (task, target, seed, train seed) go to a worker in chunks of the device's reward batch (one
    plan per job on CPU, ``pruning_env.device.default_reward_batch``), where they train side by side.
    """
    if not plans:
        return  # a resumed run with nothing left to train starts no worker processes
    jobs = jobs_of(plans, default_reward_batch(resolve_device(device)))
    with FinalPool(min(workers, len(jobs)), final_steps, device) as pool:
        for members, results in pool.train(jobs):
            for plan, result in zip(members, results, strict=True):
                cells.add({
                    **plan, **result, **fields, "device": device, "versions": versions(),
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                })
                if store is not None:
                    store.add(store_record(plan, result, final_steps, source, code))
                done(plan)
