"""Scorers: known answers on hand-weighted nets, the registry, and that the caller's model is never changed."""

import math

import pytest
import torch
from torch import nn

from pruning_env.budget import target_count
from pruning_env.layers import prunable_layers
from pruning_env.scorers import SCORERS, compute_scores, get_scorer, synflow, synflow_iterative

OPTIONS = {"synflow_iterative": {"sparsity": 0.75, "rounds": 3}}


def _set_weights(model: nn.Sequential, *weights: list[list[float]]) -> nn.Sequential:
    linears = [module for module in model if isinstance(module, nn.Linear)]
    with torch.no_grad():
        for linear, values in zip(linears, weights, strict=True):
            linear.weight.copy_(torch.tensor(values))
    return model


def hand_mlp() -> nn.Sequential:
    """2 -> 2 -> 2 ReLU MLP without bias: W1 = [[1, -2], [0.5, 1]], W2 = [[1, 1], [-1, 2]]."""
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 2, bias=False))
    return _set_weights(model, [[1.0, -2.0], [0.5, 1.0]], [[1.0, 1.0], [-1.0, 2.0]])


# Sample 1: x = (1, 1), class 0. Sample 2: x = (1, 0), class 1.
HAND_BATCH = (torch.tensor([[1.0, 1.0], [1.0, 0.0]]), torch.tensor([0, 1]))
# Sample 1: h = W1 x = (-1, 1.5), a = relu(h) = (0, 1.5), logits z = W2 a = (1.5, 3), p = softmax(z) = (1-q, q)
#   with q = sigmoid(1.5). dl/dz = p - onehot(0) = (-q, q); dl/dW2 = dz aᵀ = [[0, -1.5q], [0, 1.5q]];
#   dl/da = W2ᵀ dz = (-2q, q); dl/dh = (0, q) (h_0 < 0); dl/dW1 = dh xᵀ = [[0, 0], [q, q]].
# Sample 2: h = (1, 0.5) = a, z = (1.5, 0), p = (q, 1-q); dz = p - onehot(1) = (q, -q);
#   dl/dW2 = [[q, 0.5q], [-q, -0.5q]]; dl/da = (2q, -q) = dl/dh; dl/dW1 = [[2q, 0], [-q, 0]].
# Batch loss L = mean: dL/dW1 = [[q, 0], [0, q/2]], dL/dW2 = [[q/2, -q/2], [-q/2, q/2]].
Q = 1.0 / (1.0 + math.exp(-1.5))


def _scores(name: str, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], **options) -> dict:
    layers = prunable_layers(model, batch[0][:1])
    return compute_scores(name, model, layers, batch, **options)


def _assert_scores(scores: dict[str, torch.Tensor], expected: dict[str, list[list[float]]]) -> None:
    assert list(scores) == list(expected)
    for name, values in expected.items():
        torch.testing.assert_close(
            scores[name], torch.tensor(values, dtype=torch.float32), rtol=1e-6, atol=1e-7
        )


def test_magnitude_hand_mlp() -> None:
    _assert_scores(
        _scores("magnitude", hand_mlp(), HAND_BATCH), {"0": [[1, 2], [0.5, 1]], "2": [[1, 1], [1, 2]]}
    )


def test_snip_hand_mlp() -> None:
    # |W ⊙ dL/dW|: W1 [[1·q, 2·0], [0.5·0, 1·q/2]]; W2 [[1·q/2, 1·q/2], [1·q/2, 2·q/2]].
    expected = {"0": [[Q, 0], [0, Q / 2]], "2": [[Q / 2, Q / 2], [Q / 2, Q]]}
    _assert_scores(_scores("snip", hand_mlp(), HAND_BATCH), expected)


def test_grad_norm_hand_mlp() -> None:
    expected = {"0": [[Q, 0], [0, Q / 2]], "2": [[Q / 2, Q / 2], [Q / 2, Q / 2]]}
    _assert_scores(_scores("grad_norm", hand_mlp(), HAND_BATCH), expected)


def test_fisher_hand_mlp_uses_per_sample_gradients() -> None:
    # mean of squared per-sample gradients: W1 ([[0,0],[q²,q²]] + [[4q²,0],[q²,0]]) / 2 = [[2q², 0], [q², q²/2]];
    # W2 ([[0, 2.25q²], [0, 2.25q²]] + [[q², 0.25q²], [q², 0.25q²]]) / 2 = [[q²/2, 1.25q²], [q²/2, 1.25q²]].
    # ½ θ² F with θ² = [[1, 4], [0.25, 1]] and [[1, 1], [1, 4]]:
    q2 = Q * Q
    expected = {"0": [[q2, 0], [q2 / 8, q2 / 4]], "2": [[q2 / 4, 0.625 * q2], [q2 / 4, 2.5 * q2]]}
    _assert_scores(_scores("fisher", hand_mlp(), HAND_BATCH), expected)


