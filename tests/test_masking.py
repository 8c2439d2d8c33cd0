"""Top-k masks by hand, masks held through SGD/Adam, and agreement with torch.nn.utils.prune."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pruning_env.layers import PrunableLayer, layer_weights, prunable_layers
from pruning_env.masking import (
    MaskedWeights,
    apply_masks,
    export_masks,
    importance_order,
    prune_with_torch,
    topk_masks,
)


def _hand_mlp() -> tuple[nn.Module, list[PrunableLayer]]:
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.5, -2.0], [1.0, 0.1]]))
        model[2].weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 0.25]]))
    return model, prunable_layers(model, torch.zeros(1, 2))


def _magnitude(layers: list[PrunableLayer]) -> dict[str, torch.Tensor]:
    return {layer.name: layer.weight.detach().abs() for layer in layers}


def _small_cnn() -> tuple[nn.Module, list[PrunableLayer], torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 6)
    )
    inputs = torch.randn(8, 3, 5, 5)
    return model, prunable_layers(model, inputs), inputs


def _random_masks(layers: list[PrunableLayer], fraction: float = 0.6) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    scores = {layer.name: torch.rand(layer.weight_shape, generator=generator) for layer in layers}
    return topk_masks(scores, {layer.name: int(fraction * layer.num_weights) for layer in layers})


def test_topk_masks_by_hand() -> None:
    _, layers = _hand_mlp()
    masks = topk_masks(_magnitude(layers), {"0": 2, "2": 2})
    # |W0| = [[0.5, 2], [1, 0.1]]: keep the two largest, 2 and 1.
    assert torch.equal(masks["0"], torch.tensor([[False, True], [True, False]]))
    # |W2| = [[1, 1], [1, 0.25]]: keep two of three tied 1s, the lower flat indices 0 and 1.
    assert torch.equal(masks["2"], torch.tensor([[True, True], [False, False]]))


def test_topk_masks_edge_counts() -> None:
    _, layers = _hand_mlp()
    masks = topk_masks(_magnitude(layers), {"0": 0, "2": 4})
    assert masks["0"].all() and not masks["2"].any()
    assert masks["0"].dtype == torch.bool


def test_exact_kept_counts_with_many_ties() -> None:
    scores = {"a": torch.tensor([3.0, 1.0, 1.0, 1.0, 1.0, 0.0]).view(2, 3), "b": torch.zeros(5)}
    masks = topk_masks(scores, {"a": 3, "b": 2})
    assert torch.equal(masks["a"], torch.tensor([[True, True, True], [False, False, False]]))
    assert torch.equal(masks["b"], torch.tensor([True, True, True, False, False]))


def test_importance_order_ties_lower_index_first() -> None:
    assert importance_order(torch.tensor([1.0, 2.0, 1.0, 2.0])).tolist() == [1, 3, 0, 2]


@pytest.mark.parametrize(
    ("scores", "counts", "match"),
    [
        ({"a": torch.ones(3)}, {"a": 4}, r"\[0, 3\]"),
        ({"a": torch.ones(3)}, {"a": -1}, r"\[0, 3\]"),
        ({"a": torch.ones(3)}, {"b": 1}, "same layers"),
        ({"a": torch.tensor([1.0, float("nan"), 0.0])}, {"a": 1}, "NaN"),
    ],
)
def test_topk_masks_errors(scores: dict, counts: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        topk_masks(scores, counts)


def test_apply_masks_zeroes_only_pruned_weights() -> None:
    model, layers = _hand_mlp()
    masks = topk_masks(_magnitude(layers), {"0": 2, "2": 2})
    before = {name: weight.detach().clone() for name, weight in layer_weights(layers).items()}
    bias = model[0].bias.detach().clone()
    apply_masks(layer_weights(layers), masks)
    assert torch.equal(model[0].weight.detach(), torch.tensor([[0.0, -2.0], [1.0, 0.0]]))
    assert torch.equal(model[2].weight.detach(), torch.tensor([[1.0, -1.0], [0.0, 0.0]]))
    for name, weight in layer_weights(layers).items():
        assert torch.equal(weight.detach()[masks[name]], before[name][masks[name]])
    assert torch.equal(model[0].bias.detach(), bias)


def test_masked_weights_rejects_bad_masks() -> None:
    _, layers = _hand_mlp()
    weights = layer_weights(layers)
    with pytest.raises(ValueError, match="bool"):
        MaskedWeights(weights, {"0": torch.ones(2, 2), "2": torch.ones(2, 2, dtype=torch.bool)})
    with pytest.raises(ValueError, match="shape"):
        MaskedWeights(
            weights, {"0": torch.ones(4, dtype=torch.bool), "2": torch.ones(2, 2, dtype=torch.bool)}
        )
    with pytest.raises(ValueError, match="same layers"):
        MaskedWeights(weights, {"0": torch.ones(2, 2, dtype=torch.bool)})


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
def test_pruned_weights_stay_zero_through_training(optimizer_name: str) -> None:
    model, layers, inputs = _small_cnn()
    masks = _random_masks(layers)
    masked = MaskedWeights.from_layers(layers, masks)
    masked.reapply()
    initial = {name: weight.detach().clone() for name, weight in layer_weights(layers).items()}
    if optimizer_name == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4
        )
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    targets = torch.arange(8) % 6
    for _ in range(5):
        loss = nn.functional.cross_entropy(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        masked.reapply()
    for name, weight in layer_weights(layers).items():
        assert torch.all(weight.detach()[~masks[name]] == 0)
        assert not torch.equal(weight.detach()[masks[name]], initial[name][masks[name]])  # it did train


def test_export_matches_torch_prune() -> None:
    model, layers, inputs = _small_cnn()
    model.eval()
    masks = _random_masks(layers)
    twin = copy.deepcopy(model)
    apply_masks(layer_weights(layers), masks)
    exported = export_masks(twin, layers, masks)
    assert [(module, name) for module, name, _ in exported] == [(twin[0], "weight"), (twin[4], "weight")]
    prune_with_torch(exported)
    assert torch.equal(twin[0].weight_mask, masks["0"].float())
    with torch.no_grad():
        assert torch.equal(model(inputs), twin(inputs))
