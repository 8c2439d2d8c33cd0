"""Stable-Baselines3 PPO with parameter sharing over the layer agents, through SuperSuit.

``supersuit.pettingzoo_env_to_vec_env_v1`` turns the ParallelEnv into a vector env with one slot per layer agent,
and ``concat_vec_envs_v1(..., base_class="stable_baselines3")`` concatenates ``num_vec_envs`` copies of it (in
``workers`` processes, started by ``pruning_env.integrations.vector.concat_copies``), so one MLP policy acts for every layer of every copy: parameter sharing. Each vector step
is one episode of every copy, i.e. ``num_vec_envs`` reward evaluations, and gives ``L x num_vec_envs`` samples that
all carry their copy's team reward. Episodes are one step long, so the advantage is ``reward - V(obs)`` whatever
``gamma`` and GAE's lambda are.

Actions. SB3's Gaussian policy starts with mean 0 and acts best in [-1, 1] (its documented advice), so the policy
acts in ``Box(-1, 1, (1,))`` and the env receives ``sparsity = (a + 1) / 2``. The initial deterministic plan asks
nearly the same sparsity of every layer, which the env's budget projection turns into about the uniform allocation.
SuperSuit hands rewards over as float32 (resolution ~2e-7 at |r| ~ 2, finer than neg_loss differences between plans).

Seeding (the ``PPO(seed=...)`` trap: SuperSuit's vec env has no ``seed``, so SB3 raises AttributeError). The env
from ``make_env`` is reset once with ``seed`` before vectorizing; every copy is a clone, so every copy draws the
same instances (with ``init="fixed"``: the instance of ``seed``, the per-instance search protocol). The vector env
SB3 sees answers ``seed()`` without reseeding its copies, and the policy's RNGs are seeded by PPO itself. With
``init="per_episode"`` the clones replay the same instance sequence: use ``num_vec_envs=1`` there.

Budget: ``train`` spends a whole number of rollouts of ``n_steps x num_vec_envs`` episodes, at most the episodes
asked for (a ValueError if that is less than one rollout).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import gymnasium
import numpy as np

from agents.base import (
    Actions,
    EnvFactory,
    Observations,
    TrainingReport,
    register_controller,
    stacked,
    to_actions,
)
from pruning_env.parallel import PruningEnv

if TYPE_CHECKING:  # SB3 and SuperSuit are imported when a model is built, not with ``import agents``
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecEnv

POLICY_ACTION_SPACE = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)


def sparsity_from_action(actions: np.ndarray) -> np.ndarray:
    """Policy actions in [-1, 1] -> requested sparsities ``(a + 1) / 2`` in [0, 1] (same shape)."""
    return np.clip((np.asarray(actions, dtype=np.float32) + 1.0) / 2.0, 0.0, 1.0)


@dataclass(frozen=True)
class PPOConfig:
    """PPO's settings for one-step episodes (defaults sized for mlp-digits' six layers)."""

    n_steps: int = 8
    """Vector steps per rollout; each is one episode of every env copy."""
    minibatches: int = 4
    """Minibatches per epoch; batch size = n_steps x L x num_vec_envs / minibatches."""
    n_epochs: int = 10
    """Passes over each rollout."""
    learning_rate: float = 3e-4
    """Adam step size of the policy and value networks."""
    ent_coef: float = 0.0
    """Entropy bonus."""
    clip_range: float = 0.2
    """PPO's ratio clipping."""
    log_std_init: float = -0.5
    """Initial log standard deviation of the Gaussian policy (in the [-1, 1] action scale)."""
    net_arch: tuple[int, ...] = (64, 64)
    """Hidden layers of the policy and the value network (separate networks)."""
    device: str = "cpu"
    """Torch device of the policy (the MLP is tiny: CPU is faster than a GPU round trip)."""


def make_vec_env(make_env: EnvFactory, num_vec_envs: int = 1, workers: int = 1, seed: int = 0) -> VecEnv:
    """The SB3 vector env: one slot per layer agent of each of ``num_vec_envs`` copies, in ``workers`` processes.

    Raises:
        ValueError: if the env's actions are not continuous, or ``num_vec_envs`` / ``workers`` < 1.
    """
    if num_vec_envs < 1 or workers < 1:
        raise ValueError(f"num_vec_envs and workers must be >= 1, got {num_vec_envs} and {workers}")
    env = make_env()
    if env.action_type != "continuous":
        raise ValueError(f"sb3_ppo needs action_type='continuous', got {env.action_type!r}")
    from agents.sb3_wrappers import SparsityActions
    from pruning_env.integrations.vector import concat_copies

    env.reset(seed=seed)
    venv = concat_copies(env, num_vec_envs, workers, base_class="stable_baselines3")
    return SparsityActions(venv, POLICY_ACTION_SPACE, sparsity_from_action)


