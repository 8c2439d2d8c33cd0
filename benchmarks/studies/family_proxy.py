"""A trained controller's proxy reward against global SNIP's and LAMP's plans, on every member of a family.

The cheap diagnostic behind the generalization analysis in the README: for each member (training and held-out),
target and init seed, the reward ``neg_loss`` (validation loss after the family's K proxy steps) of the
controller's plan, of global SNIP's and of LAMP's, all on the same instance; printed as differences to SNIP.

    python -m benchmarks.studies.family_proxy                          # the shipped controller
    python -m benchmarks.studies.family_proxy --controller runs/x.pt   # any saved MAPPO controller
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

import agents
from agents.pretrained import PRETRAINED_FILE, load_pretrained
from benchmarks.cells import plan_of
from pruning_env.families import family_tasks
from pruning_env.parallel import PruningEnv


@dataclass
class Args:
    controller: Path = PRETRAINED_FILE
    """A MAPPO controller file (``MappoController.save``)."""
    family: str = "digits"
    """Architecture family."""
    targets: tuple[float, ...] = (0.98, 0.99)
    """Targets."""
    seeds: tuple[int, ...] = (1000, 1001)
    """Init seeds (held out from training)."""
    reward_steps: int | None = None
    """K of the proxy reward (None: the family's, 100 steps); a small K makes a quick smoke run."""
    members: int | None = None
    """Members of each split to evaluate, the first ones (None: every member)."""


def main(args: Args) -> None:
    torch.set_num_threads(2)
    for split in ("train", "heldout"):
        for target in args.targets:
            versus_snip: dict[str, list[float]] = {"controller": [], "lamp": []}
            for task in family_tasks(args.family, split)[: args.members]:  # type: ignore[arg-type]
                for seed in args.seeds:
                    env = PruningEnv(task, target_sparsity=target, reward="neg_loss", init=seed, seed=seed,
                                     reward_steps=args.reward_steps)
                    controllers = {"controller": load_pretrained(env, args.controller),
                                   "snip": agents.make_controller("global_snip", env),
                                   "lamp": agents.make_controller("lamp", env)}
                    plans = {name: plan_of(controller, env, seed) for name, controller in controllers.items()}
                    rewards = {name: env.evaluate_plan(seed, plan).reward for name, plan in plans.items()}
                    for name in versus_snip:
                        versus_snip[name].append(rewards[name] - rewards["snip"])
            summary = ", ".join(
                f"{name} - snip {np.mean(diffs):+.4f} (wins {int((np.array(diffs) > 0).sum())}/{len(diffs)})"
                for name, diffs in versus_snip.items()
            )
            print(f"{split:8s} {target:g}: proxy reward {summary}")


if __name__ == "__main__":
    main(tyro.cli(Args))
