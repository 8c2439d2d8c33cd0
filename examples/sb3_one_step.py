"""Stable-Baselines3 PPO on the Gymnasium controller env, with settings that suit one-step episodes: short rollouts,
several epochs over each, the action rescaled to [-1, 1], one instance (``init=0``) at a target and K where plans
earn unequal rewards. Prints the deterministic plan's reward before and after 128 episodes (one reward evaluation
each). About 1-1.5 minutes on 2 CPU cores.

tests/test_first_contact.py runs this file and checks that the policy learns beyond its starting plan.
"""

import gymnasium
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.logger import Logger

import pruning_env  # noqa: F401  (registers the ids)

torch.set_num_threads(1)  # a tiny network trains fastest on one thread, above all on a busy CPU
# one instance (init=0: the same initialization every episode) at a target and K where plans earn unequal rewards
env = gymnasium.make("pruning_env/MlpDigits-v1", target_sparsity=0.95, reward_steps=50, init=0)
env = gymnasium.wrappers.RescaleAction(env, np.float32(-1), np.float32(1))  # SB3's Gaussian policy acts in [-1, 1]

# each episode is one step, i.e. one reward evaluation: short rollouts, several epochs over each
model = PPO("MlpPolicy", env, n_steps=32, batch_size=32, n_epochs=10, learning_rate=1e-3,
            policy_kwargs=dict(log_std_init=-1.0), seed=0, verbose=0)
model.set_logger(Logger(folder=None, output_formats=[]))  # no SB3-<date> log folder in the temp dir


def plan_reward():
    """The reward of the policy's deterministic plan (one plan on one instance always earns the same reward)."""
    observation, info = env.reset(seed=0)
    action, _ = model.predict(observation, deterministic=True)
    return env.step(action)[1]


before = plan_reward()  # the untrained policy asks about the same sparsity of every layer: about uniform
model.learn(128)  # 4 rollouts of 32 episodes
after = plan_reward()
print(f"deterministic plan's reward: {before:.3f} before learning, {after:.3f} after 128 episodes")