def build_ppo(make_env: EnvFactory, config: PPOConfig, num_vec_envs: int, workers: int, seed: int) -> PPO:
    """The untrained PPO model on a new vector env of ``make_env`` (see ``make_vec_env``): the starting point of
    ``train_sb3_ppo`` for the same arguments. Close ``model.get_env()`` when done."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import Logger

    vec_env = make_vec_env(make_env, num_vec_envs, workers, seed)
    samples = config.n_steps * vec_env.num_envs
    model = PPO(
        "MlpPolicy",
        vec_env,
        n_steps=config.n_steps,
        batch_size=max(samples // config.minibatches, 2),
        n_epochs=config.n_epochs,
        learning_rate=config.learning_rate,
        ent_coef=config.ent_coef,
        clip_range=config.clip_range,
        policy_kwargs={"log_std_init": config.log_std_init, "net_arch": list(config.net_arch)},
        device=config.device,
        seed=seed,
    )
    # A logger of our own: SB3's default writes an SB3-<date> folder under $TMPDIR on every learn().
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def train_sb3_ppo(
    make_env: EnvFactory,
    total_episodes: int,
    *,
    config: PPOConfig = PPOConfig(),
    num_vec_envs: int = 1,
    workers: int = 1,
    seed: int = 0,
    verbose: int = 0,
    on_update: Callable[[int, PPO], None] | None = None,
) -> tuple[PPO, TrainingReport]:
    """Train a shared MLP policy with PPO for at most ``total_episodes`` reward evaluations.

    Args:
        make_env: builds the ParallelEnv (cloned ``num_vec_envs`` times; see the module docstring on seeding).
        total_episodes: reward evaluation budget; whole rollouts of ``n_steps x num_vec_envs`` episodes are spent.
        config: PPO's settings.
        num_vec_envs: env copies stepped together.
        workers: processes the copies run in (1: in this process).
        seed: the env's reset seed and PPO's seed.
        verbose: 1 prints SB3's training table to stdout; nothing is written to disk either way.
        on_update: called with the episodes spent and the model at the start and after each policy update.

    Returns:
        The trained model and the report (episodes spent, wall time, best reward, one history row per rollout).
    """
    per_rollout = config.n_steps * num_vec_envs
    rollouts = total_episodes // per_rollout
    if rollouts < 1:
        raise ValueError(f"total_episodes must be >= n_steps x num_vec_envs = {per_rollout}, got {total_episodes}")
    from stable_baselines3.common.logger import HumanOutputFormat, Logger

    from agents.sb3_wrappers import History

    model = build_ppo(make_env, config, num_vec_envs, workers, seed)
    vec_env = model.get_env()
    if verbose:
        model.set_logger(Logger(folder=None, output_formats=[HumanOutputFormat("stdout")]))
    history = History(vec_env.num_envs // num_vec_envs, on_update)
    start = time.perf_counter()
    try:
        model.learn(total_timesteps=rollouts * config.n_steps * vec_env.num_envs, callback=history)
    finally:
        vec_env.close()
    report = TrainingReport(history.episodes, time.perf_counter() - start, history.best_reward, history.rows)
    return model, report


@register_controller("sb3_ppo")
class SB3PPOController:
    """A PPO policy shared by all layers: each layer's request is the policy's deterministic action on its row.

    Args:
        env: the env it will act in (for the registry's signature; ``train`` builds its own from ``make_env``).
        model: a trained PPO model (e.g. from ``train_sb3_ppo`` or ``load``); None until ``train``.
        config, num_vec_envs, workers: as ``train_sb3_ppo``.
    """

    name = "sb3_ppo"
    kind = "learner"
    accepts_pool = False
    accepts_on_update = True
    budget_unit = "evaluations"

    def __init__(
        self,
        env: PruningEnv | None = None,
        model: PPO | None = None,
        config: PPOConfig = PPOConfig(),
        num_vec_envs: int = 1,
        workers: int = 1,
        seed: int = 0,
    ) -> None:
        del seed  # PPO is seeded by train(seed=...)
        self.model = model
        self.config = config
        self.num_vec_envs = num_vec_envs
        self.workers = workers

    def train(self, make_env: EnvFactory, episodes: int, seed: int,
              on_update: Callable[[int], None] | None = None) -> TrainingReport:
        """PPO on envs from ``make_env`` for at most ``episodes`` reward evaluations (see ``train_sb3_ppo``);
        ``on_update(episodes spent)`` is called at the start and after each update; ``act`` inside it acts with
        the policy of that moment."""

        def updated(spent: int, model: PPO) -> None:
            self.model = model
            if on_update is not None:
                on_update(spent)

        self.model, report = train_sb3_ppo(
            make_env, episodes, config=self.config, num_vec_envs=self.num_vec_envs, workers=self.workers, seed=seed,
            on_update=updated,
        )
        return report

    def act(self, observations: Observations, infos: dict[str, dict[str, float]]) -> Actions:
        if self.model is None:
            raise ValueError("SB3PPOController.act() needs a model: call train() or load() first")
        actions, _ = self.model.predict(stacked(observations), deterministic=True)
        return to_actions(sparsity_from_action(actions)[:, 0])

    def save(self, path: str | Path) -> None:
        """Write the model to ``path`` (SB3's zip format; ``.zip`` is appended when missing)."""
        if self.model is None:
            raise ValueError("nothing to save: call train() first")
        self.model.save(path)

    @classmethod
    def load(cls, path: str | Path, env: PruningEnv | None = None, device: str = "cpu") -> SB3PPOController:
        """A controller acting with the model saved at ``path``."""
        from stable_baselines3 import PPO

        return cls(env, model=PPO.load(path, device=device))
