"""A multi-fidelity searcher: TPE candidates under optuna's successive-halving pruner, with a compute budget.

Every candidate plan (logit offsets from a reference allocation, as in ``agents.plan_search``; the reference itself
is the first) is evaluated at the cheapest fidelity of ``rungs`` (reward training steps), and promoted to the next
only while optuna's ``SuccessiveHalvingPruner`` keeps it among the best 1/``eta`` of the candidates that reached that
rung. Every evaluation is paid from ``compute`` sample-steps (``pruning_env.fidelity``: the env reports each one's
cost); the search stops before the evaluation that would overspend it. The plan it returns is the best at the
highest rung any candidate reached.

    searcher = SuccessiveHalvingSearch(env, compute=100 * 12_944, rungs=(25, 100, 400))
    report = searcher.search()
    plan = searcher.best_plan
"""

from __future__ import annotations

import time

import numpy as np

from agents.base import Actions, Observations, TrainingReport, register_controller, stacked, to_actions
from agents.heuristics import reference_index, reference_sparsities
from agents.plan_search import offset_plans
from pruning_env.fidelity import Fidelity
from pruning_env.parallel import PruningEnv


@register_controller("successive_halving")
class SuccessiveHalvingSearch:
    """Successive halving over TPE candidates at increasing reward fidelities; see the module docstring.

    Args:
        env: the env whose instance is searched (its evaluations are called with a fidelity per rung).
        compute: the budget in sample-steps, >= the cheapest rung's cost.
        rungs: reward training steps of each rung, increasing (each <= the task's final schedule).
        eta: the pruner's reduction factor (a candidate goes on if in the best 1/eta of its rung), >= 2.
        reference: the allocation at offset 0 (``"snip"``, ``"erk"``, ...), the first candidate.
        bound: each layer's logit offset lies in [-bound, bound], > 0.
        seed: seeds TPE and is the reset seed of every evaluation.
    """

    name = "successive_halving"
    kind = "searcher"
    accepts_pool = False
    accepts_on_update = False
    budget_unit = "compute"

    def __init__(self, env: PruningEnv, compute: int = 1_000_000, rungs: tuple[int, ...] = (25, 100, 400),
                 eta: int = 3, reference: str = "snip", bound: float = 3.0, seed: int = 0) -> None:
        if not rungs or any(b <= a for a, b in zip(rungs, rungs[1:], strict=False)):
            raise ValueError(f"rungs must be increasing training steps, got {rungs!r}")
        self.fidelities = [env.fidelity_of(Fidelity(steps)) for steps in rungs]  # ValueError when out of range
        if not (isinstance(eta, int) and eta >= 2):
            raise ValueError(f"eta must be an integer >= 2, got {eta!r}")
        if not (np.isfinite(bound) and bound > 0):
            raise ValueError(f"bound must be a finite number > 0, got {bound!r}")
        reference_index(env.feature_names, reference)
        self.env, self.eta, self.reference, self.bound, self.seed = env, eta, reference, float(bound), seed
        self.compute = self._check_compute(compute)
        self.best_plan: np.ndarray | None = None
        self.best_reward = -np.inf
        self.best_rung = -1
        self.spent = 0
        """Sample-steps the last search spent."""
        self.evaluations: list[tuple[int, float, np.ndarray]] = []
        """(rung, reward, plan ``(L,)``) of every evaluation of the last search, in order."""

    def _check_compute(self, compute: int) -> int:
        cheapest = self.env.cost_of(self.fidelities[0])
        if not (isinstance(compute, int) and compute >= cheapest):
            raise ValueError(f"compute must be an integer >= {cheapest} (one evaluation at the first rung), "
                             f"got {compute!r}")
        return compute

    def search(self, compute: int | None = None, seed: int | None = None) -> TrainingReport:
        """Spend at most ``compute`` sample-steps (the constructor's by default) on the instance of ``seed``."""
        import optuna  # imported here, like TPE's, to keep ``import agents`` fast

        started = time.perf_counter()
        compute = self.compute if compute is None else self._check_compute(compute)
        seed = self.seed if seed is None else seed
        self.best_plan, self.best_reward, self.best_rung, self.spent, self.evaluations = None, -np.inf, -1, 0, []
        center = reference_sparsities(stacked(self.env.reset(seed=seed)[0]), self.env.feature_names, self.reference)
        names = [f"x{layer}" for layer in range(len(center))]
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=self.eta))
        study.enqueue_trial(dict.fromkeys(names, 0.0))
        space = optuna.distributions.FloatDistribution(-self.bound, self.bound)
        costs = [self.env.cost_of(fidelity) for fidelity in self.fidelities]
        history: list[dict[str, float]] = []
        while self.spent + costs[0] <= compute:
            trial = study.ask(dict.fromkeys(names, space))
            plan = offset_plans(center, np.array([[trial.params[name] for name in names]]))[0]
            state = optuna.trial.TrialState.COMPLETE
            for rung, (fidelity, cost) in enumerate(zip(self.fidelities, costs, strict=True)):
                if self.spent + cost > compute:
                    state = optuna.trial.TrialState.PRUNED
                    break
                reward = float(self.env.evaluate_plans([(seed, plan)], fidelity=fidelity)[0].reward)
                self.spent += cost
                self.evaluations.append((rung, reward, plan))
                if (rung, reward) > (self.best_rung, self.best_reward):
                    self.best_plan, self.best_reward, self.best_rung = plan, reward, rung
                history.append({"episodes": float(len(self.evaluations)), "reward_mean": reward,
                                "best_reward": self.best_reward, "rung": float(rung), "compute": float(self.spent)})
                trial.report(reward, self.eta**rung)  # the pruner's rung r sits at step min_resource x eta^r
                if rung < len(costs) - 1 and trial.should_prune():
                    state = optuna.trial.TrialState.PRUNED
                    break
            study.tell(trial, reward if state == optuna.trial.TrialState.COMPLETE else None, state=state)
        return TrainingReport(len(self.evaluations), time.perf_counter() - started, self.best_reward, history)

    def act(self, observations: Observations, infos: dict[str, dict[str, float]]) -> Actions:
        """The best plan of the highest rung reached (the same plan whatever the observation)."""
        if self.best_plan is None:
            raise ValueError("SuccessiveHalvingSearch has no plan yet: call search() first")
        return to_actions(self.best_plan)
