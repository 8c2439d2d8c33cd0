"""Architecture families: hand-counted specs, seeded members, a clean train / held-out split, tasks by name."""

import numpy as np
import pytest
import torch

from pruning_env import PruningEnv
from pruning_env.families import (
    FAMILIES,
    Family,
    family_members,
    family_tasks,
    get_family,
    prunable_weight_count,
    sample_spec,
)
from pruning_env.layers import prunable_layers
from pruning_env.models import ArchSpec, build_model
from pruning_env.registry import get_task


@pytest.mark.parametrize(
    ("spec", "shapes"),
    [
        # 64 -> 128 -> 32 -> 10
        (ArchSpec("mlp", (128, 32)), [(128, 64), (32, 128), (10, 32)]),
        # stem 64 -> 16, block 16 -> 8 -> 16, head 16 -> 10
        (ArchSpec("resmlp", (8,), hidden=16), [(16, 64), (8, 16), (16, 8), (10, 16)]),
        # conv 1->4, conv 4->8, pool 8x8 -> 4x4, conv 8->8 (4x4 is still >= 4 but pools only after every 2nd conv),
        # flatten 8*4*4 = 128 -> 12 -> 10
        (ArchSpec("cnn", (4, 8, 8), hidden=12), [(4, 1, 3, 3), (8, 4, 3, 3), (8, 8, 3, 3), (12, 128), (10, 12)]),
    ],
)
def test_arch_spec_builds_hand_counted_layers(spec: ArchSpec, shapes: list[tuple[int, ...]]) -> None:
    model = build_model(spec, num_classes=10, seed=3)
    layers = prunable_layers(model, torch.zeros(2, 1, 8, 8))
    assert [layer.weight_shape for layer in layers] == shapes
    assert prunable_weight_count(spec) == sum(int(np.prod(shape)) for shape in shapes)
    again = build_model(spec, num_classes=10, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True))
    other = build_model(spec, num_classes=10, seed=4)
    assert not torch.equal(next(iter(model.parameters())), next(iter(other.parameters())))
    assert model(torch.zeros(5, 1, 8, 8)).shape == (5, 10)


def test_arch_spec_names_and_errors() -> None:
    assert ArchSpec("mlp", (256, 128)).name == "mlp-256-128"
    assert ArchSpec("cnn", (16, 32), hidden=64).name == "cnn-16-32-h64"
    assert ArchSpec("resmlp", (64, 128), hidden=256).name == "resmlp-256-b64-b128"
    with pytest.raises(ValueError, match="kind"):
        ArchSpec("transformer", (4,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="widths"):
        ArchSpec("mlp", ())
    with pytest.raises(ValueError, match="hidden"):
        ArchSpec("cnn", (8,))


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_members_are_seeded_distinct_and_in_range(name: str) -> None:
    family = get_family(name)
    members = family_members(family)
    family_members.cache_clear()
    assert family_members(family) == members  # a function of the family's seed alone
    assert len(members) == family.size == len(set(members))
    low, high = family.weight_range
    assert all(low <= prunable_weight_count(spec) <= high for spec in members)
    train, held_out = family_tasks(name, "train"), family_tasks(name, "heldout")
    assert len(train) == family.num_train and len(held_out) == family.size - family.num_train
    assert not {task.model for task in train} & {task.model for task in held_out}
    assert [task.model for task in family_tasks(name)] == list(members)


def test_another_family_seed_draws_other_members() -> None:
    digits = get_family("digits")
    reseeded = Family(**{**digits.__dict__, "seed": 1})
    assert family_members(reseeded) != family_members(digits)


def test_sample_spec_covers_every_kind() -> None:
    rng = np.random.default_rng(0)
    kinds = {sample_spec(rng, (1, 8, 8)).kind for _ in range(60)}
    assert kinds == {"mlp", "cnn", "resmlp"}


def test_member_tasks_resolve_by_name_and_run_in_the_env() -> None:
    task = family_tasks("digits", "heldout")[0]
    assert get_task(task.name) is get_task(f"pruning_env/{task.env_id}") is task
    for unknown in ("digits/mlp-1-2-3", "imagenet/mlp-1", "DigitsFamily99-v1"):
        with pytest.raises(ValueError, match="unknown task.*families digits, mnist"):
            get_task(unknown)
    env = PruningEnv(task.name, target_sparsity=0.98, reward="zero_cost", device="cpu")
    assert len(env.layers) == len(prunable_layers(task.model(seed=0), torch.zeros(2, 1, 8, 8)))
    observations, _ = env.reset(seed=0)
    _, _, _, _, infos = env.step({agent: np.array([0.98], np.float32) for agent in observations})
    assert infos["layer_0"]["global_sparsity"] == pytest.approx(0.98, abs=1 / env.sizes.sum())


def test_family_member_ids_are_registered_with_gymnasium_and_pettingzoo() -> None:
    import gymnasium
    import pettingzoo

    task = family_tasks("digits", "heldout")[0]
    env = gymnasium.make(f"pruning_env/{task.env_id}", reward="zero_cost", device="cpu")
    assert env.unwrapped.parallel_env.task is task
    observation, _ = env.reset(seed=0)
    assert observation.shape == (len(env.unwrapped.layers), len(env.unwrapped.feature_names))
    parallel = pettingzoo.make("parallel", f"pruning_env/{task.env_id}", reward="zero_cost", device="cpu")
    assert parallel.task is task
