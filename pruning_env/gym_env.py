"""PruningControllerEnv: the pruning task for one centralized controller, as a Gymnasium env.

## Description
The same one-shot task as ``PruningEnv`` (see its documentation), seen by a single agent that sets every layer's
sparsity at once. Registered for every task as ``gymnasium.make("pruning_env/<TaskId>")``, e.g.
``gymnasium.make("pruning_env/MlpDigits-v1")``.

## Action Space
``Box(0, 1, (L,), float32)``: the requested sparsity of each layer in forward order.

## Observation Space
``Box(-10, 10, (L, F), float32)``: row i holds layer i's meta-features (``env.unwrapped.feature_names``).

## Rewards, Episode End, Arguments
As ``PruningEnv`` (keyword arguments are passed through; ``action_type`` is always continuous). Every episode
terminates after its single step.

## Info
``requested_sparsity``, ``applied_sparsity`` and ``clipped`` as arrays of shape (L,); the shared keys of
``PruningEnv`` (``global_sparsity``, ``effective_sparsity``, ``flops_reduction``, ``target_sparsity``,
``accuracy``, ...) as floats. Zeros at reset. One seed and one action give equal infos (Gymnasium's determinism
check): the wall times are in ``env.unwrapped.last_result`` (``seconds`` of the reward, ``reset_seconds``,
``step_seconds``), not in info.

## Version History
- v1: the default reward is ``neg_loss`` (was ``accuracy``). Later: the ``effective_sparsity`` info; an unknown
  keyword argument is a ValueError naming the closest valid ones; no ``accuracy`` and ``loss`` infos (were NaN) under
  the zero-cost reward.
- v0: initial release.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from pruning_env.parallel import PruningEnv
from pruning_env.plan import EpisodeResult

PER_LAYER_INFO_KEYS: tuple[str, ...] = ("requested_sparsity", "applied_sparsity", "clipped")


class PruningControllerEnv(gymnasium.Env):
    """See the module docstring."""

    metadata = {"render_modes": ["ansi", "human"]}

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("action_type", "continuous") != "continuous":
            raise ValueError("PruningControllerEnv has a continuous action Box(0, 1, (L,)); drop action_type")
        self.parallel_env = PruningEnv(**kwargs)
        self.render_mode = self.parallel_env.render_mode
        num_layers, num_features = len(self.parallel_env.layers), len(self.parallel_env.feature_names)
        self.observation_space = gymnasium.spaces.Box(-10.0, 10.0, (num_layers, num_features), np.float32)
        self.action_space = gymnasium.spaces.Box(0.0, 1.0, (num_layers,), np.float32)

    @property
    def layers(self) -> list:
        """The prunable layers, one per action entry."""
        return self.parallel_env.layers

    @property
    def feature_names(self) -> list[str]:
        """Names of the observation's columns."""
        return self.parallel_env.feature_names

    @property
    def last_result(self) -> EpisodeResult | None:
        """After a step: the evaluated plan, with its wall times (``PruningEnv.last_result``); None after reset."""
        return self.parallel_env.last_result

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        observations, infos = self.parallel_env.reset(seed=seed, options=options)
        return self._stack(observations), self._merge(infos)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape} (one sparsity per layer), got {action.shape}")
        agents = self.parallel_env.possible_agents
        observations, rewards, _, _, infos = self.parallel_env.step({agent: action[i : i + 1] for i, agent in enumerate(agents)})
        return self._stack(observations), float(rewards[agents[0]]), True, False, self._merge(infos)

    def _stack(self, observations: dict[str, np.ndarray]) -> np.ndarray:
        return np.stack([observations[agent] for agent in self.parallel_env.possible_agents])

    def _merge(self, infos: dict[str, dict[str, float]]) -> dict[str, Any]:
        agents = self.parallel_env.possible_agents
        merged: dict[str, Any] = {
            key: value for key, value in infos[agents[0]].items() if key not in PER_LAYER_INFO_KEYS
        }
        for key in PER_LAYER_INFO_KEYS:
            merged[key] = np.array([infos[agent][key] for agent in agents])
        return merged

    def render(self) -> str | None:
        return self.parallel_env.render()
