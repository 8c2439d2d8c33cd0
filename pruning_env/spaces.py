"""What the parallel envs share: one observation and one action space for every agent, and seeded generators."""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium.utils import seeding


def seeded_generator(seed: int | None) -> np.random.Generator:
    """``gymnasium.utils.seeding.np_random(seed)``; ValueError unless the seed is None or in [0, 2**63)."""
    if seed is not None and not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed}")
    return seeding.np_random(seed)[0]


def stack_observations(observations: dict[str, np.ndarray]) -> np.ndarray:
    """Per-agent observations ``layer_0 … layer_{L-1}`` stacked into ``(L, F)`` in layer order."""
    return np.stack([observations[f"layer_{i}"] for i in range(len(observations))])


class SharedAgentSpaces:
    """PettingZoo's space methods for envs whose agents ``possible_agents`` all share ``_observation_space`` and
    ``_action_space``: any other agent name is a ValueError."""

    possible_agents: list[str]
    _observation_space: gymnasium.spaces.Box
    _action_space: gymnasium.spaces.Space

    def observation_space(self, agent: str) -> gymnasium.spaces.Box:
        self._check_agent(agent)
        return self._observation_space

    def action_space(self, agent: str) -> gymnasium.spaces.Space:
        self._check_agent(agent)
        return self._action_space

    def _check_agent(self, agent: str) -> None:
        if agent not in self.possible_agents:
            raise ValueError(f"unknown agent {agent!r}; agents are layer_0 … layer_{len(self.possible_agents) - 1}")
