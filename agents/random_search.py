"""Random search over per-layer sparsity plans: the equal-budget baseline for learned controllers.

Plans are drawn around a reference allocation in logit space: for layer l with reference sparsity c_l (ERK,
uniform or a proxy's global allocation, read from the observation; see ``agents.heuristics``),

    s_l = sigmoid(logit(c_l) + scale * z_l),    z_l ~ N(0, 1) independent,

with c_l clipped to [REFERENCE_EPS, 1 - REFERENCE_EPS] so dense or empty reference layers can still move.
``scale`` = 0 gives the reference itself; ``scale`` ≈ 1 changes a layer's density by up to a factor of about e
either way. Each plan costs one reward evaluation (``PruningEnv.evaluate_plan``, or an evaluation pool's workers)
on the instance of one fixed reset seed, so all plans are judged on the same network, target and reward
minibatches; the best plan is kept and ``act`` returns it. It is a per-instance searcher
(``agents.base.SearchController``): ``search`` spends its budget on one instance. In the benchmark it gets the
learners' budget per seed, split over the targets (``benchmarks.suites``).
"""

from __future__ import annotations

import time

import numpy as np

from agents.base import TrainingReport, register_controller
from agents.plan_search import PlanSearch, UpdateCallback, offset_plans
from pruning_env.parallel import PruningEnv
from pruning_env.pools import EvaluationPool


def sample_plans(reference: np.ndarray, scale: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` plans ``(count, L)`` of sparsities in (0, 1) around the ``reference`` sparsities ``(L,)`` (see the
    module docstring), rounded to float32 like the env's Box actions."""
    return offset_plans(reference, scale * rng.standard_normal((count, reference.shape[0])))


@register_controller("random_search")
class RandomSearch(PlanSearch):
    """Keeps the best of ``episodes`` random plans drawn around a reference allocation (a per-instance searcher).

    Args:
        env: the env whose instance is searched (a ``PruningEnv``); None when ``pool`` is given.
        episodes: number of plans (= reward evaluations), >= 1.
        reference: the allocation the plans are drawn around: ``"uniform"``, ``"er"``, ``"erk"`` or a proxy name
            (``"snip"``, ...).
        scale: standard deviation of the logit-space noise, >= 0.
        seed: seeds the plan sampler and is the reset seed of every evaluation, so all plans are judged on the
            instance of this seed.
        include_reference: whether the first plan is the reference itself (then the search never ends below it).
        progress: show a tqdm progress bar.
        pool: an evaluation pool (``pruning_env.pools``) whose workers evaluate the plans on its source 0; None
            evaluates them in this process on ``env``.
        batch: plans per evaluation call (the plans and their rewards do not depend on it).
    """

    name = "random_search"

    def __init__(
        self,
        env: PruningEnv | None,
        episodes: int = 100,
        reference: str = "erk",
        scale: float = 1.0,
        seed: int = 0,
        include_reference: bool = False,
        progress: bool = True,
        pool: EvaluationPool | None = None,
        batch: int = 10,
    ) -> None:
        if not (np.isfinite(scale) and scale >= 0):
            raise ValueError(f"scale must be a finite number >= 0, got {scale}")
        if not (isinstance(batch, int) and batch >= 1):
            raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
        self.batch = batch
        super().__init__(env, episodes, reference, seed, progress, pool)
        self.scale = float(scale)
        self.include_reference = include_reference

    def search(self, episodes: int | None = None, seed: int | None = None,
               on_update: UpdateCallback | None = None) -> TrainingReport:
        """Evaluate the plans on the seed's instance, ``batch`` per pool call, and keep the best; arguments left
        out default to the constructor's. One history row per plan: ``episodes`` spent, ``reward_mean`` (that
        plan's reward) and ``best_reward`` so far (the keys every controller's history uses);
        ``on_update(spent)`` after each call."""
        started = time.perf_counter()
        episodes, seed = self.start(episodes, seed)
        reference = self.reference_plan(seed)
        plans = sample_plans(reference, self.scale, episodes, np.random.default_rng(seed))
        if self.include_reference:
            plans[0] = reference.astype(np.float32)
        for first in range(0, episodes, self.batch):
            self.evaluate(seed, plans[first : first + self.batch])
            if on_update is not None:
                on_update(min(first + self.batch, episodes))
        return self.report(episodes, started)
