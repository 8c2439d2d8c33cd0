"""Final test accuracy of a pruning plan: the ground truth of every benchmark.

A plan is a requested sparsity per layer. It is applied exactly as the env applies it to the instance of a seed
(the env's projection onto the budget, the env's within-layer masks on the seeded initialization), then the pruned
network is trained with the task's full schedule and evaluated on the TEST split, which no reward ever reads (and on
the validation split, ``validation_accuracy``, for studies that select plans without reading the test split).

    evaluator = FinalEvaluator("mlp-digits", target_sparsity=0.98)
    outcome = evaluator(plan, seed=0)        # plan: (L,) sparsities; outcome.accuracy is the test accuracy

Reuse one ``FinalEvaluator`` for many plans: it keeps its instances (scored once per seed) and one trainer.
``evaluator.evaluate_many([(plan, seed), ...])`` trains the plans of one (seed, training seed) together, up to
``train_batch`` masked copies side by side (the batched path; ``"auto"``: 1 on CPU, 64 on CUDA).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

import numpy as np

from pruning_env.compute import TrainResult
from pruning_env.config import EnvConfig
from pruning_env.data import Dataset, load_dataset
from pruning_env.device import default_reward_batch
from pruning_env.effective import ConnectivityProbe
from pruning_env.instances import InstanceCache, ModelSource
from pruning_env.layers import prunable_layers
from pruning_env.plan import EpisodeResult, PrunedPlan, prune_plan
from pruning_env.tasks import Task, task_model
from pruning_env.training import MaskedTrainer, TrainConfig


class FinalEvaluator:
    """Trains plans fully on the instances of one task and target and reports test accuracy.

    It applies a plan with the env's own pipeline (``pruning_env.plan.prune_plan`` on the instance of the seed,
    scored by ``pruning_env.instances.InstanceCache`` with the env's mask scorer), so a plan prunes exactly the
    weights the env prunes; no proxy is scored and no reward is computed.

    Args:
        task: a task name or ``Task``; its ``final_train`` is the schedule unless ``final_train`` is given.
        target_sparsity: the global target in [0, 1) (of the weights, or of the MACs on a task with
            ``budget="flops"``); the task's default when None.
        scorer: the within-layer mask criterion; the task's when None.
        data: the dataset (the task's, loaded on ``device``, when None).
        device: "auto", "cpu", "cuda" or a torch.device.
        final_train: the full training schedule; ``task.final_train`` when None (shorten it only for tests).
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
        config = EnvConfig.build(task, target_sparsity=target_sparsity, scorer=scorer, proxies=(), device=device)
        self.task = config.task
        self.target_sparsity = config.target_range[0]
        self.final_train = self.task.final_train if final_train is None else final_train
        self.data = (data if data is not None else load_dataset(self.task.dataset)).to(config.device)
        self.budget = config.budget
        self.instances = InstanceCache.of_network(
            model if model is not None else task_model(self.task, self.data.num_classes), self.data, (), config.scorer,
            reinit_module=False, budget=config.budget,
        )
        self.layers = self.instances.layers
        self.connectivity = ConnectivityProbe(self.instances.model, [layer.name for layer in self.layers],
                                              self.data.input_shape)
        model = copy.deepcopy(self.instances.model)
        copies = default_reward_batch(config.device) if train_batch == "auto" else train_batch
        self.trainer = MaskedTrainer(model, prunable_layers(model, self.data.x_train[:2]), self.data.x_train,
                                     self.data.y_train, copies=copies)

    def __call__(self, sparsities: np.ndarray, seed: int, train_seed: int | None = None) -> EpisodeResult:
        """Prune the instance of init seed ``seed`` with the requested ``sparsities`` ``(L,)``, train fully, test.

        The plan is projected onto this evaluator's target, so give it the episode's target when the env draws
        targets from a range. ``train_seed`` seeds the minibatch order; by default the init seed, as in the env's
        reward. The result's ``reward`` and ``accuracy`` are the test accuracy, ``loss`` the test loss.
        """
        return self.evaluate_many([(sparsities, seed)], train_seed)[0]

    def evaluate_many(
        self, plans: Sequence[tuple[np.ndarray, int]], train_seed: int | None = None
    ) -> list[EpisodeResult]:
        """``__call__`` for every ``(sparsities, seed)``, in input order; the plans of one seed train together
        (``train_batch`` side by side). Raises ValueError for no plans or a bad plan, naming it."""
        if len(plans) == 0:
            raise ValueError("evaluate_many needs at least one (sparsities, seed) plan, got none")
        pruned = [self._prune(sparsities, seed, f"plan {index}") for index, (sparsities, seed) in enumerate(plans)]
        groups: dict[int, list[int]] = {}
        for index, (_, seed) in enumerate(plans):
            groups.setdefault(seed, []).append(index)
        results: list[EpisodeResult | None] = [None] * len(plans)
        for seed, indices in groups.items():
            runs = self.trainer.run_many(
                self.instances.get(seed).state, [pruned[i].masks for i in indices], self.final_train,
                seed if train_seed is None else train_seed, self.data.x_test, self.data.y_test, self.data.val,
            )
            for index, run in zip(indices, runs, strict=True):
                results[index] = self._result(pruned[index], run, seed)
        return results  # type: ignore[return-value]

    def accuracy_at(
        self, sparsities: np.ndarray, seed: int, steps: Sequence[int], train_seed: int | None = None
    ) -> tuple[EpisodeResult, tuple[float, ...]]:
        """``__call__`` that also reads the test accuracy (in [0, 1]) after each of ``steps`` of the full training
        (one training, on the sequential path): the result and those accuracies, in the order of ``steps``."""
        pruned = self._prune(sparsities, seed, "the plan")
        run = self.trainer.run(self.instances.get(seed).state, pruned.masks, self.final_train,
                               seed if train_seed is None else train_seed, self.data.x_test, self.data.y_test,
                               eval_at=steps, second_eval=self.data.val)
        return self._result(pruned, run, seed), run.accuracy_at

    def _result(self, pruned: PrunedPlan, run: TrainResult, seed: int) -> EpisodeResult:
        """The result of a trained plan: test accuracy as reward and accuracy, the validation split's accuracy and
        loss after the same training, the masks' effective sparsity."""
        result = EpisodeResult.of(pruned, run, run.accuracy, seed, seed, self.target_sparsity,
                                  effective_sparsity=self.connectivity.effective_sparsity(pruned.masks))
        return dataclasses.replace(result, validation_accuracy=run.second_accuracy, validation_loss=run.second_loss)

    def _prune(self, sparsities: np.ndarray, seed: int, label: str) -> PrunedPlan:
        """The plan applied to the instance of ``seed`` as the env applies it; a ValueError names ``label``."""
        instance = self.instances.get(seed)
        try:
            return prune_plan(sparsities, self.layers, self.target_sparsity,
                              self.instances.mask_orders(instance, self.target_sparsity), budget=self.budget)
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
    return evaluator(sparsities, seed).accuracy
