"""The one plan evaluator (``pruning_env.evaluation``): the env's reward and the final evaluation are the same
training, given another schedule and split; the final evaluation prunes through the env, reads the test and the
validation split after one training, and reports them in fields of their own."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks.final_accuracy import FinalEvaluator, FinalResult
from pruning_env.evaluation import PlanEvaluator, order_seeds
from pruning_env.parallel import PruningEnv
from pruning_env.training import TrainConfig

SHORT = TrainConfig(steps=30, batch_size=64, lr=3e-3)


@pytest.fixture(scope="module")
def final() -> FinalEvaluator:
    return FinalEvaluator("mlp-digits", 0.95, device="cpu", final_train=SHORT)


def test_the_reward_is_the_plan_evaluator_on_the_validation_subset() -> None:
    env = PruningEnv("mlp-digits", target_sparsity=0.95, reward_steps=8, reward_orders=2, device="cpu")
    reward = env.reward_evaluator
    assert isinstance(reward, PlanEvaluator) and reward.second_eval is None
    size = min(env.task.reward_eval_size, len(env.data.x_val))
    assert torch.equal(reward.x_eval, env.data.x_val[:size]) and reward.train_config.steps == 8
    result = env.evaluate_plan(2, np.linspace(0.9, 0.99, len(env.layers)))
    runs = [reward.trainer.run(env.instance.state, env.last_masks, reward.train_config, order, reward.x_eval,
                               reward.y_eval) for order in order_seeds(2, 2)]
    assert result.reward == (-runs[0].loss - runs[1].loss) / 2  # neg_loss, the mean over the two orders
    assert result.loss == (runs[0].loss + runs[1].loss) / 2


def test_the_final_evaluation_prunes_through_the_env_and_reads_test_then_validation(final) -> None:
    plan = np.linspace(0.9, 0.99, len(final.layers))
    result = final(plan, seed=3, train_seed=5)
    env = PruningEnv("mlp-digits", target_sparsity=0.95, reward="zero_cost", device="cpu")
    episode = env.evaluate_plan(3, plan)
    np.testing.assert_array_equal(result.pruned_counts, episode.pruned_counts)
    assert (result.effective_sparsity, result.global_sparsity) == (episode.effective_sparsity,
                                                                   episode.global_sparsity)
    # the same training by hand: the env's masks on θ0 of seed 3, the schedule, minibatch order 5
    trainer = final.env.reward_evaluator.trainer
    data = final.data
    run = trainer.run(env.instance.state, env.last_masks, SHORT, 5, data.x_test, data.y_test,
                      second_eval=(data.x_val, data.y_val))
    assert (result.test_accuracy, result.test_loss) == (run.accuracy, run.loss)
    assert (result.validation_accuracy, result.validation_loss) == (run.second_accuracy, run.second_loss)
    assert (result.seed, result.train_seed, result.target_sparsity) == (3, 5, 0.95)
    assert not result.diverged and result.test_accuracy_at == ()
    assert not hasattr(result, "reward") and not hasattr(result, "accuracy")  # no field stands for two things


def test_final_checkpoint_reads_are_test_accuracies_of_the_same_training(final) -> None:
    plan = np.full(len(final.layers), 0.95)
    plain = final(plan, seed=0)
    probed = final(plan, seed=0, eval_at=(10, SHORT.steps))
    assert (probed.test_accuracy, probed.test_loss) == (plain.test_accuracy, plain.test_loss)
    assert len(probed.test_accuracy_at) == 2 and probed.test_accuracy_at[1] == probed.test_accuracy
    assert 0.0 <= probed.test_accuracy_at[0] <= 1.0


def test_final_results_come_back_in_input_order_and_bad_plans_name_themselves(final) -> None:
    layers = len(final.layers)
    plans = [(np.full(layers, 0.95), 1), (np.linspace(0.9, 0.99, layers), 0), (np.full(layers, 0.95), 0)]
    results = final.evaluate_many(plans)
    assert [r.seed for r in results] == [1, 0, 0] and all(isinstance(r, FinalResult) for r in results)
    assert results[0].test_accuracy != results[2].test_accuracy or results[0].test_loss != results[2].test_loss
    assert all(math.isfinite(r.validation_loss) for r in results)
    with pytest.raises(ValueError, match=r"plan 1 \(seed 2\).*finite"):
        final.evaluate_many([(np.full(layers, 0.95), 2), (np.full(layers, np.nan), 2)])
    with pytest.raises(ValueError, match="at least one"):
        final.evaluate_many([])
