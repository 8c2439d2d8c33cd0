"""Final test accuracy of a pruning plan: the ground truth of every benchmark.

A plan is a requested sparsity per layer. It is applied exactly as the env applies it to the instance of a seed
(the env's projection onto the budget, the env's within-layer masks on the seeded initialization), then the pruned
network is trained with the task's full schedule and evaluated on the TEST split, which no reward ever reads.

    evaluator = FinalEvaluator("mlp-digits", target_sparsity=0.98)
    outcome = evaluator(plan, seed=0)        # plan: (L,) sparsities; outcome.accuracy is the test accuracy

Reuse one ``FinalEvaluator`` for many plans: it keeps one env (its instances cached per seed) and one trainer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from pruning_env.data import Dataset
from pruning_env.env import PruningEnv
from pruning_env.layers import prunable_layers
from pruning_env.tasks import Task, get_task
from pruning_env.training import MaskedTrainer, TrainConfig


@dataclass(frozen=True)
class FinalOutcome:
    """A plan's fully trained result on the test split."""

    accuracy: float
    """Test top-1 accuracy in [0, 1]; 0 when the training diverged."""
    loss: float
    """Test cross-entropy in nats; ``inf`` when diverged."""
    diverged: bool
    """True when the training or test loss was not finite."""
    seconds: float
    """Wall time of the full training plus the test evaluation."""
    pruned_counts: tuple[int, ...]
    """Weights pruned per layer, as the env's projection gave them."""
    global_sparsity: float
    """Pruned fraction of all prunable weights (the target, to the weight)."""


class FinalEvaluator:
    """Trains plans fully on the instances of one task and target and reports test accuracy.

    Args:
        task: a task name or ``Task``; its ``final_train`` is the schedule unless ``final_train`` is given.
        target_sparsity: the global target in [0, 1); the task's default when None.
        scorer: the within-layer mask criterion; the task's when None.
        data: the dataset (the task's, loaded on ``device``, when None).
        device: "auto", "cpu", "cuda" or a torch.device.
        final_train: the full training schedule; ``task.final_train`` when None (shorten it only for tests).
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
    ) -> None:
        self.task = task if isinstance(task, Task) else get_task(task)
        # the zero-cost reward makes a step cheap; only the env's projection and masks are used
        self.env = PruningEnv(
            self.task, data=data, target_sparsity=target_sparsity, scorer=scorer, reward="zero_cost", device=device
        )
        self.final_train = self.task.final_train if final_train is None else final_train
        data = self.env.data
        model = copy.deepcopy(self.env.model)
        self.trainer = MaskedTrainer(model, prunable_layers(model, data.x_train[:2]), data.x_train, data.y_train)

    def __call__(self, sparsities: np.ndarray, seed: int, train_seed: int | None = None) -> FinalOutcome:
        """Prune the instance of ``seed`` with the requested ``sparsities`` ``(L,)``, train fully, test.

        ``seed`` is the init seed (a reset seed of an env with the default ``init="fixed"``); the plan is projected
        onto this evaluator's target, so give it the episode's target when the env draws targets from a range.
        ``train_seed`` seeds the minibatch order; by default the instance's init seed, as in the env's reward.
        """
        plan = np.asarray(sparsities, dtype=np.float64)
        if plan.shape != (len(self.env.layers),):
            raise ValueError(f"sparsities must have shape ({len(self.env.layers)},) (one per layer), got {plan.shape}")
        self.env.reset(seed=seed)
        _, _, _, _, infos = self.env.step({agent: plan[i : i + 1] for i, agent in enumerate(self.env.possible_agents)})
        info = infos[self.env.possible_agents[0]]
        assert self.env.last_plan is not None and self.env.last_masks is not None
        data = self.env.data
        result = self.trainer.run(
            self.env.pruned_model().state_dict(),
            self.env.last_masks,
            self.final_train,
            int(info["init_seed"]) if train_seed is None else train_seed,
            data.x_test,
            data.y_test,
        )
        return FinalOutcome(
            accuracy=result.accuracy,
            loss=result.loss,
            diverged=result.diverged,
            seconds=result.train_seconds + result.eval_seconds,
            pruned_counts=tuple(int(count) for count in self.env.last_plan["pruned_counts"]),
            global_sparsity=info["global_sparsity"],
        )


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
