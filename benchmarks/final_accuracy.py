"""Final test accuracy of a pruning plan: the ground truth of every benchmark.

A plan is a requested sparsity per layer. It is applied by the env itself (a ``PruningEnv`` of the task: the
instance of a seed, the env's projection onto the budget, the env's within-layer masks), then the env's plan
evaluator (``pruning_env.evaluation.PlanEvaluator``) trains the pruned network with the task's full schedule and
reads the TEST split, which no reward ever reads, and the validation split (``validation_accuracy``, for studies
that select plans without reading the test split). On a trained task (``prune_at="trained"``) the pruned trained
network is read as it is first (``zero_shot_test_accuracy``), then fine-tuned with the task's ``finetune`` schedule
(``Task.evaluation_train``) and read again.

    evaluator = FinalEvaluator("mlp-digits", target_sparsity=0.98)
    outcome = evaluator(plan, seed=0)        # plan: (L,) sparsities; outcome.test_accuracy in [0, 1]

Reuse one ``FinalEvaluator`` for many plans: it keeps its env's instances (scored once per seed) and one trainer.
``evaluator.evaluate_many([(plan, seed), ...])`` trains the plans of one (seed, training seed) together, up to
``train_batch`` masked copies side by side (the batched path; ``"auto"``: 1 on CPU, 64 on CUDA).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pruning_env.compute import TrainResult
from pruning_env.data import Dataset
from pruning_env.effective import ConnectivityProbe
from pruning_env.evaluation import PlanEvaluator
from pruning_env.instances import ModelSource
from pruning_env.parallel import PruningEnv
from pruning_env.plan import PrunedPlan, prune_plan
from pruning_env.tasks import Task
from pruning_env.training import TrainConfig


@dataclass(frozen=True)
class FinalResult:
    """One plan of one instance after the full training: the plan as applied, and what it scores on the test and
    the validation split."""

    seed: int
    """Init seed of the instance the plan pruned."""
    train_seed: int
    """Seed of the training's minibatch order."""
    target_sparsity: float
    """The global target (a fraction of the weights, or of the MACs under a FLOPs budget)."""
    requested: np.ndarray
    """Requested sparsity per layer ``(L,)``, clipped into [0, 1]."""
    applied: np.ndarray
    """Applied sparsity per layer ``(L,)`` after the budget projection."""
    pruned_counts: np.ndarray
    """Weights pruned per layer ``(L,)`` int64."""
    global_sparsity: float
    """Pruned fraction of all prunable weights."""
    effective_sparsity: float
    """Fraction of all prunable weights pruned or dead (``pruning_env.effective``), >= ``global_sparsity``."""
    flops_reduction: float
    """Pruned fraction of the prunable layers' multiply-accumulates per sample."""
    test_accuracy: float
    """Top-1 accuracy in [0, 1] on the test split (0 when diverged)."""
    test_loss: float
    """Mean cross-entropy (nats) on the test split (``inf`` when diverged)."""
    validation_accuracy: float
    """Top-1 accuracy in [0, 1] on the validation split after the same training (0 when diverged)."""
    validation_loss: float
    """Its mean cross-entropy (nats; ``inf`` when diverged)."""
    diverged: bool
    """The training's last loss or an evaluation loss was not finite."""
    seconds: float
    """Wall time of the training and the evaluations (a batched run's divided by its copies)."""
    test_accuracy_at: tuple[float, ...] = ()
    """Test accuracy after each step of ``eval_at``, in that order (empty without)."""
    zero_shot_test_accuracy: float | None = None
    """On a trained task: the test accuracy of the pruned trained network before fine-tuning (None from θ0)."""

    @classmethod
    def of(cls, pruned: PrunedPlan, run: TrainResult, seed: int, train_seed: int, target_sparsity: float,
           effective_sparsity: float, zero_shot: TrainResult | None = None) -> FinalResult:
        """The result of the plan ``pruned`` trained in ``run`` (evaluated on the test split, the validation split
        second), with its reading before any training ``zero_shot`` on a trained task."""
        return cls(
            seed=seed, train_seed=train_seed, target_sparsity=target_sparsity, requested=pruned.requested,
            applied=pruned.applied, pruned_counts=pruned.pruned_counts, global_sparsity=pruned.global_sparsity,
            effective_sparsity=effective_sparsity, flops_reduction=pruned.flops_reduction,
            test_accuracy=run.accuracy, test_loss=run.loss, validation_accuracy=run.second_accuracy,
            validation_loss=run.second_loss, diverged=run.diverged, seconds=run.train_seconds + run.eval_seconds,
            test_accuracy_at=run.accuracy_at,
            zero_shot_test_accuracy=None if zero_shot is None else zero_shot.accuracy,
        )


