"""What every per-instance plan searcher shares (random search, CMA-ES, TPE): plans in logit space around a
reference allocation, evaluations through a pool, the best plan so far and one history row per plan.

A plan is given by logit offsets x ``(L,)`` from the reference sparsities c ``(L,)``:

    s_l = sigmoid(logit(c_l) + x_l),   c_l clipped to [REFERENCE_EPS, 1 - REFERENCE_EPS],

so x = 0 is the reference (a shift of x_l is the same shift, sign flipped, of the layer's logit density), and
plans are rounded to float32 like the env's Box actions.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy.special import expit, logit

from agents.base import Actions, Observations, TrainingReport, to_actions
from agents.heuristics import reference_index, reference_sparsities
from pruning_env.parallel import PruningEnv
from pruning_env.pools import EvaluationPool, LocalPool, PlanRequest

REFERENCE_EPS = 1e-4
"""Reference sparsities are clipped to [REFERENCE_EPS, 1 - REFERENCE_EPS] before the logit."""


def offset_plans(reference: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Plans ``(N, L)`` of sparsities in (0, 1): the ``reference`` sparsities ``(L,)`` moved by logit ``offsets``
    ``(N, L)``."""
    plans = expit(logit(np.clip(reference, REFERENCE_EPS, 1.0 - REFERENCE_EPS)) + offsets)
    return plans.astype(np.float32).astype(np.float64)


WORST = -1e10
"""What an optimizer is told for a NaN reward."""

UpdateCallback = Callable[[int], None]
"""Called with the reward evaluations spent so far after each generation, batch or update of a search or a
training (the learning-curve benchmark reads the controller's current plan there)."""


class PlanSearch:
    """What the searchers (random search, CMA-ES, TPE) share: the pool, the reference, the budget, the best plan and the history.

    Args:
        env: the env whose instance is searched; None when ``pool`` is given.
        episodes: reward evaluations per search, >= the searcher's ``minimum_episodes``.
        reference: the allocation at x = 0: ``"uniform"``, ``"er"``, ``"erk"`` or a proxy name (``"snip"``, ...).
        seed: seeds the optimizer and is the reset seed of every evaluation.
        progress: show a tqdm bar per evaluation call.
        pool: an evaluation pool whose source 0 is searched; None evaluates in this process on ``env``.
    """

    name = "plan_search"
    kind = "searcher"
    accepts_pool = True
    accepts_on_update = True
    budget_unit = "evaluations"
    minimum_episodes = 1

    def __init__(self, env: PruningEnv | None, episodes: int, reference: str, seed: int, progress: bool,
                 pool: EvaluationPool | None) -> None:
        if (env is None) == (pool is None):
            raise ValueError(
                f"give {type(self).__name__} exactly one of env (evaluated here) and pool (evaluated on its workers)"
            )
        self.pool = LocalPool([env]) if pool is None else pool
        self.feature_names = list(self.pool.feature_names)
        reference_index(self.feature_names, reference)
        self.check_budget(episodes)
        self.episodes, self.reference, self.seed, self.progress = episodes, reference, seed, progress
        self.best_plan: np.ndarray | None = None
        self.evaluated: list[tuple[float, np.ndarray]] = []
        """(reward, plan ``(L,)``) of every plan the last search evaluated, in order."""
        self.best_reward = -np.inf
        self.history: list[dict[str, float]] = []

    def check_budget(self, episodes: int) -> None:
        if not (isinstance(episodes, int) and episodes >= self.minimum_episodes):
            raise ValueError(
                f"episodes must be an integer >= {self.minimum_episodes} for {self.name}, got {episodes!r}"
            )

    def reference_plan(self, seed: int) -> np.ndarray:
        """The reference sparsities ``(L,)`` on the seed's instance."""
        return reference_sparsities(self.pool.observe([seed])[0], self.feature_names, self.reference)

    def evaluate(self, seed: int, plans: np.ndarray) -> list[float]:
        """Rewards of ``plans`` ``(N, L)`` on the seed's instance (one pool call); updates best and history.
        A NaN reward is returned as ``WORST``."""
        results = self.pool.evaluate([PlanRequest(seed, plan) for plan in plans],
                                     progress=self.name if self.progress else None)
        rewards = []
        for plan, result in zip(plans, results, strict=True):
            reward = float(result.reward) if np.isfinite(result.reward) else WORST
            if self.best_plan is None or reward > self.best_reward:
                self.best_plan, self.best_reward = plan.copy(), reward
            self.evaluated.append((reward, plan.copy()))
            self.history.append({"episodes": float(len(self.history) + 1), "reward_mean": reward,
                                 "best_reward": self.best_reward})
            rewards.append(reward)
        return rewards

    def start(self, episodes: int | None, seed: int | None) -> tuple[int, int]:
        """The search's budget and seed (the constructor's by default), best and history reset."""
        episodes = self.episodes if episodes is None else episodes
        self.check_budget(episodes)
        self.best_plan, self.best_reward, self.history, self.evaluated = None, -np.inf, [], []
        return episodes, self.seed if seed is None else seed

    def top_plans(self, count: int) -> list[np.ndarray]:
        """The ``count`` distinct plans ``(L,)`` of the last search with the highest rewards, best first."""
        top: dict[bytes, np.ndarray] = {}
        for _, plan in sorted(self.evaluated, key=lambda pair: -pair[0]):
            top.setdefault(plan.tobytes(), plan)
            if len(top) == count:
                break
        return list(top.values())

    def current_plan(self) -> np.ndarray:
        """The plan the search would return now ``(L,)``: the best evaluated so far (CMA-ES: its mean)."""
        if self.best_plan is None:
            raise ValueError(f"{type(self).__name__} has no plan yet: call search() first")
        return self.best_plan

    def report(self, episodes: int, started: float) -> TrainingReport:
        return TrainingReport(episodes, time.perf_counter() - started, self.best_reward, list(self.history))

    def act(self, observations: Observations, infos: dict[str, dict[str, float]]) -> Actions:
        """The best plan found by ``search`` (the same plan whatever the observation)."""
        if self.best_plan is None:
            raise ValueError(f"{type(self).__name__}.act() needs a plan: call search() first")
        if len(observations) != self.best_plan.shape[0]:
            raise ValueError(f"observations hold {len(observations)} layers, the plan has {self.best_plan.shape[0]}")
        return to_actions(self.best_plan)
