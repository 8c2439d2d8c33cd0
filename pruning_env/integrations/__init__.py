"""Adapters to other RL libraries; each module imports its library, so import only the one you use.

- ``pruning_env.integrations.torchrl``: TorchRL's ``PettingZooWrapper`` over ``PruningEnv`` (one group
  ``"layer"``), shared-parameter MAPPO actor and critic modules and a ``ClipPPOLoss`` wired to the group's keys.
- ``pruning_env.integrations.rllib``: an RLlib ``MultiAgentEnv`` and the shared-policy mapping for PPO.
- ``pruning_env.integrations.vector``: SuperSuit multi-process and Gymnasium ``AsyncVectorEnv`` vectorization.

The pool of Ray actors for our own controllers is ``pruning_env.pools.ray.RayPool`` (a random search over it from the
command line: ``python -m agents.random_search_ray``).
"""