class FinalEvaluator:
    """Trains plans fully on the instances of one task and target and reports their test accuracy.

    The plans are applied by the task's env (``env``: its instances scored with its mask scorer, its
    ``pruning_env.plan.prune_plan``), so a plan prunes exactly the weights the env prunes; no proxy is scored and
    no reward is computed. The env's trainer trains them through a ``PlanEvaluator`` given the full schedule, the
    test split and the validation split.

    Args:
        task: a task name or ``Task``; its ``evaluation_train`` (``final_train``, or a trained task's ``finetune``)
            is the schedule unless ``final_train`` is given.
        target_sparsity: the global target in [0, 1) (of the weights, or of the MACs on a task with
            ``budget="flops"``); the task's default when None.
        scorer: the within-layer mask criterion; the task's when None.
        data: the dataset (the task's, loaded on ``device``, when None).
        device: "auto", "cpu", "cuda" or a torch.device.
        final_train: the training schedule; ``task.evaluation_train`` when None (shorten it only for tests).
        train_batch: most plans trained side by side by ``evaluate_many``, or ``"auto"`` (the device's
            ``pruning_env.device.default_reward_batch``: 1, one at a time, on CPU).
        model: the network as the env takes it (a factory ``seed -> nn.Module``, or a module whose weights are θ0
            for every seed); the task's network when None. Give the env's, so that both prune the same θ0.
    """

    def __init__(
        self,
        task: str | Task,
        target_sparsity: float | None = None,
        *,
        scorer: str | None = None,
        data: Dataset | None = None,
        device: str = "auto",
        final_train: TrainConfig | None = None,
        train_batch: int | str = "auto",
        model: ModelSource | None = None,
    ) -> None:
        self.env = PruningEnv(task, model=model, data=data, target_sparsity=target_sparsity, scorer=scorer,
                              proxies=(), device=device, reward_batch=train_batch)
        """The env that applies the plans (``reset(seed=s)`` holds the instance of s)."""
        self.task = self.env.task
        self.data = self.env.data
        self.layers = self.env.layers
        self.target_sparsity = self.env.config.target_range[0]
        trainer = self.env.reward_evaluator.trainer  # its model is still θ0's network: the probe reads its structure
        self.connectivity = ConnectivityProbe(trainer.model, [layer.name for layer in self.layers],
                                              self.data.input_shape)
        self.plans = PlanEvaluator(trainer, self.task.evaluation_train if final_train is None else final_train,
                                   self.data.x_test, self.data.y_test, second_eval=self.data.val)
        """The plan evaluator: the full schedule, read on the test split and the validation split."""
        self.zero_shot = self.plans.at(None, 1) if self.env.config.prune_at == "trained" else None
        """On a trained task: the same splits read with no training (one forward pass)."""

    def __call__(
        self, sparsities: np.ndarray, seed: int, train_seed: int | None = None, eval_at: Sequence[int] = ()
    ) -> FinalResult:
        """Prune the instance of init seed ``seed`` with the requested ``sparsities`` ``(L,)``, train fully, test.

        The plan is projected onto this evaluator's target, so give it the episode's target when the env draws
        targets from a range. ``train_seed`` seeds the minibatch order; by default the init seed, as in the env's
        reward. ``eval_at``: steps of the full training after which the test accuracy is also read
        (``FinalResult.test_accuracy_at``).
        """
        return self.evaluate_many([(sparsities, seed)], train_seed, eval_at)[0]

    def evaluate_many(
        self, plans: Sequence[tuple[np.ndarray, int]], train_seed: int | None = None, eval_at: Sequence[int] = ()
    ) -> list[FinalResult]:
        """``__call__`` for every ``(sparsities, seed)``, in input order; the plans of one seed train together
        (``train_batch`` side by side). Raises ValueError for no plans or a bad plan, naming it."""
        if len(plans) == 0:
            raise ValueError("evaluate_many needs at least one (sparsities, seed) plan, got none")
        pruned = [self._prune(sparsities, seed, f"plan {index}") for index, (sparsities, seed) in enumerate(plans)]
        groups: dict[int, list[int]] = {}
        for index, (_, seed) in enumerate(plans):
            groups.setdefault(seed, []).append(index)
        results: list[FinalResult | None] = [None] * len(plans)
        for seed, indices in groups.items():
            order = seed if train_seed is None else train_seed
            state, masks = pruned[indices[0]][0], [pruned[i][1].masks for i in indices]
            runs = self.plans.runs(state, masks, order, eval_at)
            zero_shots = [None] * len(runs) if self.zero_shot is None else self.zero_shot.runs(state, masks, order)
            for index, (run,), zero_shot in zip(indices, runs, zero_shots, strict=True):
                plan = pruned[index][1]
                results[index] = FinalResult.of(plan, run, seed, order, self.target_sparsity,
                                                self.connectivity.effective_sparsity(plan.masks),
                                                None if zero_shot is None else zero_shot[0])
        return results  # type: ignore[return-value]

    def zero_shot_many(self, plans: Sequence[tuple[np.ndarray, int]]) -> list[TrainResult]:
        """On a trained task: every ``(sparsities, seed)`` plan's pruned trained network read as it is, no
        fine-tuning (one forward pass over each split): ``accuracy``/``loss`` on the test split,
        ``second_accuracy``/``second_loss`` on the validation split; in input order.

        Raises:
            ValueError: on a task pruned at initialization (nothing to read before training), for no plans or a bad
                plan.
        """
        if self.zero_shot is None:
            raise ValueError(f"{self.task.name} prunes at initialization: a zero-shot reading needs prune_at='trained'")
        if len(plans) == 0:
            raise ValueError("zero_shot_many needs at least one (sparsities, seed) plan, got none")
        results: list[TrainResult] = []
        for index, (sparsities, seed) in enumerate(plans):
            state, pruned = self._prune(sparsities, seed, f"plan {index}")
            [(run,)] = self.zero_shot.runs(state, [pruned.masks], seed)
            results.append(run)
        return results

    def _prune(
        self, sparsities: np.ndarray, seed: int, label: str
    ) -> tuple[Mapping[str, torch.Tensor], PrunedPlan]:
        """The instance of ``seed`` (θ0 as a state dict) and the plan applied to it as the env applies it; a
        ValueError names ``label``."""
        self.env.reset(seed=seed)
        try:
            return self.env.instance.state, prune_plan(sparsities, self.layers, self.target_sparsity,
                                                       self.env.mask_orders(), budget=self.env.config.budget)
        except ValueError as error:
            raise ValueError(f"{label} (seed {seed}): {error}") from None


def final_test_accuracy(
    task: str | Task,
    sparsities: np.ndarray,
    seed: int,
    scorer: str | None = None,
    device: str = "auto",
    *,
    target_sparsity: float | None = None,
    final_train: TrainConfig | None = None,
) -> float:
    """Test accuracy in [0, 1] of the plan ``sparsities`` ``(L,)`` on the instance of ``seed``, fully trained.

    One-off convenience around ``FinalEvaluator`` (which it builds, scoring the instance): for many plans build
    one ``FinalEvaluator`` and call it.
    """
    evaluator = FinalEvaluator(task, target_sparsity, scorer=scorer, device=device, final_train=final_train)
    return evaluator(sparsities, seed).test_accuracy
