"""RLlib over PruningEnv: a ``MultiAgentEnv`` built from an env config, and a shared policy for every layer.

    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    from pruning_env.integrations.rllib import register, with_shared_policy

    ray.init()
    config = PPOConfig().environment(register(), env_config={"reward": "neg_loss", "reward_steps": 20})
    algo = with_shared_policy(config.env_runners(num_env_runners=2)).build_algo()
    print(algo.train()["env_runners"]["episode_return_mean"])  # the team reward summed over the layer agents

Every episode is one step; ``episode_return_mean`` is L x the team reward because RLlib sums agents' rewards.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
from ray.tune.registry import register_env

from pruning_env.parallel import PruningEnv

ENV_NAME = "pruning_env"
SHARED_POLICY = "shared"


class RLlibPruningEnv(ParallelPettingZooEnv):
    """``PruningEnv(**config)`` as an RLlib ``MultiAgentEnv``.

    Two fixes over ``ParallelPettingZooEnv``: the agents are listed in layer order (it takes them from a set),
    and ``render()`` calls PettingZoo's ``render()`` without the argument it does not take.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(PruningEnv(**dict(config or {})))
        self.agents = list(self.par_env.possible_agents)
        self.possible_agents = list(self.par_env.possible_agents)

    def render(self) -> str | None:
        return self.par_env.render()


def register(name: str = ENV_NAME) -> str:
    """Register ``RLlibPruningEnv`` with ``ray.tune.registry.register_env`` under ``name``; returns the name."""
    register_env(name, RLlibPruningEnv)
    return name


def shared_policy(agent_id: str, episode: Any, **kwargs: Any) -> str:
    """Policy mapping: every layer agent acts with the one shared policy (parameter sharing)."""
    return SHARED_POLICY


def with_shared_policy(config: AlgorithmConfig) -> AlgorithmConfig:
    """``config`` with one policy (RLModule) shared by every layer agent."""
    return config.multi_agent(policies={SHARED_POLICY}, policy_mapping_fn=shared_policy)
