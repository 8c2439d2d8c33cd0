"""Seeded families of architectures, so that the networks a controller is tested on are drawn, not hand-picked.

A family is a sampler of ``ArchSpec``s (MLPs of other depths and widths, plain CNNs with other channel plans,
residual MLPs) with a size and a split: member ``i`` is drawn from ``numpy.random.default_rng([family.seed, i])``
(rejecting draws outside the family's weight range), members ``0 … num_train - 1`` are the training set and the
rest are held out. Each member becomes a ``Task`` on the family's dataset with its schedules, so it works wherever
a task does (``PruningEnv``, ``MultiTaskPruningEnv``, ``FinalEvaluator``, ``gymnasium.make`` with the member's id
``pruning_env/<Family>Family<i>-v1``); ``pruning_env.registry.get_task`` finds members by name or id.

    from pruning_env.families import family_tasks
    train, held_out = family_tasks("digits", "train"), family_tasks("digits", "heldout")
    env = PruningEnv(held_out[0], target_sparsity=0.99)

| family | data              | members | train | kinds              | prunable weights |
|--------|-------------------|---------|-------|--------------------|------------------|
| digits | digits (embedded) | 12      | 8     | mlp, cnn, resmlp   | 60k – 600k       |
| mnist  | MNIST             | 12      | 8     | mlp, cnn, resmlp   | 100k – 1.2M      |
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from pruning_env.layers import prunable_layers, total_weights
from pruning_env.models import ArchKind, ArchSpec
from pruning_env.tasks import DIGITS_FINAL, DIGITS_PROXY, MNIST_FINAL, MNIST_PROXY, Task
from pruning_env.training import TrainConfig

KINDS: tuple[ArchKind, ...] = ("mlp", "cnn", "resmlp")
MAX_DRAWS = 1000


@dataclass(frozen=True)
class Family:
    """A seeded architecture sampler on one dataset, with a train / held-out split of its members."""

    name: str
    dataset: str
    input_shape: tuple[int, int, int]
    reward_train: TrainConfig
    final_train: TrainConfig
    weight_range: tuple[int, int]
    """Prunable weights of a member, (min, max): draws outside are rejected (a tiny net is all-chance at 0.99)."""
    size: int = 12
    num_train: int = 8
    seed: int = 0
    tags: tuple[str, ...] = ()


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("digits", "digits", (1, 8, 8), DIGITS_PROXY, DIGITS_FINAL, (60_000, 600_000), tags=("embedded",)),
        Family("mnist", "mnist", (1, 28, 28), MNIST_PROXY, MNIST_FINAL, (100_000, 1_200_000)),
    )
}


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; known families: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def sample_spec(rng: np.random.Generator, input_shape: tuple[int, int, int]) -> ArchSpec:
    """One architecture: kind uniform; MLP 2–5 hidden layers of 64–512; CNN 2–4 convs of 16–64 channels
    (non-decreasing) and a 64–256 Linear; residual MLP of width 128–512 with 1–3 blocks of 64–256."""
    kind = KINDS[int(rng.integers(len(KINDS)))]
    if kind == "mlp":
        return ArchSpec("mlp", tuple(int(w) for w in rng.choice((64, 128, 256, 512), size=rng.integers(2, 6))),
                        input_shape=input_shape)
    if kind == "cnn":
        channels = sorted(int(c) for c in rng.choice((16, 32, 64), size=rng.integers(2, 5)))
        return ArchSpec("cnn", tuple(channels), int(rng.choice((64, 128, 256))), input_shape)
    blocks = tuple(int(w) for w in rng.choice((64, 128, 256), size=rng.integers(1, 4)))
    return ArchSpec("resmlp", blocks, int(rng.choice((128, 256, 512))), input_shape)


def prunable_weight_count(spec: ArchSpec) -> int:
    """Number of prunable weights of ``spec`` (built on the meta device: no memory, no RNG use)."""
    with torch.device("meta"):
        model = spec(seed=0)
    return total_weights(prunable_layers(model, torch.zeros((2, *spec.input_shape), device="meta")))


@functools.cache
def family_members(family: Family) -> tuple[ArchSpec, ...]:
    """Every member in index order: member ``i`` is the first draw of ``default_rng([seed, i])`` inside the weight
    range that differs from members ``0 … i-1`` (so no held-out network repeats a training one)."""
    members: list[ArchSpec] = []
    low, high = family.weight_range
    for index in range(family.size):
        rng = np.random.default_rng([family.seed, index])
        for _ in range(MAX_DRAWS):
            spec = sample_spec(rng, family.input_shape)
            if spec not in members and low <= prunable_weight_count(spec) <= high:
                members.append(spec)
                break
        else:
            raise RuntimeError(f"family {family.name!r}: no new member within {family.weight_range} weights "
                               f"after {MAX_DRAWS} draws")
    return tuple(members)


def family_member(family: str | Family, index: int) -> ArchSpec:
    """Member ``index`` of the family (see ``family_members``)."""
    family = family if isinstance(family, Family) else get_family(family)
    if not 0 <= index < family.size:
        raise ValueError(f"index must be in [0, {family.size - 1}] for family {family.name!r}, got {index}")
    return family_members(family)[index]


def member_id(family: Family, index: int) -> str:
    """The versioned id of member ``index`` (``"DigitsFamily9-v1"``): known without drawing the members."""
    return f"{family.name.capitalize()}Family{index}-v1"


@functools.cache
def _member_task(family: Family, index: int) -> Task:
    spec = family_member(family, index)
    return Task(
        f"{family.name}/{spec.name}", member_id(family, index), spec, family.dataset, 0.98,
        family.reward_train, family.final_train, tags=family.tags,
    )


def member_task(family: str | Family, index: int) -> Task:
    """Member ``index`` as a ``Task`` named ``"<family>/<arch name>"`` on the family's data and schedules."""
    return _member_task(family if isinstance(family, Family) else get_family(family), index)


def family_tasks(family: str | Family, split: Literal["train", "heldout", "all"] = "all") -> list[Task]:
    """The family's members as tasks: the training members, the held-out ones, or all in index order."""
    family = family if isinstance(family, Family) else get_family(family)
    if split not in ("train", "heldout", "all"):
        raise ValueError(f"split must be 'train', 'heldout' or 'all', got {split!r}")
    indices = {"train": range(family.num_train), "heldout": range(family.num_train, family.size),
               "all": range(family.size)}[split]
    return [member_task(family, index) for index in indices]
