"""Registration of every task with Gymnasium (controller env) and PettingZoo's registries (parallel and AEC).

After ``import pruning_env``: ``gymnasium.make("pruning_env/MlpDigits-v0")``,
``pettingzoo.make("parallel", "pruning_env/MlpDigits-v0")`` and ``pettingzoo.make("aec", "pruning_env/MlpDigits-v0")``.
"""

from __future__ import annotations

import gymnasium
import pettingzoo

from pruning_env.tasks import TASKS

NAMESPACE = "pruning_env"


def register_envs() -> None:
    """Register every task under ``pruning_env/<TaskId>``; calling it again is a no-op."""
    for task in TASKS.values():
        env_id = f"{NAMESPACE}/{task.env_id}"
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id, entry_point="pruning_env.gym_env:PruningControllerEnv", kwargs={"task": task.name}
            )
        if env_id not in pettingzoo.parallel_registry:
            pettingzoo.register("parallel", env_id, entry_point="pruning_env:parallel_env", kwargs={"task": task.name})
            pettingzoo.register("aec", env_id, entry_point="pruning_env:env", kwargs={"task": task.name})
