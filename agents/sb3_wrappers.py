"""The Stable-Baselines3 subclasses behind ``agents.sb3_ppo``: the vector env wrapper PPO acts through and the
callback that records its history. Importing this module imports SB3 (and torch's optimizers, pandas, ...), so
``agents.sb3_ppo`` imports it only when it builds a model, not with ``import agents``.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium
import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn


class SparsityActions(VecEnvWrapper):
    """Maps the policy's actions (in ``action_space``) to sparsities with ``to_sparsity`` and gives SuperSuit's vec
    env the ``seed`` SB3 calls."""

    def __init__(self, venv: VecEnv, action_space: gymnasium.spaces.Box,
                 to_sparsity: Callable[[np.ndarray], np.ndarray]) -> None:
        super().__init__(venv, action_space=action_space)
        self.to_sparsity = to_sparsity

    def reset(self) -> np.ndarray:
        return self.venv.reset()

    def step_async(self, actions: np.ndarray) -> None:
        self.venv.step_async(self.to_sparsity(actions))

    def step_wait(self) -> VecEnvStepReturn:
        return self.venv.step_wait()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list:
        if attr_name == "render_mode":  # SuperSuit's vec env answers only as an attribute
            return [self.venv.render_mode] * self.num_envs
        return self.venv.get_attr(attr_name, indices)

    def seed(self, seed: int | None = None) -> list[None]:
        """No reseeding: the copies are clones of an env already reset with the training seed."""
        return [None] * self.num_envs


class History(BaseCallback):
    """Counts episodes, tracks the best team reward and logs each rollout's mean reward; calls
    ``on_update(episodes spent, model)`` at the start and after each policy update (when the next rollout starts,
    and at the end)."""

    def __init__(self, num_layers: int, on_update: Callable[[int, PPO], None] | None = None) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.on_update = on_update
        self.episodes = 0
        self.best_reward = -np.inf
        self.rows: list[dict[str, float]] = []

    def _on_step(self) -> bool:
        rewards = self.locals["rewards"]  # (L x num_vec_envs,): each copy's team reward, once per layer slot
        self.episodes += len(rewards) // self.num_layers
        self.best_reward = max(self.best_reward, float(np.max(rewards)))
        return True

    def _on_rollout_end(self) -> None:
        rewards = self.model.rollout_buffer.rewards
        self.rows.append(
            {"episodes": float(self.episodes), "reward_mean": float(rewards.mean()), "best_reward": self.best_reward}
        )

    def _on_training_start(self) -> None:
        if self.on_update is not None:
            self.on_update(self.episodes, self.model)

    def _on_rollout_start(self) -> None:  # SB3 updates the policy between one rollout's end and the next's start
        if self.on_update is not None and self.episodes > 0:
            self.on_update(self.episodes, self.model)

    def _on_training_end(self) -> None:
        if self.on_update is not None:
            self.on_update(self.episodes, self.model)
