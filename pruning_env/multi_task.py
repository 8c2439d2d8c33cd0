"""MultiTaskPruningEnv: PruningEnv episodes drawn from several tasks, as one PettingZoo ParallelEnv.

## Description
A controller that must generalize across architectures trains on several networks at once. This env holds one
``PruningEnv`` per task (the sub-envs) and, on every reset, draws one of them uniformly and runs its episode: the
observations, actions, rewards and episode end are the drawn sub-env's (see ``help(pruning_env.PruningEnv)``).

## Agents
``possible_agents`` = ``layer_0 … layer_{Lmax-1}``, Lmax = the most prunable layers of any sub-env. An episode's
``agents`` are the drawn sub-env's own, ``layer_0 … layer_{L-1}`` (a prefix of ``possible_agents``).

## Spaces
Every sub-env must have the same ``feature_names``, ``action_type`` and ``action_bins``, so all agents share one
observation space ``Box(-10, 10, (F,), float32)`` and one action space. ``state()`` is the running sub-env's
observation matrix ``(L, F)`` zero-padded to ``(Lmax, F)`` and flattened to ``(Lmax * F,)`` (``state_space``).

## The running episode
``env.current`` is the drawn sub-env: the episode's ``layers``, ``instance``, ``last_result``, ``last_masks`` and
``pruned_model()`` are read there (``pruning_env.plan_env.PlanEnv``, the protocol both envs satisfy).

## Infos
The sub-env's infos, plus ``task_index`` (float, the index in ``envs`` of the running sub-env) for every agent.

## Seeding
``reset(seed=s)`` restarts the env's generator at s (``gymnasium.utils.seeding.np_random``); every reset draws the
task index, then a sub-reset seed in [0, 2**31 - 1), from the generator and resets the drawn sub-env with that seed.
``reset()`` without a seed continues the generator; the constructor's ``seed`` serves the first reset when none is
given. Same seed, same task sequence, observations and rewards. The sub-reset seed differs from episode to
episode, so a sub-env with ``init="fixed"`` gets a new initialization θ0 on every reset; pass ``init=s`` (an int)
for one θ0 per task.

## Arguments
| argument    | default  | meaning                                                                              |
|-------------|----------|--------------------------------------------------------------------------------------|
| tasks       | required | task names, ``Task`` objects, or ready ``PruningEnv`` instances (used as they are)   |
| seed        | None     | seed of the first reset when ``reset`` is called without one                         |
| render_mode | None     | None, "ansi" (returns the table) or "human" (prints it)                              |
| **options   |          | ``PruningEnv`` keyword arguments for the sub-envs built from names and ``Task``s      |
|             |          | (target_sparsity, init, reward, reward_steps, action_type, device, ...)              |

## Example
```python
env = MultiTaskPruningEnv(("mlp-digits", "cnn-digits"), reward="neg_loss", seed=0)
observations, infos = env.reset()
actions = {agent: env.action_space(agent).sample() for agent in env.agents}
observations, rewards, terminations, truncations, infos = env.step(actions)
```

## Version History
- v1: the running episode's ``layers``, ``instance``, ``last_result``, ``last_masks`` and ``pruned_model()`` are
  read on ``env.current`` (no longer forwarded by hand); ``label``.
- v0: initial release.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from pruning_env.features import FEATURE_CLIP
from pruning_env.fidelity import Fidelity
from pruning_env.parallel import PruningEnv, setting_label
from pruning_env.plan import EpisodeResult, clip_requests
from pruning_env.spaces import SharedAgentSpaces, seeded_generator
from pruning_env.tasks import Task


class MultiTaskPruningEnv(SharedAgentSpaces, ParallelEnv):
    """See the module docstring for the full documentation."""

    metadata = {"name": "pruning_env_multi_task_v1", "render_modes": ["ansi", "human"], "is_parallelizable": True}

    def __init__(
        self,
        tasks: Sequence[str | Task | PruningEnv],
        *,
        seed: int | None = None,
        render_mode: str | None = None,
        **options: Any,
    ) -> None:
        if isinstance(tasks, str) or not tasks:
            raise ValueError(f"tasks must be a non-empty sequence of task names, Tasks or PruningEnvs, got {tasks!r}")
        for index, task in enumerate(tasks):
            if not isinstance(task, str | Task | PruningEnv):
                raise ValueError(f"tasks[{index}] must be a task name, a Task or a PruningEnv, got {type(task).__name__}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.envs: list[PruningEnv] = [
            task if isinstance(task, PruningEnv) else PruningEnv(task, render_mode=None, **options) for task in tasks
        ]
        first = self.envs[0]
        for index, env in enumerate(self.envs[1:], start=1):
            for name in ("feature_names", "action_type", "action_bins"):
                if getattr(env, name) != getattr(first, name):
                    raise ValueError(
                        f"tasks[{index}] has {name} {getattr(env, name)!r}, tasks[0] has {getattr(first, name)!r}: "
                        "every sub-env needs the same features and actions"
                    )
        self.feature_names: list[str] = first.feature_names
        self.action_type = first.action_type
        self.action_bins = first.action_bins
        self.render_mode = render_mode
        self._observation_space = first.observation_space("layer_0")
        self._action_space = first.action_space("layer_0")
        self.possible_agents = [f"layer_{i}" for i in range(max(len(env.possible_agents) for env in self.envs))]
        self.state_space = gymnasium.spaces.Box(
            -FEATURE_CLIP, FEATURE_CLIP, (len(self.possible_agents) * len(self.feature_names),), np.float32
        )
        self.agents: list[str] = []
        self._seed = seed
        self._np_random: np.random.Generator | None = None
        self._task_index: int | None = None
        self._sub_seed = 0

    # --- episode ----------------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None or self._np_random is None:
            self._np_random = seeded_generator(self._seed if seed is None else seed)
        self._task_index = int(self._np_random.integers(len(self.envs)))
        self._sub_seed = int(self._np_random.integers(2**31 - 1))
        observations, infos = self.current.reset(seed=self._sub_seed, options=options)
        self.agents = list(self.current.agents)
        return observations, self._with_task_index(infos)

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if self._task_index is None or not self.agents:
            raise ValueError("step() needs a running episode: call reset() first (every episode is one step)")
        outside = sorted(set(actions) - set(self.agents)) if isinstance(actions, Mapping) else []
        if outside:
            raise ValueError(
                f"actions for agents {outside} outside this episode: task {self._task_index} "
                f"({self.current.task.name}) has agents layer_0 … layer_{len(self.agents) - 1}"
            )
        observations, rewards, terminations, truncations, infos = self.current.step(actions)
        self.agents = list(self.current.agents)
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, self._with_task_index(infos)

    def evaluate_plan(self, seed: int, plan: np.ndarray) -> EpisodeResult:
        """``reset(seed=seed)`` (which draws the task), then the drawn sub-env evaluates ``plan`` ``(L,)`` on its
        episode: see ``PruningEnv.evaluate_plan``."""
        return self.evaluate_plans([(seed, plan)])[0]

    def evaluate_plans(
        self, episodes: Sequence[tuple[int, np.ndarray]], fidelity: Fidelity | Mapping[str, Any] | None = None
    ) -> list[EpisodeResult]:
        """``evaluate_plan`` of every ``(seed, plan)``, in input order; the episodes that draw one sub-env are
        evaluated together by it (``PruningEnv.evaluate_plans``, at ``fidelity``). The env then holds the last
        episode's task."""
        if len(episodes) == 0:
            raise ValueError("evaluate_plans needs at least one (seed, plan) episode, got none")
        drawn: dict[int, list[tuple[int, int, int, np.ndarray]]] = {}  # task -> (index, seed, sub-seed, plan)
        for index, (seed, plan) in enumerate(episodes):
            self.reset(seed=seed)
            try:
                clip_requests(plan, self.current.possible_agents)
            except ValueError as error:
                raise ValueError(f"episode {index} (seed {seed}, task {self.task_index}): {error}") from None
            drawn.setdefault(self.task_index, []).append((index, seed, self._sub_seed, plan))
        last_task, last_sub_seed = self._task_index, self._sub_seed
        self.agents = []
        results: list[EpisodeResult | None] = [None] * len(episodes)
        for task in sorted(drawn, key=lambda task: task == last_task):  # the last episode's sub-env goes last
            items = drawn[task]
            evaluated = self.envs[task].evaluate_plans([(sub_seed, plan) for _, _, sub_seed, plan in items], fidelity)
            for (index, seed, _, _), result in zip(items, evaluated, strict=True):
                results[index] = replace(result, seed=seed)
        self._task_index, self._sub_seed = last_task, last_sub_seed
        return results  # type: ignore[return-value]

    def _with_task_index(self, infos: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        return {agent: {**info, "task_index": float(self.task_index)} for agent, info in infos.items()}

    # --- the running sub-env ----------------------------------------------------------------------------------
    @property
    def current(self) -> PruningEnv:
        """The sub-env of the running (or last) episode: its ``layers``, ``instance``, ``last_result``,
        ``last_masks`` and ``pruned_model()`` are the episode's."""
        return self.envs[self.task_index]

    @property
    def task_index(self) -> int:
        """Index in ``envs`` of the running (or last) episode's sub-env."""
        if self._task_index is None:
            raise ValueError("the env has no episode: call reset() first")
        return self._task_index

    @property
    def label(self) -> str:
        """``"2 tasks, target 0.95-0.99, reward neg_loss K=100"`` (the first sub-env's target and reward)."""
        return f"{len(self.envs)} tasks, {setting_label(self.envs[0].config)}"

    @property
    def reward_batch(self) -> int:
        """The smallest ``reward_batch`` of the sub-envs."""
        return min(env.reward_batch for env in self.envs)

    @property
    def draws_per_episode(self) -> bool:
        """The env draws a new task, initialization or target on every reset (see Seeding in the module doc)."""
        return len(self.envs) > 1 or any(env.draws_per_episode or not isinstance(env.config.init, int) for env in self.envs)

    # --- the rest of the API ----------------------------------------------------------------------------------
    def state(self) -> np.ndarray:
        sub_state = self.current.state()
        padded = np.zeros(self.state_space.shape, dtype=np.float32)
        padded[: sub_state.size] = sub_state  # the sub-env's (L, F) rows first, then zero rows up to Lmax
        return padded

    def render(self) -> str | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'human'")
            return None
        text = f"task {self.task_index}: {self.current.task.name}\n{self.current.table()}"
        if self.render_mode == "human":
            print(text)
            return None
        return text
