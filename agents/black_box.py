"""Black-box searchers over per-layer sparsities: CMA-ES (pycma) and TPE (optuna), the equal-budget baselines that
NAS and HPO benchmarks report next to random search.

Both are per-instance searchers (``agents.base.SearchController``): ``search`` spends ``episodes`` reward
evaluations on the instance of one reset seed, and ``act`` returns the best plan evaluated. They search logit
offsets x ``(L,)`` from a reference allocation read from the observation (default ``"snip"``: global SNIP's
plan), x = 0 being the reference itself (``agents.plan_search``).
A generation of CMA-ES, or a batch of TPE trials, is one ``evaluate`` call of the evaluation pool, so its plans
train side by side where the batched reward path is selected.

- ``cma_es``: ``cma.CMAEvolutionStrategy`` from x0 = 0 with step size ``sigma`` and population ``popsize``; a
  budget that is not a multiple of the population ends with a partial generation (evaluated, not told).
- ``tpe``: ``optuna.samplers.TPESampler`` over x_l in [-``bound``, ``bound``], the reference enqueued as the
  first trial, ``batch`` trials asked and told together.

Rewards: a diverged training earns the env's lowest reward, like any other plan; a NaN reward (possible only from
a user's own env) counts as the worst reward of the run: it is never the best and it is told to the optimizer as
``-1e10``.
"""

from __future__ import annotations

import time

import numpy as np

from agents.base import TrainingReport, register_controller
from agents.plan_search import PlanSearch, UpdateCallback, offset_plans
from pruning_env.parallel import PruningEnv
from pruning_env.pools import EvaluationPool


@register_controller("cma_es")
class CMAESSearch(PlanSearch):
    """CMA-ES (pycma) in logit space around a reference allocation; see the module docstring.

    Args:
        env, episodes, reference, seed, progress, pool: see ``PlanSearch`` (``episodes`` >= ``popsize``).
        sigma: CMA-ES's initial step size in logit units, > 0.
        popsize: plans per generation, >= 2.
    """

    name = "cma_es"

    def __init__(self, env: PruningEnv | None, episodes: int = 300, reference: str = "snip", sigma: float = 0.7,
                 popsize: int = 10, seed: int = 0, progress: bool = True, pool: EvaluationPool | None = None) -> None:
        if not (isinstance(popsize, int) and popsize >= 2):
            raise ValueError(f"popsize must be an integer >= 2, got {popsize!r}")
        if not (np.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
        self.minimum_episodes = popsize
        self.sigma, self.popsize = float(sigma), popsize
        self.mean_plan: np.ndarray | None = None
        super().__init__(env, episodes, reference, seed, progress, pool)

    def search(self, episodes: int | None = None, seed: int | None = None,
               on_update: UpdateCallback | None = None) -> TrainingReport:
        """Run CMA-ES for ``episodes`` evaluations on the seed's instance; one history row per plan;
        ``on_update(spent)`` after each generation."""
        import cma  # imported here, not with ``agents``: it alone takes about half a second

        started = time.perf_counter()
        episodes, seed = self.start(episodes, seed)
        center = self.reference_plan(seed)
        self.mean_plan = offset_plans(center, np.zeros((1, len(center))))[0]
        strategy = cma.CMAEvolutionStrategy(
            np.zeros(len(center)), self.sigma,
            {"popsize": self.popsize, "seed": seed + 1, "verbose": -9},  # pycma reads seed 0 as "from the clock"
        )
        spent = 0
        while spent < episodes:
            candidates = np.asarray(strategy.ask())
            count = min(len(candidates), episodes - spent)
            rewards = self.evaluate(seed, offset_plans(center, candidates[:count]))
            spent += count
            if count == len(candidates):
                strategy.tell(list(candidates), [-reward for reward in rewards])  # pycma minimizes
                self.mean_plan = offset_plans(center, np.asarray(strategy.mean)[None])[0]
            if on_update is not None:
                on_update(spent)
        return self.report(episodes, started)

    def current_plan(self) -> np.ndarray:
        """The search distribution's mean plan ``(L,)`` (the reference before the first generation is told)."""
        if self.mean_plan is None:
            raise ValueError("CMAESSearch has no plan yet: call search() first")
        return self.mean_plan


@register_controller("tpe")
class TPESearch(PlanSearch):
    """TPE (optuna) in logit space around a reference allocation; see the module docstring.

    Args:
        env, episodes, reference, seed, progress, pool: see ``PlanSearch``.
        bound: each layer's logit offset lies in [-bound, bound], > 0.
        batch: trials asked, evaluated and told together, >= 1.
        startup_trials: TPE's random trials before it models the rewards (the reference is the first of them).
    """

    name = "tpe"

    def __init__(self, env: PruningEnv | None, episodes: int = 300, reference: str = "snip", bound: float = 3.0,
                 batch: int = 10, startup_trials: int = 10, seed: int = 0, progress: bool = True,
                 pool: EvaluationPool | None = None) -> None:
        if not (np.isfinite(bound) and bound > 0):
            raise ValueError(f"bound must be a finite number > 0, got {bound!r}")
        if not (isinstance(batch, int) and batch >= 1):
            raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
        self.bound, self.batch, self.startup_trials = float(bound), batch, startup_trials
        super().__init__(env, episodes, reference, seed, progress, pool)

    def search(self, episodes: int | None = None, seed: int | None = None,
               on_update: UpdateCallback | None = None) -> TrainingReport:
        """Run TPE for ``episodes`` evaluations on the seed's instance; one history row per plan;
        ``on_update(spent)`` after each batch."""
        import optuna  # imported here, like cma, to keep ``import agents`` fast

        started = time.perf_counter()
        episodes, seed = self.start(episodes, seed)
        center = self.reference_plan(seed)
        names = [f"x{layer}" for layer in range(len(center))]
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.startup_trials)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.enqueue_trial(dict.fromkeys(names, 0.0))
        space = optuna.distributions.FloatDistribution(-self.bound, self.bound)
        spent = 0
        while spent < episodes:
            trials = [study.ask(dict.fromkeys(names, space)) for _ in range(min(self.batch, episodes - spent))]
            offsets = np.array([[trial.params[name] for name in names] for trial in trials])
            for trial, reward in zip(trials, self.evaluate(seed, offset_plans(center, offsets)), strict=True):
                study.tell(trial, reward)
            spent += len(trials)
            if on_update is not None:
                on_update(spent)
        return self.report(episodes, started)
