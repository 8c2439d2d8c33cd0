"""The MAPPO controllers: ``"mappo"`` (encoder-only) and ``"mappo_ar"`` (autoregressive decoder)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.base import (
    Actions,
    EnvFactory,
    Observations,
    TrainingReport,
    register_controller,
    stacked,
    to_actions,
)
from agents.mappo.config import MappoConfig
from agents.mappo.policy import TokenPolicy
from agents.mappo.rollout import env_actions
from agents.mappo.train import run_training
from pruning_env.parallel import PruningEnv
from pruning_env.pools import EnvInfo, make_pool

CONTROLLER_FILE = "controller.pt"


@register_controller("mappo")
class MappoController:
    """Transformer MAPPO over layer tokens; one set of weights acts on any network with the same features.

    Args:
        env: a ``PruningEnv`` whose features and action type the policy will read and produce.
        config: the configuration (default ``MappoConfig()``); keyword ``fields`` override single fields,
            e.g. ``make_controller("mappo", env, workers=2)``.
        seed: seed of the weights' initialization.
    """

    kind = "learner"
    accepts_pool = False
    accepts_on_update = True
    budget_unit = "evaluations"

    def __init__(self, env: PruningEnv, config: MappoConfig | None = None, seed: int = 0, **fields: Any) -> None:
        info = EnvInfo.of(env)
        self._setup(replace(config or MappoConfig(), **fields), info.feature_names, info.action_bins, seed)

    def _setup(self, config: MappoConfig, feature_names: Sequence[str], action_bins: int | None, seed: int) -> None:
        self.config = config
        self.name = "mappo_ar" if config.autoregressive else "mappo"
        self.best_episode: tuple[np.ndarray, np.ndarray] | None = None
        """Observation ``(L, F)`` and plan ``(L,)`` of the best episode of the last training."""
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.policy = TokenPolicy(feature_names, config, action_bins)

    def act(self, observations: Observations, infos: dict[str, dict[str, float]]) -> Actions:
        """The policy's most likely action for every layer (the mean sparsity logit, or the most likely bin); with
        ``config.act_plan == "best"``, the best training episode's plan on that episode's observation."""
        if self.config.act_plan == "best" and self.best_episode is not None:
            observation, plan = self.best_episode
            if np.array_equal(stacked(observations), observation):
                return to_actions(plan)
        return self.mean_actions(observations, infos)

    def mean_actions(self, observations: Observations, infos: dict[str, dict[str, float]]) -> Actions:
        """The policy's most likely action for every layer, whatever ``config.act_plan``."""
        obs = torch.as_tensor(stacked(observations))
        if obs.shape[1] != len(self.policy.feature_names):
            raise ValueError(
                f"observations have {obs.shape[1]} features, the policy reads {len(self.policy.feature_names)}"
            )
        mask = torch.ones(1, obs.shape[0], dtype=torch.bool)
        actions, _, _ = self.policy.act(obs.unsqueeze(0), mask, deterministic=True)
        return env_actions(actions[0].numpy(), self.policy.discrete)

    def train(self, make_env: EnvFactory, episodes: int, seed: int,
              on_update: Callable[[int], None] | None = None) -> TrainingReport:
        """Train on envs from ``make_env`` (picklable when ``config.workers`` > 1); ``on_update(episodes spent)``
        at the start and after each update."""
        return self.train_on([make_env], episodes, seed, on_update)

    def train_on(self, factories: Sequence[EnvFactory], episodes: int, seed: int,
                 on_update: Callable[[int], None] | None = None) -> TrainingReport:
        """Train on episodes drawn uniformly across several env factories (tasks, targets, ...), evaluated on a
        pool of ``config.workers`` workers (processes, or Ray actors with ``config.ray_address``)."""
        if not factories:
            raise ValueError("factories must hold at least one env factory")
        with make_pool(factories, self.config.workers, self.config.ray_address) as pool:
            report, state = run_training(self.policy, pool, episodes, seed, self.config, on_update)
        if state.best_plan:
            self.best_episode = (np.array(state.best_observation, dtype=np.float32), np.array(state.best_plan))
        if self.config.out is not None:
            self.save(Path(self.config.out) / CONTROLLER_FILE)
        return report

    def save(self, path: str | Path) -> None:
        """Write the weights, feature names, action bins, config and best training episode to ``path`` (torch
        format)."""
        torch.save(
            {
                "config": asdict(self.config.numbers()),
                "feature_names": list(self.policy.feature_names),
                "action_bins": self.policy.action_bins,
                "policy": self.policy.state_dict(),
                "best_episode": None if self.best_episode is None else [a.tolist() for a in self.best_episode],
            },
            path,
        )

    @classmethod
    def load(cls, path: str | Path) -> MappoController:
        """A controller saved with ``save`` (ready for ``act``; ``config`` holds its saved numbers)."""
        saved = torch.load(path, weights_only=True)
        controller = cls.__new__(cls)
        controller._setup(MappoConfig(**saved["config"]), saved["feature_names"], saved["action_bins"], seed=0)
        controller.policy.load_state_dict(saved["policy"])
        if saved.get("best_episode") is not None:
            observation, plan = saved["best_episode"]
            controller.best_episode = (np.array(observation, dtype=np.float32), np.array(plan))
        return controller


register_controller("mappo_ar")(partial(MappoController, autoregressive=True))