def linear_net() -> nn.Sequential:
    """2 -> 3 -> 2 linear net, no bias: W1 = [[1, -2], [0.5, 0], [-3, 1]], W2 = [[2, -1, 0.5], [0, 1, -1]]."""
    model = nn.Sequential(nn.Linear(2, 3, bias=False), nn.Linear(3, 2, bias=False))
    return _set_weights(model, [[1, -2], [0.5, 0], [-3, 1]], [[2, -1, 0.5], [0, 1, -1]])


LINEAR_BATCH = (torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.0, 1.0], [2.0, -1.0]]), torch.tensor([0, 1, 0, 1]))
# R = 1ᵀ|W2||W1|1. Column sums of |W2| (unit i): (2, 2, 1.5); row sums of |W1|: (3, 0.5, 4).
# score W1[i,j] = |W1[i,j]| · colsum_i: [[2, 4], [1, 0], [4.5, 1.5]]; score W2[k,i] = |W2[k,i]| · rowsum_i:
# [[6, 0.5, 2], [0, 0.5, 4]]. Each layer's scores sum to R = 2·3 + 2·0.5 + 1.5·4 = 13. Rescaled by the max, 6.
SYNFLOW_RAW = {"0": [[2, 4], [1, 0], [4.5, 1.5]], "1": [[6, 0.5, 2], [0, 0.5, 4]]}


def test_synflow_two_layer_linear_net() -> None:
    scores = _scores("synflow", linear_net(), LINEAR_BATCH)
    _assert_scores(scores, {name: (torch.tensor(v) / 6).tolist() for name, v in SYNFLOW_RAW.items()})
    for score in scores.values():
        assert float(score.sum()) * 6 == pytest.approx(13.0)


def test_synflow_iterative_two_rounds_by_hand() -> None:
    # N = 12, sparsity 0.5. Round 1 keeps round(12·0.5^(1/2)) = round(8.49) = 8 of the one-shot scores above:
    # removes W2[0,1] = 0.5, W2[1,1] = 0.5, W1[1,1] = 0, W2[1,0] = 0. Round 2 re-scores the masked net:
    # colsum |W2| = (2, 0, 1.5), rowsum |W1| = (3, 0.5, 4); alive scores W1 [[2, 4], [0, -], [4.5, 1.5]],
    # W2 [[6, -, 2], [-, -, 4]]; keeping 6 removes W1[1,0] = 0 and W1[2,1] = 1.5.
    # Kept: round-2 score / 6; removed in round k: k - rounds - 1 (round 1 -> -2, round 2 -> -1).
    scores = _scores("synflow_iterative", linear_net(), LINEAR_BATCH, sparsity=0.5, rounds=2)
    expected = {"0": [[2 / 6, 4 / 6], [-1, -2], [4.5 / 6, -1]], "1": [[1, -2, 2 / 6], [-2, -2, 4 / 6]]}
    _assert_scores(scores, expected)


