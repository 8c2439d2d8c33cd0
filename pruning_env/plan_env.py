"""``PlanEnv``: what controllers, pools and wrappers use of an env, which ``PruningEnv`` (one task) and
``MultiTaskPruningEnv`` (a task drawn per episode) both satisfy.

The episode's own network lives on ``env.current``, the ``PruningEnv`` running the episode (a ``PruningEnv``'s is
itself): its ``layers``, ``instance``, ``last_result``, ``last_masks`` and ``pruned_model()``. ``env.envs`` are the
single-task envs an env draws its episodes from (``[env]`` for a ``PruningEnv``).

    def describe(env: PlanEnv) -> str:
        observations, infos = env.reset(seed=0)
        return f"{env.label}: {len(env.current.layers)} layers this episode"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import gymnasium
import numpy as np

from pruning_env.fidelity import Fidelity
from pruning_env.plan import EpisodeResult

if TYPE_CHECKING:
    from pruning_env.parallel import PruningEnv


class PlanEnv(Protocol):
    """A PettingZoo ParallelEnv of layer agents whose episodes are one plan each (see the module docstring)."""

    possible_agents: list[str]
    agents: list[str]
    feature_names: list[str]
    """The observation's columns ``F`` (the same on every agent)."""
    action_type: str
    """``"continuous"`` (a sparsity in [0, 1]) or ``"discrete"`` (one of ``action_bins`` sparsity bins)."""
    action_bins: int
    state_space: gymnasium.spaces.Box

    def observation_space(self, agent: str) -> gymnasium.spaces.Space: ...

    def action_space(self, agent: str) -> gymnasium.spaces.Space: ...

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]: ...

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]: ...

    def state(self) -> np.ndarray: ...

    def evaluate_plan(self, seed: int, plan: np.ndarray) -> EpisodeResult:
        """``reset(seed=seed)`` then one step in which layer i requests ``plan[i]``; the episode's result."""
        ...

    def evaluate_plans(
        self, episodes: Sequence[tuple[int, np.ndarray]], fidelity: Fidelity | Mapping[str, Any] | None = None
    ) -> list[EpisodeResult]:
        """``evaluate_plan`` of every ``(seed, plan)``, in input order (evaluated together where that pays), at
        ``fidelity`` (``pruning_env.fidelity``; None: the env's own)."""
        ...

    @property
    def current(self) -> PruningEnv:
        """The ``PruningEnv`` of the running (or last) episode."""
        ...

    @property
    def envs(self) -> list[PruningEnv]:
        """The single-task envs whose episodes this env runs."""
        ...

    @property
    def label(self) -> str:
        """What the env poses, for titles and logs: ``"mlp-digits, target 0.99, reward neg_loss K=100"``."""
        ...

    @property
    def reward_batch(self) -> int:
        """Episodes evaluated side by side in one batched training (1 on CPU)."""
        ...

    @property
    def draws_per_episode(self) -> bool:
        """The env draws a new task, initialization or target on every reset."""
        ...


EnvFactory = Callable[[], PlanEnv]
"""A zero-argument callable that builds a new env (picklable where worker processes build it, e.g.
``functools.partial(PruningEnv, "mlp-digits", reward_steps=20)``): what learners train on and pools build from."""
