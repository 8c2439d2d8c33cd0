"""Random search over per-layer sparsity plans: the equal-budget baseline for learned controllers.

Plans are drawn around a reference allocation in logit space: for layer l with reference sparsity c_l (ERK,
uniform or a proxy's global allocation, read from the observation; see ``agents.heuristics``),

    s_l = sigmoid(logit(c_l) + scale * z_l),    z_l ~ N(0, 1) independent,

with c_l clipped to [CENTER_EPS, 1 - CENTER_EPS] so dense or empty reference layers can still move. ``scale`` = 0
gives the reference itself; ``scale`` ≈ 1 changes a layer's density by up to a factor of about e either way. Each
plan costs one env step (one reward evaluation) on the instance of one fixed reset seed, so all plans are judged on
the same network, target and reward minibatches; the best plan is kept and ``act`` returns it. In benchmarks the
number of plans equals the RL controller's episode budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy.special import expit, logit
from tqdm.auto import tqdm

from agents.base import (
    Actions,
    EnvFactory,
    Observations,
    TrainingReport,
    register_controller,
    stacked,
    to_actions,
)
from agents.heuristics import reference_index, reference_sparsities
from pruning_env.env import PruningEnv

CENTER_EPS = 1e-4
"""Reference sparsities are clipped to [CENTER_EPS, 1 - CENTER_EPS] before the logit."""


def sample_plans(center: np.ndarray, scale: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` plans ``(count, L)`` of sparsities in (0, 1) around ``center`` ``(L,)`` (see the module docstring)."""
    logits = logit(np.clip(center, CENTER_EPS, 1.0 - CENTER_EPS))
    return expit(logits + scale * rng.standard_normal((count, center.shape[0])))


PlanEvaluator = Callable[[int, np.ndarray], np.ndarray]
"""(reset seed, plans (N, L)) -> rewards (N,): evaluates a batch of plans on the seed's instance."""


@register_controller("random_search")
class RandomSearch:
    """Keeps the best of ``episodes`` random plans drawn around a reference allocation.

    Args:
        env: the env whose instance is searched (a ``PruningEnv``); ``train`` uses it unless given a factory.
        episodes: number of plans (= reward evaluations), >= 1.
        center: reference allocation: ``"uniform"``, ``"er"``, ``"erk"`` or a proxy name (``"snip"``, ...).
        scale: standard deviation of the logit-space noise, >= 0.
        seed: seeds the plan sampler and is the reset seed of every evaluation, so all plans are judged on the
            instance of this seed.
        include_center: whether the first plan is the reference itself (then the search never ends below it).
        progress: show a tqdm progress bar.
        evaluate_plans: ``(reset seed, plans (N, L)) -> rewards (N,)`` evaluating all plans at once elsewhere
            (e.g. ``agents.ray_pool.EvaluationPool``); None steps ``env`` once per plan.
    """

    name = "random_search"

    def __init__(
        self,
        env: PruningEnv,
        episodes: int = 100,
        center: str = "erk",
        scale: float = 1.0,
        seed: int = 0,
        include_center: bool = False,
        progress: bool = True,
        evaluate_plans: PlanEvaluator | None = None,
    ) -> None:
        if episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {episodes}")
        if not (np.isfinite(scale) and scale >= 0):
            raise ValueError(f"scale must be a finite number >= 0, got {scale}")
        reference_index(env.feature_names, center)
        self.env = env
        self.episodes = episodes
        self.center = center
        self.scale = float(scale)
        self.seed = seed
        self.include_center = include_center
        self.progress = progress
        self.evaluate_plans = evaluate_plans
        self.best_plan: np.ndarray | None = None
        self.best_reward = -np.inf

    def train(
        self, make_env: EnvFactory | None = None, episodes: int | None = None, seed: int | None = None
    ) -> TrainingReport:
        """Evaluate the plans and keep the best; arguments left out default to the constructor's."""
        env = self.env if make_env is None else make_env()
        episodes = self.episodes if episodes is None else episodes
        seed = self.seed if seed is None else seed
        if episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {episodes}")
        start = time.perf_counter()
        observations, _ = env.reset(seed=seed)
        center = reference_sparsities(stacked(observations), env.feature_names, self.center)
        plans = sample_plans(center, self.scale, episodes, np.random.default_rng(seed))
        if self.include_center:
            plans[0] = center
        if self.evaluate_plans is None:
            rewards = [
                self._step_reward(env, seed, plan, first=i == 0)
                for i, plan in enumerate(tqdm(plans, desc="random search", disable=not self.progress))
            ]
        else:
            rewards = np.asarray(self.evaluate_plans(seed, plans), dtype=np.float64)
        history: list[dict[str, float]] = []
        self.best_plan, self.best_reward = None, -np.inf
        for episode, (plan, reward) in enumerate(zip(plans, rewards, strict=True), start=1):
            if self.best_plan is None or reward > self.best_reward:
                self.best_plan, self.best_reward = plan.copy(), float(reward)
            history.append(
                {"episode": float(episode), "reward": float(reward), "best_reward": self.best_reward}
            )
        return TrainingReport(episodes, time.perf_counter() - start, self.best_reward, history)

    @staticmethod
    def _step_reward(env: PruningEnv, seed: int, plan: np.ndarray, first: bool) -> float:
        """One reward evaluation on the seed's instance (the env was just reset with it before the first plan)."""
        if not first:
            env.reset(seed=seed)
        _, rewards, _, _, _ = env.step(to_actions(plan))
        return float(rewards[env.possible_agents[0]])

    def act(self, observations: Observations, infos: dict[str, dict[str, float]]) -> Actions:
        """The best plan found by ``train`` (the same plan whatever the observation)."""
        if self.best_plan is None:
            raise ValueError("RandomSearch.act() needs a plan: call train() first")
        if len(observations) != self.best_plan.shape[0]:
            raise ValueError(
                f"observations hold {len(observations)} layers, the plan has {self.best_plan.shape[0]}"
            )
        return to_actions(self.best_plan)