def bn_net() -> nn.Module:
    """Conv -> BatchNorm -> ReLU -> Linear head on (2, 4, 4) inputs, seeded; input (N, 2, 4, 4), 3 classes."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3)
        )


def _bn_batch(n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(n, 2, 4, 4, generator=generator), torch.arange(n) % 3


def _flat(scores: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([score.flatten() for score in scores.values()])


def test_synflow_iterative_one_round_equals_one_shot_ranking() -> None:
    model, batch = bn_net(), _bn_batch()
    layers = prunable_layers(model, batch[0][:1])
    one_shot = _flat(synflow(model, layers, batch))
    iterative = _flat(synflow_iterative(model, layers, batch, sparsity=0.8, rounds=1))
    kept = iterative >= 0
    assert int(kept.sum()) == one_shot.numel() - target_count(one_shot.numel(), 0.8)
    torch.testing.assert_close(iterative[kept], one_shot[kept])
    assert set(torch.topk(iterative, int(kept.sum())).indices.tolist()) == set(
        torch.topk(one_shot, int(kept.sum())).indices.tolist()
    )


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.3125, 0.9, 0.99, 1.0])  # 0.3125 · 264 weights = 82.5
def test_synflow_iterative_global_top_k_is_its_mask(sparsity: float) -> None:
    model, batch = bn_net(), _bn_batch()
    layers = prunable_layers(model, batch[0][:1])
    scores = _flat(synflow_iterative(model, layers, batch, sparsity=sparsity, rounds=10))
    kept = scores >= 0
    count = scores.numel() - target_count(scores.numel(), sparsity)
    assert int(kept.sum()) == count
    top = torch.zeros_like(kept)
    top[torch.topk(scores, count).indices] = True
    assert torch.equal(top, kept)
    assert bool((scores[~kept] <= -1).all()) and bool((scores[kept] <= 1).all())


def test_grasp_matches_explicit_hessian() -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
        inputs, targets = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    temperature = 2.0
    w1, b1 = model[0].weight.detach().double(), model[0].bias.detach().double()
    w2, b2 = model[2].weight.detach().double(), model[2].bias.detach().double()

    def loss(theta: torch.Tensor) -> torch.Tensor:
        first, second = theta[:12].view(4, 3), theta[12:].view(2, 4)
        logits = torch.tanh(inputs.double() @ first.T + b1) @ second.T + b2
        return nn.functional.cross_entropy(logits / temperature, targets)

    theta = torch.cat([w1.flatten(), w2.flatten()])
    gradient = torch.autograd.functional.jacobian(loss, theta)
    hessian = torch.autograd.functional.hessian(loss, theta)
    expected = theta * (hessian @ gradient)  # -S(-θ) of Wang et al.: highest = keep
    scores = _scores("grasp", model, (inputs, targets), temperature=temperature)
    torch.testing.assert_close(_flat(scores).double(), expected, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("name", list(SCORERS))
@pytest.mark.parametrize("training", [True, False])
def test_caller_model_unchanged(name: str, training: bool) -> None:
    model, batch = bn_net(), _bn_batch()
    model.train(training)
    prior_grad = torch.full_like(model[0].weight, 0.25)
    model[0].weight.grad = prior_grad.clone()
    model[4].bias.requires_grad_(False)
    state = {key: value.clone() for key, value in model.state_dict().items()}
    compute_scores(name, model, prunable_layers(model, batch[0][:1]), batch, **OPTIONS.get(name, {}))
    assert model.training is training
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert torch.equal(model[0].weight.grad, prior_grad)
    assert all(p.grad is None for p in model.parameters() if p is not model[0].weight)
    assert [p.requires_grad for p in model.parameters()] == [True, True, True, True, True, False]


@pytest.mark.parametrize("name", list(SCORERS))
def test_output_contract_for_float64_model_under_no_grad(name: str) -> None:
    model, batch = bn_net().double(), _bn_batch()
    layers = prunable_layers(model, batch[0][:1].double())
    with torch.no_grad():
        scores = compute_scores(name, model, layers, (batch[0].double(), batch[1]), **OPTIONS.get(name, {}))
    assert list(scores) == [layer.name for layer in layers]
    for layer in layers:
        score = scores[layer.name]
        assert score.shape == layer.weight_shape
        assert score.dtype == torch.float32 and score.device == layer.weight.device
        assert bool(torch.isfinite(score).all()) and not score.requires_grad


def test_data_scorers_use_the_models_mode_and_synflow_uses_eval() -> None:
    model, batch = bn_net(), _bn_batch()
    by_mode = {}
    for training in (True, False):
        model.train(training)
        by_mode[training] = {name: _flat(_scores(name, model, batch)) for name in ("snip", "synflow")}
    assert not torch.allclose(by_mode[True]["snip"], by_mode[False]["snip"])
    assert torch.equal(by_mode[True]["synflow"], by_mode[False]["synflow"])


def test_unused_layer_scores_zero() -> None:
    class WithUnused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(2, 2)
            self.unused = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    model = WithUnused()
    for name in ("snip", "grasp", "synflow", "fisher"):
        assert not _scores(name, model, LINEAR_BATCH)["unused"].any(), name


def test_random_is_seeded_and_uniform() -> None:
    model, batch = bn_net(), _bn_batch()

    def draw(seed: int) -> torch.Tensor:
        return _flat(_scores("random", model, batch, generator=torch.Generator().manual_seed(seed)))

    first = draw(3)
    assert torch.equal(first, draw(3))
    assert not torch.equal(first, draw(4))
    assert float(first.min()) >= 0.0 and float(first.max()) < 1.0


def test_registry_and_option_errors() -> None:
    assert list(SCORERS) == [
        "magnitude",
        "random",
        "snip",
        "grasp",
        "synflow",
        "synflow_iterative",
        "grad_norm",
        "fisher",
        "lamp",
        "wanda",
    ]
    assert get_scorer("snip") is SCORERS["snip"]
    with pytest.raises(
        ValueError,
        match="unknown scorer 'snap'.*magnitude, random, snip, grasp, synflow, "
        "synflow_iterative, grad_norm, fisher",
    ):
        get_scorer("snap")
    model, batch = hand_mlp(), HAND_BATCH
    with pytest.raises(ValueError, match="'synflow_iterative' needs options \\['sparsity'\\]"):
        _scores("synflow_iterative", model, batch)
    with pytest.raises(ValueError, match="unknown scorer options \\['round'\\].*generator, rounds, sparsity"):
        _scores("synflow_iterative", model, batch, sparsity=0.5, round=3)


def test_options_of_other_scorers_are_ignored() -> None:
    model, batch = hand_mlp(), HAND_BATCH
    plain = _scores("snip", model, batch)
    with_env_options = _scores("snip", model, batch, sparsity=0.9, rounds=3, generator=torch.Generator())
    assert all(torch.equal(plain[name], with_env_options[name]) for name in plain)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("synflow_iterative", {"sparsity": 1.5}, "sparsity must be in \\[0, 1\\]"),
        ("synflow_iterative", {"sparsity": 0.5, "rounds": 0}, "rounds must be >= 1"),
        ("grasp", {"temperature": 0.0}, "temperature must be > 0"),
    ],
)
def test_bad_options(name: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _scores(name, hand_mlp(), HAND_BATCH, **options)


def test_bad_batch() -> None:
    with pytest.raises(ValueError, match="targets"):
        _scores("snip", hand_mlp(), (HAND_BATCH[0], torch.tensor([0, 1, 1])))


def test_float32_settings_restored() -> None:
    model, batch = bn_net(), _bn_batch()
    before = torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()
    torch.backends.cudnn.allow_tf32 = not before[0]
    torch.set_float32_matmul_precision("medium")
    try:
        _scores("snip", model, batch)
        assert (torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()) == (
            not before[0],
            "medium",
        )
    finally:
        torch.backends.cudnn.allow_tf32 = before[0]
        torch.set_float32_matmul_precision(before[1])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", list(SCORERS))
def test_cuda_scores_match_cpu(name: str) -> None:
    options = {**OPTIONS.get(name, {}), "generator": torch.Generator().manual_seed(0)}
    cpu_model, batch = bn_net(), _bn_batch()
    cpu = _flat(_scores(name, cpu_model, batch, **options))
    options["generator"] = torch.Generator().manual_seed(0)
    model = bn_net().cuda()
    layers = prunable_layers(model, batch[0][:1].cuda())
    scores = compute_scores(
        name, model, layers, batch, **options
    )  # the CPU batch moves to the weights' device
    assert all(
        score.device == layer.weight.device for layer, score in zip(layers, scores.values(), strict=True)
    )
    # TF32 rounds conv inputs to 10-bit mantissas (relative error ~5e-4); true float32 stays far below 1e-4.
    assert float((_flat(scores).cpu() - cpu).abs().max()) <= 1e-4 * float(cpu.abs().max())


def test_wanda_hand_mlp_weighs_each_weight_by_the_norm_of_its_input() -> None:
    # layer 0 reads x: feature norms (√(1+1), √(1+0)) = (√2, 1); layer 2 reads relu(W1 x) = (0, 1.5) and (1, 0.5):
    # norms (1, √2.5). Scores |W| times the norm of the column's input.
    r2, r25 = math.sqrt(2), math.sqrt(2.5)
    expected = {"0": [[r2, 2], [0.5 * r2, 1]], "2": [[1, r25], [1, 2 * r25]]}
    _assert_scores(_scores("wanda", hand_mlp(), HAND_BATCH), expected)


def test_wanda_hand_convolutions_read_each_kernel_tap_and_each_group() -> None:
    conv = nn.Conv2d(1, 2, kernel_size=2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, -1.0], [2.0, 0.5]]], [[[-3.0, 1.0], [1.0, 1.0]]]]))
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[0.0, 1.0], [0.0, 2.0]]]])  # one patch per sample
    taps = torch.tensor([[1.0, math.sqrt(5)], [3.0, math.sqrt(20)]])  # each tap's norm over the two samples
    scores = _scores("wanda", nn.Sequential(conv), (x, torch.tensor([0, 1])))
    torch.testing.assert_close(scores["0"], conv.weight.detach().abs() * taps)
    grouped = nn.Conv2d(2, 2, kernel_size=1, groups=2, bias=False)  # output o reads channel o only
    with torch.no_grad():
        grouped.weight.copy_(torch.tensor([2.0, -0.5]).reshape(2, 1, 1, 1))
    x = torch.stack([torch.full((2, 2), 1.0), torch.full((2, 2), 3.0)])[None]  # channel norms √4 = 2 and √36 = 6
    scores = _scores("wanda", nn.Sequential(grouped), (x, torch.tensor([0])))
    torch.testing.assert_close(scores["0"].flatten(), torch.tensor([2.0 * 2, 0.5 * 6]))
