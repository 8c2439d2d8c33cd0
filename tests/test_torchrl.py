"""TorchRL: the PettingZoo wrapper over PruningEnv passes TorchRL's spec check, a random rollout carries the env's
rewards, and one ClipPPOLoss step on a rollout of the MAPPO actor changes the networks (continuous and discrete)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchrl.envs.utils import check_env_specs

from pruning_env.integrations.torchrl import GROUP, clip_ppo_loss, mappo_modules, torchrl_env
from pruning_env.parallel import PruningEnv

SEED = 3
ENV_KWARGS = {"reward": "neg_loss", "reward_steps": 2, "target_sparsity": 0.9, "device": "cpu"}
NUM_LAYERS, NUM_FEATURES = 6, 34  # mlp-digits: six Linear layers; five proxies


def env_reward(action_type: str, actions: np.ndarray) -> float:
    """The reward PruningEnv gives ``actions`` ``(L,)`` on the instance of SEED, without TorchRL."""
    env = PruningEnv(action_type=action_type, **ENV_KWARGS)
    env.reset(seed=SEED)
    dtype = np.int64 if action_type == "discrete" else np.float32
    _, rewards, _, _, _ = env.step({f"layer_{i}": np.array([a], dtype=dtype) for i, a in enumerate(actions)})
    return rewards["layer_0"]


@pytest.mark.parametrize("action_type", ["continuous", "discrete"])
def test_random_rollout_has_the_env_rewards_and_shapes(action_type):
    env = torchrl_env(seed=SEED, action_type=action_type, **ENV_KWARGS)
    check_env_specs(env, seed=SEED)
    env.set_seed(SEED)
    data = env.rollout(3, break_when_any_done=False)  # actions drawn from the action spec: a random policy
    assert data.batch_size == (3,)
    assert data[GROUP, "observation"].shape == (3, NUM_LAYERS, NUM_FEATURES)
    assert data["state"].shape == (3, NUM_LAYERS * NUM_FEATURES)
    reward = data["next", GROUP, "reward"]
    assert reward.shape == (3, NUM_LAYERS, 1) and (reward == reward[:, :1]).all()  # one team reward
    assert data["next", GROUP, "done"].all() and data["next", "done"].all()  # every episode is one step
    info = data["next", GROUP, "info"]
    assert torch.allclose(info["global_sparsity"], torch.tensor(0.9), atol=1e-3)
    # init="fixed": every episode of the rollout is on the instance of SEED
    for step in range(3):
        actions = data[step][GROUP, "action"].reshape(NUM_LAYERS).numpy()
        assert reward[step, 0, 0].item() == pytest.approx(env_reward(action_type, actions), abs=1e-6)


@pytest.mark.parametrize("action_type", ["continuous", "discrete"])
def test_one_clip_ppo_step_on_a_rollout(action_type):
    torch.manual_seed(SEED)
    env = torchrl_env(seed=SEED, action_type=action_type, **ENV_KWARGS)
    actor, critic = mappo_modules(env, hidden=16)
    with torch.no_grad():
        data = env.rollout(4, policy=actor, break_when_any_done=False)
    actions = data[GROUP, "action"]
    if action_type == "continuous":
        assert actions.dtype == torch.float32 and ((actions > 0) & (actions < 1)).all()
    else:
        assert actions.dtype == torch.int64 and ((actions >= 0) & (actions < 21)).all()
    assert data[GROUP, "action_log_prob"].shape == (4, NUM_LAYERS)

    loss = clip_ppo_loss(actor, critic, entropy_coeff=0.01)
    optimizer = torch.optim.Adam(loss.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in loss.parameters()]
    values = loss(data)
    total = values["loss_objective"] + values["loss_critic"] + values["loss_entropy"]
    assert torch.isfinite(total)
    optimizer.zero_grad()
    total.backward()
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, loss.parameters(), strict=True))
