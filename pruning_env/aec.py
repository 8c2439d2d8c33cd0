"""The AEC form of ``PruningEnv``: agents act in turn, and each action is checked when it is given."""

from __future__ import annotations

from typing import Any

from pettingzoo.utils.conversions import parallel_to_aec_wrapper
from pettingzoo.utils.wrappers import OrderEnforcingWrapper

from pruning_env.parallel import PruningEnv


class CheckedParallelToAEC(parallel_to_aec_wrapper):
    """PettingZoo's ``parallel_to_aec`` wrapper that validates each agent's action at its turn (with the parallel
    env's own messages), not only when the last agent has acted; a terminated agent's action must be None."""

    def step(self, action: Any) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            if action is not None:
                raise ValueError(f"{agent} is terminated: step it with action None (got {action!r}), then reset()")
        else:
            self.env.parse_action(agent, action)  # ValueError naming the agent and the allowed range
        super().step(action)


def aec_env(env: PruningEnv) -> OrderEnforcingWrapper:
    """``env`` as an order-enforced AEC env whose actions are checked as they are given."""
    return OrderEnforcingWrapper(CheckedParallelToAEC(env))
