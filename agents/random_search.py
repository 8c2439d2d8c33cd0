"""Random search over per-layer sparsity plans: the equal-budget baseline for learned controllers.

Plans are drawn around a reference allocation in logit space: for layer l with reference sparsity c_l (ERK,
uniform or a proxy's global allocation, read from the observation; see ``agents.heuristics``),

    s_l = sigmoid(logit(c_l) + scale * z_l),    z_l ~ N(0, 1) independent,

with c_l clipped to [CENTER_EPS, 1 - CENTER_EPS] so dense or empty reference layers can still move. ``scale`` = 0
gives the reference itself; ``scale`` ≈ 1 changes a layer's density by up to a factor of about e either way. Each
plan costs one reward evaluation (``PruningEnv.evaluate_plan``, or an evaluation pool's workers) on the instance of
one fixed reset seed, so all plans are judged on the same network, target and reward minibatches; the best plan is
kept and ``act`` returns it. It is a per-instance searcher (``agents.base.SearchController``): ``search`` spends its
budget on one instance. In benchmarks the number of plans equals the RL controller's episode budget.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.special import expit, logit

from agents.base import Actions, Observations, TrainingReport, register_controller, to_actions
from agents.heuristics import reference_index, reference_sparsities
from pruning_env.parallel import PruningEnv
from pruning_env.pools import EvaluationPool, LocalPool, PlanRequest

CENTER_EPS = 1e-4
"""Reference sparsities are clipped to [CENTER_EPS, 1 - CENTER_EPS] before the logit."""


def sample_plans(center: np.ndarray, scale: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` plans ``(count, L)`` of sparsities in (0, 1) around ``center`` ``(L,)`` (see the module docstring),
    rounded to float32 like the env's Box actions."""
    logits = logit(np.clip(center, CENTER_EPS, 1.0 - CENTER_EPS))
    plans = expit(logits + scale * rng.standard_normal((count, center.shape[0])))
    return plans.astype(np.float32).astype(np.float64)


@register_controller("random_search")
class RandomSearch:
    """Keeps the best of ``episodes`` random plans drawn around a reference allocation (a per-instance searcher).

    Args:
        env: the env whose instance is searched (a ``PruningEnv``); None when ``pool`` is given.
        episodes: number of plans (= reward evaluations), >= 1.
        center: reference allocation: ``"uniform"``, ``"er"``, ``"erk"`` or a proxy name (``"snip"``, ...).
        scale: standard deviation of the logit-space noise, >= 0.
        seed: seeds the plan sampler and is the reset seed of every evaluation, so all plans are judged on the
            instance of this seed.
        include_center: whether the first plan is the reference itself (then the search never ends below it).
        progress: show a tqdm progress bar.
        pool: an evaluation pool (``pruning_env.pools``) whose workers evaluate the plans on its source 0; None
            evaluates them in this process on ``env``.
    """

    name = "random_search"

    def __init__(
        self,
        env: PruningEnv | None,
        episodes: int = 100,
        center: str = "erk",
        scale: float = 1.0,
        seed: int = 0,
        include_center: bool = False,
        progress: bool = True,
        pool: EvaluationPool | None = None,
    ) -> None:
        if episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {episodes}")
        if not (np.isfinite(scale) and scale >= 0):
            raise ValueError(f"scale must be a finite number >= 0, got {scale}")
        if (env is None) == (pool is None):
            raise ValueError("give RandomSearch exactly one of env (evaluated here) and pool (evaluated on its workers)")
        self.pool = LocalPool([env]) if pool is None else pool
        self.feature_names = list(self.pool.feature_names)
        reference_index(self.feature_names, center)
        self.episodes = episodes
        self.center = center
        self.scale = float(scale)
        self.seed = seed
        self.include_center = include_center
        self.progress = progress
        self.best_plan: np.ndarray | None = None
        self.best_reward = -np.inf

    def search(self, episodes: int | None = None, seed: int | None = None) -> TrainingReport:
        """Evaluate the plans on the seed's instance and keep the best; arguments left out default to the
        constructor's. One history row per plan: ``episodes`` spent, ``reward_mean`` (that plan's reward) and
        ``best_reward`` so far (the keys every controller's history uses)."""
        episodes = self.episodes if episodes is None else episodes
        seed = self.seed if seed is None else seed
        if episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {episodes}")
        start = time.perf_counter()
        center = reference_sparsities(self.pool.observe([seed])[0], self.feature_names, self.center)
        plans = sample_plans(center, self.scale, episodes, np.random.default_rng(seed))
        if self.include_center:
            plans[0] = center.astype(np.float32)
        results = self.pool.evaluate([PlanRequest(seed, plan) for plan in plans],
                                     progress="random search" if self.progress else None)
        history: list[dict[str, float]] = []
        self.best_plan, self.best_reward = None, -np.inf
        for episode, (plan, result) in enumerate(zip(plans, results, strict=True), start=1):
            if self.best_plan is None or result.reward > self.best_reward:
                self.best_plan, self.best_reward = plan.copy(), float(result.reward)
            history.append(
                {"episodes": float(episode), "reward_mean": float(result.reward), "best_reward": self.best_reward}
            )
        return TrainingReport(episodes, time.perf_counter() - start, self.best_reward, history)

    def act(self, observations: Observations, infos: dict[str, dict[str, float]]) -> Actions:
        """The best plan found by ``search`` (the same plan whatever the observation)."""
        if self.best_plan is None:
            raise ValueError("RandomSearch.act() needs a plan: call search() first")
        if len(observations) != self.best_plan.shape[0]:
            raise ValueError(
                f"observations hold {len(observations)} layers, the plan has {self.best_plan.shape[0]}"
            )
        return to_actions(self.best_plan)
