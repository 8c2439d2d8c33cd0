"""Reward kinds by hand: the zero-cost reward is log10 of the surviving fraction of SynFlow's R (the path norm of
a bias-free ReLU net), neg_loss is floored at -3 log C, a diverged training earns the kind's lowest value."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from pruning_env.layers import prunable_layers
from pruning_env.parallel import PruningEnv
from pruning_env.rewards import ZERO_COST_FLOOR, RewardEvaluator, reward_bounds
from pruning_env.scorers import synaptic_flow
from pruning_env.training import MaskedTrainer, TrainConfig


def hand_net() -> nn.Sequential:
    """Linear 2 -> 2 -> 1 without biases: W1 = [[1, -2], [3, 4]], W2 = [[1, -1]]; R = |W2| |W1| 1 = 3 + 7 = 10."""
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 4.0]]))
        net[2].weight.copy_(torch.tensor([[1.0, -1.0]]))
    return net


def evaluator(kind: str, net: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig,
              num_classes: int = 3) -> RewardEvaluator:
    trainer = MaskedTrainer(net, prunable_layers(net, x[:1]), x, y)
    return RewardEvaluator(kind, trainer, config, x, y, num_classes=num_classes)


def masks(first: list[list[bool]], second: list[list[bool]]) -> dict[str, torch.Tensor]:
    return {"0": torch.tensor(first), "2": torch.tensor(second)}


KEEP = [[True, True], [True, True]]


@pytest.mark.parametrize(
    ("first", "second", "flow"),
    [
        (KEEP, [[True, True]], 10.0),                        # dense
        ([[True, True], [True, False]], [[True, True]], 6.0),  # without 4: |W1| 1 = (3, 3)
        (KEEP, [[True, False]], 3.0),                        # only the first hidden unit's paths: 1 + 2
        ([[False, True], [True, False]], [[True, True]], 5.0),  # (2, 3)
        (KEEP, [[False, False]], 0.0),                       # disconnected
    ],
)
def test_zero_cost_is_log10_of_the_surviving_path_norm(first, second, flow) -> None:
    net = hand_net()
    layers = prunable_layers(net, torch.ones(1, 2))
    assert synaptic_flow(net, layers, (2,)) == 10.0
    x, y = torch.ones(4, 2), torch.zeros(4, dtype=torch.long)
    reward, run = evaluator("zero_cost", net, x, y, TrainConfig(steps=1))(hand_net().state_dict(), masks(first, second), 0)
    expected = math.log10(flow / 10.0) if flow > 0 else ZERO_COST_FLOOR
    assert reward == pytest.approx(expected, abs=1e-12)
    assert math.isnan(run.accuracy) and math.isnan(run.loss) and not run.diverged


def test_zero_cost_through_the_env_matches_the_path_norm_of_its_masks() -> None:
    def bias_free(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32, bias=False), nn.ReLU(), nn.Linear(32, 10, bias=False))

    env = PruningEnv("mlp-digits", model=bias_free, reward="zero_cost", target_sparsity=0.8, device="cpu")
    for plan in (np.full(2, 0.8), np.array([0.9, 0.2]), np.array([0.3, 0.99])):
        result = env.evaluate_plan(4, plan)
        state, kept = env.instance.state, env.last_masks
        w1 = (state["1.weight"] * kept["1"]).abs().double().numpy()
        w2 = (state["3.weight"] * kept["3"]).abs().double().numpy()
        dense = state["3.weight"].abs().double().numpy() @ state["1.weight"].abs().double().numpy() @ np.ones(64)
        pruned = w2 @ w1 @ np.ones(64)
        assert result.reward == pytest.approx(math.log10(pruned.sum() / dense.sum()), abs=1e-9)
        assert ZERO_COST_FLOOR < result.reward < 0.0


def test_neg_loss_is_floored_at_three_log_classes() -> None:
    net = nn.Linear(2, 3)
    with torch.no_grad():  # confidently wrong: logits (0, 0, 100 x0) against class 0
        net.weight.copy_(torch.tensor([[0.0, 0.0], [0.0, 0.0], [100.0, 0.0]]))
        net.bias.zero_()
    x, y = torch.tensor([[1.0, 0.0]] * 4), torch.zeros(4, dtype=torch.long)
    keep = {"": torch.ones(3, 2, dtype=torch.bool)}
    evaluate = evaluator("neg_loss", net, x, y, TrainConfig(steps=1, lr=1e-12, optimizer="sgd", cosine=False))
    reward, run = evaluate(net.state_dict(), keep, 0)
    assert run.loss == pytest.approx(100.0, rel=1e-6)  # cross-entropy of logit gap 100, by hand
    assert reward == -3 * math.log(3) == reward_bounds("neg_loss", 3)[0]


def test_a_diverged_training_earns_the_lowest_reward() -> None:
    net = nn.Linear(2, 3)
    x, y = torch.tensor([[math.inf, 0.0]] * 4), torch.zeros(4, dtype=torch.long)
    keep = {"": torch.ones(3, 2, dtype=torch.bool)}
    for kind, lowest in (("neg_loss", -3 * math.log(3)), ("accuracy", 0.0)):
        reward, run = evaluator(kind, net, x, y, TrainConfig(steps=2))(net.state_dict(), keep, 0)
        assert run.diverged and reward == lowest and run.loss == math.inf


# --- rewards over several minibatch orders, and orders drawn per episode ------------------------------------------
def test_a_reward_over_two_orders_is_the_mean_of_the_two_trainings() -> None:
    from pruning_env.evaluation import order_seeds

    options = {"reward_steps": 5, "target_sparsity": 0.9, "device": "cpu"}
    one, two = PruningEnv("mlp-digits", **options), PruningEnv("mlp-digits", reward_orders=2, **options)
    plan = np.linspace(0.8, 0.95, len(one.layers))
    first = one.evaluate_plan(0, plan)
    both = two.evaluate_plan(0, plan)
    seeds = order_seeds(0, 2)
    assert seeds[0] == 0 and seeds[1] != 0
    evaluator = one.reward_evaluator
    second = evaluator.trainer.run(one.instance.state, one.last_masks, evaluator.train_config, seeds[1],
                                   evaluator.x_eval, evaluator.y_eval)
    assert both.reward == pytest.approx((first.reward - second.loss) / 2, abs=1e-9)
    assert both.reward != pytest.approx(first.reward)


def test_orders_drawn_per_episode_vary_with_the_reset_seed_but_reproduce() -> None:
    options = {"reward_steps": 5, "target_sparsity": 0.9, "device": "cpu", "init": 0}
    instance, episode = PruningEnv("mlp-digits", **options), PruningEnv("mlp-digits", reward_order="episode", **options)
    plan = np.full(len(instance.layers), 0.9)
    assert instance.evaluate_plan(1, plan).reward == instance.evaluate_plan(2, plan).reward  # one instance, one order
    rewards = [episode.evaluate_plan(seed, plan).reward for seed in (1, 2, 1)]
    assert rewards[0] != rewards[1] and rewards[0] == rewards[2]
    with pytest.raises(ValueError, match="reward_orders"):
        PruningEnv("mlp-digits", reward_orders=0, **options)
    with pytest.raises(ValueError, match="reward_order"):
        PruningEnv("mlp-digits", reward_order="batch", **options)
