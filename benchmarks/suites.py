"""Benchmark suites: tasks x sparsities x seeds x controllers, with the evaluation budgets that make them fit.

Protocol (per-instance search at an equal budget of reward evaluations): for each task and seed, every learning
controller trains once on that seed's initialization with targets drawn from the suite's sparsity range (the
target is a feature, so one policy serves every sparsity), spending ``episodes_per_seed`` reward evaluations; each
searcher (random search, CMA-ES, TPE) gets the same number per seed, split evenly over the sparsities
(``search_episodes_per_cell``). Each plan then prunes the seeded initialization and the pruned network is trained with
the task's full schedule; the test accuracy is reported.

The ``posttrain`` suite prunes TRAINED networks (``prune_at="trained"``: mlp-digits-trained, cnn-digits-trained) at
0.8 and 0.9, with the zero-step reward (one forward pass: a searcher's 300 evaluations per cell take seconds); its
final evaluation reads each pruned network zero-shot and after the task's 50-step fine-tuning (``Task.finetune``).
A sweep of the heuristics (init seeds 0-1) put the targets where the allocation decides: zero-shot at 0.8, and
after fine-tuning at 0.9 (cnn-digits: uniform 85.5%, LAMP 98.1%). ``posttrain_mnist`` does the same on the MNIST
LeNets (lenet300-mnist-trained, lenet5-mnist-trained) at 0.95 and 0.98, where a sweep (init seed 0) put the
allocation deciding: LeNet-300-100 at 0.95 reads 83.0% uniform against 91.6% ERK zero-shot, LeNet-5 at 0.98 12.7%
against LAMP's 87.7%; its fine-tuning is ``MNIST_FINETUNE`` (100 steps of Adam).

The ``flops`` suite prunes cnn-digits under a FLOPs budget at 0.95 and 0.98 of the MACs removed: a sweep of the
heuristics over 0.5-0.98 (``benchmarks/results/reference/flops_sweep``) found sensible plans within 1 point up to
0.8-0.9 and the allocation deciding from 0.95 (global SNIP 91%, GraSP and SynFlow at chance, uniform 97.5%).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

HEURISTICS: tuple[str, ...] = (
    "uniform",
    "er",
    "erk",
    "lamp",
    "random",
    "global_magnitude",
    "global_snip",
    "global_grasp",
    "global_synflow",
)
LEARNERS: tuple[str, ...] = ("sb3_ppo", "mappo", "mappo_ar")
SEARCHERS: tuple[str, ...] = ("random_search", "cma_es", "tpe")
"""Per-instance searchers: each searches every cell with ``search_episodes_per_cell`` evaluations."""
SEARCH_OPTIONS: dict[str, dict[str, Any]] = {
    "random_search": {"progress": False, "reference": "snip", "scale": 0.7, "include_reference": True},
    "cma_es": {"progress": False},
    "tpe": {"progress": False},
}
"""Every searcher starts at global SNIP's plan (random search draws around it with CMA-ES's initial step size)."""
RECORDED_NAMES: dict[str, str] = {"reference": "center", "include_reference": "include_center",
                                   "episodes_per_seed": "rl_episodes"}
"""Settings keys renamed since records were first written -> the old name, which records written before the
rename carry (random search's ``center`` and ``include_center`` and the suite's ``rl_episodes`` until issue 28);
see ``as_recorded``."""
QUIET_MAPPO: dict[str, Any] = {"progress": False, "tensorboard": False, "workers": 2}
"""MAPPO in a benchmark: no bar or TensorBoard files of its own, its episodes on 2 worker processes."""
PER_INSTANCE_MAPPO: dict[str, Any] = {**QUIET_MAPPO, "act_plan": "best"}
"""MAPPO in a suite of one target (the default suites), where it trains on the very instance it then prunes: it acts
with its best training episode's plan, as every searcher returns its best plan (the per-instance protocol of the
learning-curve study; ``benchmarks.studies.mappo_recipe``). Where a suite has several targets its episodes draw
targets from their range and this makes no difference, so those suites keep ``QUIET_MAPPO``."""
PARALLEL_SB3: dict[str, Any] = {"num_vec_envs": 2, "workers": 2}
"""SB3 PPO in a benchmark: two env copies stepped together in 2 worker processes (two episodes per vector step)."""
BENCHMARL: tuple[str, ...] = ("benchmarl_mappo", "benchmarl_ippo", "benchmarl_iql")
"""BenchMARL's MAPPO, IPPO and IQL (``agents.benchmarl_marl``), trained with the suite's budget."""


@dataclass(frozen=True, eq=False)
class Suite:
    """One benchmark configuration."""

    name: str
    tasks: tuple[str, ...]
    sparsities: tuple[float, ...]
    seeds: tuple[int, ...]
    controllers: tuple[str, ...]
    """Controller names from ``agents.CONTROLLERS`` (``"dense"``: the unpruned reference row)."""
    episodes_per_seed: int = 96
    """The equal budget: reward evaluations (one-step episodes) per controller per (task, seed). A learner spends
    them training over the target range; a searcher gets them split evenly over the targets
    (``search_episodes_per_cell``)."""
    reward: str = "neg_loss"
    """Reward the learners and the searchers optimize."""
    reward_steps: int | None = None
    """K of that reward (the task's when None)."""
    final_steps: int | None = None
    """Override of the full training's steps (None: the task's schedule); only for test presets."""
    workers: int = field(default_factory=lambda: available_cores())
    """Processes for the final trainings and the searchers' rewards (default: the cores this process may use; the
    numbers do not depend on it)."""
    train_checkpoints: bool = True
    """Fully train the learners' and searchers' plans read at ``CHECKPOINTS`` of their budget (the sample-efficiency
    table); False records them untrained (``--train-checkpoints True`` trains them)."""
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: benchmark_options())
    """Constructor options per controller name (``agents.make_controller(name, env, seed=seed, **options)``)."""

    @property
    def search_episodes_per_cell(self) -> int:
        """A searcher's reward evaluations per (task, sparsity, seed) cell: its share of ``episodes_per_seed``."""
        return max(1, self.episodes_per_seed // len(self.sparsities))


def benchmark_options(mappo: Mapping[str, Any] = QUIET_MAPPO) -> dict[str, Mapping[str, Any]]:
    """The controllers' constructor options in a suite, with ``mappo`` as MAPPO's (both variants)."""
    return {"mappo": mappo, "mappo_ar": mappo, "sb3_ppo": PARALLEL_SB3, **SEARCH_OPTIONS}


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` where there is none)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


ALL_CONTROLLERS = ("dense", *HEURISTICS, *SEARCHERS, *LEARNERS)
QUICK_CONTROLLERS = ("dense", *(name for name in HEURISTICS if name != "er"), *SEARCHERS, *LEARNERS)
"""The quick suite's rows: ER is left out because on an MLP (no kernels) it is ERK's formula, the same plan."""

SHORT_CONTROLLERS = (*(name for name in QUICK_CONTROLLERS if name not in ("sb3_ppo", "mappo_ar")), "successive_halving")
"""The default suite's rows at initialization: the quick suite's but SB3 PPO and the autoregressive MAPPO (-33.3 ± 23.6
and -4.2 ± 8.3 points behind LAMP there on 2026-12-05; 2.6 of its 12.8 minutes; both stay in every other suite), and the
multi-fidelity searcher, which spends the same compute (``benchmarks.run.search_compute``) on rewards of 25, 100 and
400 training steps."""

POSTTRAIN_CONTROLLERS = ("dense", "uniform", "erk", "lamp", "global_magnitude", "global_snip", "sensitivity",
                         *SEARCHERS, "mappo")
"""The post-training suite's rows: the heuristics of that setting (magnitude-based, LAMP, sensitivity analysis)
beside SNIP's and the allocation formulas, the searchers, our MAPPO."""
SHORT_TRAINED_CONTROLLERS = tuple(name for name in POSTTRAIN_CONTROLLERS if name != "tpe")
"""The default suite's rows after training: the posttrain suite's but TPE (40 s of its 4 minutes; in posttrain)."""

SUITES: dict[str, Suite] = {
    suite.name: suite
    for suite in (
        Suite("short", ("mlp-digits",), (0.995,), (0, 1, 2, 3, 4), SHORT_CONTROLLERS, episodes_per_seed=48,
              train_checkpoints=False, options=benchmark_options(PER_INSTANCE_MAPPO)),
        Suite("quick", ("mlp-digits",), (0.98, 0.99), (0, 1, 2, 3, 4), QUICK_CONTROLLERS, episodes_per_seed=200),
        Suite("mnist", ("lenet300-mnist", "lenet5-mnist"), (0.95, 0.98, 0.99, 0.995), (0, 1, 2), ALL_CONTROLLERS),
        Suite("flops", ("cnn-digits-flops",), (0.95, 0.98), (0, 1, 2), ALL_CONTROLLERS, episodes_per_seed=200),
        Suite("cifar", ("resnet20-cifar10", "vgg19-cifar10"), (0.9, 0.95, 0.98), (0, 1, 2), ALL_CONTROLLERS),
        Suite(
            "benchmarl",
            ("mlp-digits",),
            (0.98, 0.99),
            (0, 1, 2),
            ("dense", "erk", "lamp", "global_snip", "random_search", "mappo", *BENCHMARL),
        ),
        Suite("posttrain", ("mlp-digits-trained", "cnn-digits-trained"), (0.8, 0.9), (0, 1, 2), POSTTRAIN_CONTROLLERS,
              episodes_per_seed=600),
        Suite("short_trained", ("cnn-digits-trained",), (0.8,), (0, 1, 2, 3, 4), SHORT_TRAINED_CONTROLLERS,
              episodes_per_seed=600, train_checkpoints=False, options=benchmark_options(PER_INSTANCE_MAPPO)),
        Suite("posttrain_mnist", ("lenet300-mnist-trained", "lenet5-mnist-trained"), (0.95, 0.98), (0, 1, 2),
              POSTTRAIN_CONTROLLERS, episodes_per_seed=600),
        Suite(
            "tiny",
            ("mlp-digits",),
            (0.5, 0.999),
            (0,),
            ("dense", "uniform", "erk", "global_snip", "random_search", "mappo"),
            episodes_per_seed=8,
            reward_steps=5,
            final_steps=60,
        ),
    )
}

STUDY_SUITES: dict[str, tuple[str, dict[str, str]]] = {
    "generalize": ("benchmarks.studies.generalize", {"seeds": "eval_seeds", "sparsities": "targets"}),
}
"""Suites a study module runs (its ``Args`` and ``main``) rather than cell by cell, with the names its ``Args``
gives the runner's options: ``make bench SUITE=generalize SEEDS=...`` passes the seeds as its held-out init seeds."""

CHECKPOINTS: tuple[float, ...] = (0.25, 0.5)
"""Fractions of its evaluation budget at which a learner's and a searcher's plans are also trained fully (the
same run read early: sample efficiency)."""
SUITE_GROUPS: dict[str, tuple[str, ...]] = {"default": ("short", "short_trained")}
"""Names that run several suites one after the other, each with its own records, report and reference folder."""
DEFAULT_SUITE = "default"
"""``make bench``'s suites, sized to finish within 15 minutes on 2 CPU cores together, one cell each where the oracle
found room (``benchmarks/results/reference/oracle``):

- ``short``, at initialization: mlp-digits at 0.995 on the oracle study's five instances (seeds 0-4; the one cell of
  the digits tasks at initialization where a plan can beat the best heuristic beyond noise: +8.2 ± 6.4 points; at 0.98
  and 0.99, the suite's targets until 2026-12-05, -0.7 ± 1.5 and +0.1 ± 1.9). 48 reward evaluations per learner and
  seed, the same per searcher, the same compute in sample-steps for the multi-fidelity searcher; checkpoint plans
  recorded untrained.
- ``short_trained``, after training: cnn-digits-trained at 0.8 on the zero-shot oracle's five instances (+26.9 ± 22.9
  points zero-shot), with the zero-step reward (one forward pass), 600 evaluations per learner and searcher; the
  pruned networks are read zero-shot and after the 50-step fine-tuning."""

# Published figures shown beside ours: (task, sparsity) -> (source, test accuracy in %)
PUBLISHED: dict[tuple[str, float], tuple[str, float]] = {
    ("lenet300-mnist", 0.95): ("SNIP (Lee et al. 2019), 1.6% error", 98.4),
    ("lenet300-mnist", 0.98): ("SNIP (Lee et al. 2019), 2.4% error", 97.6),
    ("lenet5-mnist", 0.98): ("SNIP (Lee et al. 2019), 0.8% error", 99.2),
    ("lenet5-mnist", 0.99): ("SNIP (Lee et al. 2019), 1.1% error", 98.9),
}


def as_recorded(settings: Mapping[str, Any], recorded: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with each renamed key (``RECORDED_NAMES``) spelled as the stored ``recorded`` settings spell
    it, at any depth: the old name where ``recorded`` has the old name and not the new one. Compared with a record
    written before a rename, ``as_recorded(current, record["settings"])`` shows only what really changed."""
    spelled: dict[str, Any] = {}
    for key, value in settings.items():
        old = RECORDED_NAMES.get(key)
        name = old if old is not None and old in recorded and key not in recorded else key
        below = recorded.get(name)
        nested = isinstance(value, Mapping) and isinstance(below, Mapping)
        spelled[name] = as_recorded(value, below) if nested else value
    return spelled


def suite_names(name: str) -> tuple[str, ...]:
    """The suites ``name`` runs: a group's members (``SUITE_GROUPS``) or ``(name,)``."""
    return SUITE_GROUPS.get(name, (name,))


def get_suite(name: str, **overrides: object) -> Suite:
    """A suite by name, with optional field overrides (e.g. ``seeds=(0,)``)."""
    if name not in SUITES:
        known = ", ".join([*SUITE_GROUPS, *SUITES, *STUDY_SUITES])
        raise ValueError(f"unknown suite {name!r}; known suites: {known}")
    return replace(SUITES[name], **overrides)  # type: ignore[arg-type]
