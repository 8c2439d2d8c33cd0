"""MAPPO's recipe on the default suites' cells: variants of the benchmark's MAPPO beside the suite's heuristics.

Each variant is a row of one run of a default suite (``benchmarks.run.run_suite``: the same cells, budget,
final evaluation, tables and paired intervals as ``make bench``), registered as ``mappo[<variant>]`` with the
benchmark's MAPPO options (``benchmarks.suites.QUIET_MAPPO``: ``MappoConfig``'s defaults, acting with the policy's
mean) updated by the variant's config fields. The report's
paired table says which recipe is ahead of the best heuristic by how much; ``short_trained``'s zero-shot table also
gives each row's share of the zero-shot oracle's headroom.

    python -m benchmarks.studies.mappo_recipe --suite short_trained       # 5 variants: about 8 min on 2 cores
    python -m benchmarks.studies.mappo_recipe --suite short               # about 14 min

Writes ``mappo_recipe_<suite>.{jsonl,md,png}`` and the suite runner's other files under that name; resumes like
``make bench``; ``python -m benchmarks.promote mappo_recipe_<suite> --out DIR`` makes it a reference.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
import tyro

import agents
from agents.base import controller_kind
from benchmarks.run import Args as RunArgs
from benchmarks.run import run_one
from benchmarks.study import StudyArgs
from benchmarks.suites import QUIET_MAPPO, Suite, get_suite

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "best": {"act_plan": "best"},
    "lr1e-2": {"learning_rate": 1e-2},
    "std0.7": {"init_log_std": -0.357},
    "12-per-update": {"episodes_per_update": 12},
}
"""Config overrides of the benchmark's MAPPO (``agents.mappo.config.MappoConfig`` fields): "best" acts with its best
training episode's plan (the per-instance protocol of the learning-curve study, as a searcher returns its best), the
others change how fast the policy's mean moves."""


@dataclass
class Args(StudyArgs):
    suite: str = "short_trained"
    """The default suite whose cells the variants run on (``short_trained`` or ``short``)."""
    variants: tuple[str, ...] = tuple(VARIANTS)
    """Names of ``VARIANTS`` to run."""
    seeds: tuple[int, ...] | None = None
    """Override the suite's seeds."""


def variant_name(variant: str) -> str:
    """The controller name of a variant's row."""
    return f"mappo[{variant}]"


def recipe_suite(args: Args) -> Suite:
    """The suite's heuristics and reference rows and one MAPPO row per variant, named ``mappo_recipe_<suite>``, on
    ``args.workers`` processes (the final trainings and MAPPO's episodes); registers the variants' controller names."""
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    base = get_suite(args.suite, **({} if args.seeds is None else {"seeds": args.seeds}))
    fixed = tuple(name for name in base.controllers
                  if controller_kind(agents.CONTROLLERS[name]) in ("heuristic", "reference"))
    names = [variant_name(variant) for variant in args.variants]
    for name in names:
        agents.register_controller(name)(agents.CONTROLLERS["mappo"])
    mappo = {**QUIET_MAPPO, "workers": args.workers}
    options = {**base.options, **{variant_name(v): {**mappo, **VARIANTS[v]} for v in args.variants}}
    return replace(base, name=f"mappo_recipe_{args.suite}", controllers=(*fixed, *names), options=options,
                   workers=args.workers)


def main(args: Args) -> None:
    torch.set_num_threads(1)
    run_one(RunArgs(out=args.out, progress=args.progress, fresh=args.fresh, report_only=args.report_only,
                    train_checkpoints=False), recipe_suite(args))


if __name__ == "__main__":
    main(tyro.cli(Args))
