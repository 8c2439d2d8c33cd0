"""The shipped transformer MAPPO controller: trained once on a family of networks, it prunes new ones zero-shot.

``make_controller("pretrained", env)`` loads ``agents/weights/mappo-digits-v1.pt`` and acts on any env whose
observation has the default features (continuous actions), whatever its network: no training, no reward
evaluation. The file was produced by ``python -m agents.pretrained`` with ``RECIPE`` (the JSON beside it records
the command, the training cost, the versions and the file's SHA-256):

- episodes from ``MultiTaskPruningEnv`` over the training members of the "digits" architecture family
  (``pruning_env.families``), a new initialization every episode, a target drawn from ``target_range``;
- reward ``neg_loss`` after the task's K = 100 proxy training steps; ``episodes`` reward evaluations in all;
- the actor starts at LAMP's allocation (on the training members LAMP earns a higher proxy reward than global
  SNIP at 0.99); groups of 4 episodes on one instance give a leave-one-out baseline. Both choices were measured:
  with SNIP as reference and the critic as baseline, 384 episodes left the policy below its own starting point.

    env = PruningEnv("mlp-digits", model=my_module, target_sparsity=0.98, reward="zero_cost")
    controller = make_controller("pretrained", env)
    observations, infos = env.reset(seed=0)
    env.step(controller.act(observations, infos))      # env.last_masks: the pruned weights of my_module

``benchmarks/studies/generalize.py`` measures it against the heuristics on held-out networks.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.base import TrainingReport, declare, register_controller
from agents.mappo.config import MappoConfig
from agents.mappo.controller import MappoController
from pruning_env import __version__
from pruning_env.families import Family, family_tasks
from pruning_env.multi_task import MultiTaskPruningEnv
from pruning_env.plan_env import PlanEnv

WEIGHTS_DIR = Path(__file__).parent / "weights"
PRETRAINED_FILE = WEIGHTS_DIR / "mappo-digits-v1.pt"


@dataclass(frozen=True)
class Recipe:
    """How a family-trained controller is made (the shipped one: the defaults, seed 0)."""

    family: str | Family = "digits"
    """Architecture family (a name or a ``Family``) whose training members the episodes are drawn from."""
    target_range: tuple[float, float] = (0.95, 0.99)
    """Global sparsity targets drawn uniformly per episode."""
    reward: str = "neg_loss"
    """Reward kind of the training episodes."""
    reward_steps: int | None = None
    """K of the reward (None: the family's proxy schedule, 100 steps)."""
    episodes: int = 768
    """Reward evaluations of the whole training."""
    mappo: MappoConfig = field(
        default_factory=lambda: MappoConfig(
            reference_feature="lamp_density", group_size=4, progress=False, tensorboard=False, workers=2
        )
    )
    """The algorithm (``autoregressive`` picks the variant) and run options: the actor is an offset from LAMP's
    allocation, and 4 episodes share each instance for a leave-one-out baseline (see ``MappoConfig``)."""

    def env_factory(self, seed: int) -> partial[MultiTaskPruningEnv]:
        """Picklable factory of the training env (one per worker)."""
        return partial(
            MultiTaskPruningEnv, family_tasks(self.family, "train"), target_sparsity=self.target_range,
            reward=self.reward, reward_steps=self.reward_steps, init="per_episode", seed=seed,
        )


def train_on_family(recipe: Recipe, seed: int) -> tuple[MappoController, TrainingReport]:
    """Train a MAPPO controller (variant per ``recipe.mappo.autoregressive``) with ``recipe``; deterministic in seed."""
    make_env = recipe.env_factory(seed)
    controller = MappoController(make_env(), recipe.mappo, seed=seed)
    report = controller.train(make_env, recipe.episodes, seed)
    return controller, report


@declare("learner", accepts_on_update=True)
def load_pretrained(
    env: PlanEnv, path: str | Path = PRETRAINED_FILE, seed: int = 0
) -> MappoController:
    """The controller saved at ``path`` (default: the shipped one), checked against ``env``'s observation
    (``seed`` is unused: the controller acts deterministically); declared as the ``MappoController`` it returns.

    Raises:
        ValueError: the env's features or action type differ from those the controller was trained with.
    """
    controller = MappoController.load(path)
    if list(env.feature_names) != controller.policy.feature_names:
        raise ValueError(
            f"the pretrained controller reads the features {controller.policy.feature_names}; this env observes "
            f"{list(env.feature_names)} (build it with the default features)"
        )
    if env.action_type != "continuous":
        raise ValueError(f"the pretrained controller acts with continuous sparsities; the env has {env.action_type!r}")
    controller.name = "pretrained"
    return controller


register_controller("pretrained")(load_pretrained)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Args:
    """Train the family controller with the recipe and write it with a JSON record beside it."""

    out: Path = PRETRAINED_FILE
    """Where the controller goes (``<out>.json`` gets the record)."""
    seed: int = 0
    """Seed of the training run."""
    recipe: Recipe = field(default_factory=Recipe)
    """The recipe (the shipped file uses the defaults)."""


def main(args: Args) -> None:
    from benchmarks.provenance import git_describe  # the record's commit; benchmarks is the CLI's own layer

    torch.set_num_threads(1)
    recipe = replace(args.recipe, mappo=replace(args.recipe.mappo, progress=True))
    start = time.perf_counter()
    controller, report = train_on_family(recipe, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    controller.save(args.out)
    record: dict[str, Any] = {
        "command": f"python -m agents.pretrained --seed {args.seed}", "seed": args.seed,
        "recipe": asdict(recipe), "training_members": [task.name for task in family_tasks(recipe.family, "train")],
        "episodes": report.episodes, "seconds": round(time.perf_counter() - start, 1),
        "final_mean_reward": float(np.mean([row["reward_mean"] for row in report.history[-3:]])),
        "git_commit": git_describe(), "pruning_env": __version__, "torch": torch.__version__,
        "python": platform.python_version(), "sha256": sha256(args.out),
    }
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"{report.episodes} episodes in {record['seconds']} s -> {args.out} (sha256 {record['sha256'][:12]}…)")


if __name__ == "__main__":
    import tyro  # the command line's parser (the agents extra): not loaded with ``import agents``

    main(tyro.cli(Args))
