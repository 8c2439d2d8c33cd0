"""The task registry: the built-in tasks and every architecture-family member, looked up by name or id, and
registered with Gymnasium (controller env) and PettingZoo's registries (parallel and AEC).

| lookup                                | finds                                                     |
|---------------------------------------|-----------------------------------------------------------|
| ``"mlp-digits"``, ``"MlpDigits-v1"``, ``"pruning_env/MlpDigits-v1"`` | a built-in task (``pruning_env.tasks.TASKS``) |
| ``"mlp-digits-trained"``, ``"MlpDigitsTrained-v1"``                 | a built-in task pruned after training          |
| ``"digits/mlp-512-64-256"``, ``"pruning_env/DigitsFamily9-v1"``    | a family member (``pruning_env.families``)     |

After ``import pruning_env`` every id works with ``gymnasium.make("pruning_env/<Id>")``,
``pettingzoo.make("parallel", "pruning_env/<Id>")`` and ``pettingzoo.make("aec", "pruning_env/<Id>")``.
"""

from __future__ import annotations

import functools

import gymnasium
import pettingzoo

from pruning_env.families import FAMILIES, family_tasks, member_id
from pruning_env.tasks import TASKS, Task

NAMESPACE = "pruning_env"


@functools.cache
def all_tasks() -> tuple[Task, ...]:
    """The built-in tasks, then every member of every family in index order."""
    return (*TASKS.values(), *(task for family in FAMILIES.values() for task in family_tasks(family)))


def get_task(name: str) -> Task:
    """A task by name (``"mlp-digits"``, ``"digits/cnn-32-64-h128"``) or id (``"MlpDigits-v1"``, with or
    without the ``pruning_env/`` namespace).

    Raises:
        ValueError: for an unknown name; the message lists the built-in tasks and the families.
    """
    key = name.removeprefix(f"{NAMESPACE}/")
    # the built-in tasks first (they come first in ``all_tasks``): found without drawing the families' members,
    # which costs seconds in every process that looks up a built-in task
    for task in TASKS.values():
        if key in (task.name, task.env_id):
            return task
    for task in all_tasks():
        if key in (task.name, task.env_id):
            return task
    raise ValueError(
        f"unknown task {name!r}; built-in tasks: {', '.join(TASKS)}; family members are named "
        f"'<family>/<arch name>' for the families {', '.join(FAMILIES)} (pruning_env.families.family_tasks)"
    )


def task_ids() -> dict[str, str]:
    """Every registered id without namespace -> the ``task`` argument its envs get: the built-in tasks' names,
    then the family members' ids (known without drawing the members, which ``get_task`` does on first use)."""
    members = [member_id(family, index) for family in FAMILIES.values() for index in range(family.size)]
    return {**{task.env_id: task.name for task in TASKS.values()}, **{member: member for member in members}}


def register_envs() -> None:
    """Register every task under ``pruning_env/<TaskId>``; calling it again is a no-op."""
    for task_id, task in task_ids().items():
        env_id = f"{NAMESPACE}/{task_id}"
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point="pruning_env.gym_env:PruningControllerEnv", kwargs={"task": task})
        if env_id not in pettingzoo.parallel_registry:
            pettingzoo.register("parallel", env_id, entry_point="pruning_env:parallel_env", kwargs={"task": task})
            pettingzoo.register("aec", env_id, entry_point="pruning_env:env", kwargs={"task": task})
