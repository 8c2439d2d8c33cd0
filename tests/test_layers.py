"""prunable_layers on hand-counted custom modules and on every reference network."""

import pytest
import torch
from torch import nn

from pruning_env.layers import prunable_layers, total_weights
from pruning_env.models import MODELS, build_model

INPUT_SHAPES = {"mlp_digits": (1, 8, 8), "cnn_digits": (1, 8, 8), "lenet300": (1, 28, 28), "lenet5": (1, 28, 28)}


class Zoo(nn.Module):
    """Conv1d -> depthwise Conv2d -> BatchNorm -> grouped 1x1 Conv2d -> shared Linear used twice -> head.

    Input (N, 2, 10). Shapes: conv1d (N,4,8) -> view (N,4,2,4) -> depthwise (N,4,2,4) -> grouped (N,8,2,4)
    -> flatten 64 -> shared 64 -> shared 64 -> head 3. ``unused`` holds a weight but is never called.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1d = nn.Conv1d(2, 4, 3)
        self.depthwise = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.bn = nn.BatchNorm2d(4)
        self.grouped = nn.Conv2d(4, 8, 1, groups=2, bias=False)
        self.shared = nn.Linear(64, 64)
        self.alias = self.shared  # the same module registered under a second name
        self.head = nn.Linear(64, 3)
        self.unused = nn.Linear(5, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1d(x).view(-1, 4, 2, 4)
        x = self.grouped(self.bn(self.depthwise(x))).flatten(1)
        x = torch.relu(self.shared(x))
        return self.head(torch.relu(self.alias(x)))


def test_custom_module_layers_counts_and_flops() -> None:
    model = Zoo()
    layers = prunable_layers(model, torch.randn(3, 2, 10))
    got = [(layer.name, layer.kind, layer.weight_shape, layer.num_weights, layer.flops, layer.fan_in, layer.fan_out, layer.groups) for layer in layers]
    assert got == [
        # Conv1d: 4*2*3 = 24 weights, 8 output positions -> 192 MACs; fan_in 2*3, fan_out 4*3
        ("conv1d", "conv1d", (4, 2, 3), 24, 192, 6, 12, 1),
        # depthwise: 4*1*3*3 = 36 weights, 2*4 positions -> 288 MACs; fan_in 1*9
        ("depthwise", "conv2d", (4, 1, 3, 3), 36, 288, 9, 36, 4),
        # grouped 1x1: 8*2 = 16 weights, 8 positions -> 128 MACs
        ("grouped", "conv2d", (8, 2, 1, 1), 16, 128, 2, 8, 2),
        # shared Linear: one layer, two calls of 4096 MACs
        ("shared", "linear", (64, 64), 4096, 8192, 64, 64, 1),
        ("head", "linear", (3, 64), 192, 192, 64, 3, 1),
        # never called: listed last with no FLOPs
        ("unused", "linear", (5, 5), 25, 0, 5, 5, 1),
    ]
    assert [layer.index for layer in layers] == list(range(6))
    assert layers[3].weight is model.shared.weight
    assert total_weights(layers) == 24 + 36 + 16 + 4096 + 192 + 25


def test_discovery_leaves_the_model_unchanged() -> None:
    model = Zoo().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prunable_layers(model, torch.randn(3, 2, 10) * 5)
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_model_without_prunable_layers_is_an_error() -> None:
    with pytest.raises(ValueError, match="no prunable layer"):
        prunable_layers(nn.Sequential(nn.ReLU()), torch.zeros(1, 3))


# (layers, weights, MACs per sample) counted from the architectures' definitions
EXPECTED = {
    "mlp_digits": (6, 64 * 256 + 3 * 256 * 256 + 256 * 128 + 128 * 10, None),
    "lenet300": (3, 784 * 300 + 300 * 100 + 100 * 10, None),
    # conv1 500 weights x 24*24 positions, conv2 25000 x 8*8, fc 400000 + 5000
    "lenet5": (4, 500 + 25_000 + 400_000 + 5_000, 500 * 576 + 25_000 * 64 + 405_000),
    # stem 432; stage 1: 6 x 2304; stage 2: 4608 + 5 x 9216 + shortcut 512; stage 3: 18432 + 5 x 36864 + 2048; fc 640
    "resnet20": (22, 432 + 6 * 2304 + 4608 + 5 * 9216 + 512 + 18432 + 5 * 36864 + 2048 + 640, None),
    "resnet32": (34, None, None),
    "resnet56": (58, None, None),
    "cnn_digits": (7, 16 * 9 + 32 * 16 * 9 + 32 * 32 * 9 + 64 * 32 * 9 + 64 * 64 * 9 + 256 * 128 + 1280, None),
    "vgg11": (9, None, None),
    "vgg16": (14, None, None),
    "vgg19": (17, None, None),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_reference_networks(name: str) -> None:
    model = build_model(name)
    layers = prunable_layers(model, torch.zeros(2, *INPUT_SHAPES.get(name, (3, 32, 32))))
    num_layers, num_weights, flops = EXPECTED[name]
    assert len(layers) == num_layers
    expected_weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d))
    assert total_weights(layers) == (num_weights or expected_weights) == expected_weights
    if flops is not None:
        assert sum(layer.flops for layer in layers) == flops
    assert all(layer.flops > 0 for layer in layers)
    assert layers[-1].kind == "linear"  # the classifier head is called last


def test_seed_fixes_the_initialization_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected_draw = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = build_model("mlp_digits", seed=1), build_model("mlp_digits", seed=1), build_model("mlp_digits", seed=2)
    assert torch.equal(torch.rand(1), expected_draw)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.head.weight, c.head.weight)


def test_unknown_model_name_lists_known_names() -> None:
    with pytest.raises(ValueError, match="known models: cnn_digits"):
        build_model("resnet18")


def test_a_forward_that_does_not_fit_the_input_names_the_model_the_shape_and_torchs_error() -> None:
    with pytest.raises(ValueError, match=r"Linear does not run on the dataset's inputs of shape \(N, 5\): mat1"):
        prunable_layers(nn.Linear(3, 2), torch.zeros(2, 5))


def test_the_env_reports_a_model_that_does_not_fit_its_dataset() -> None:
    from pruning_env.parallel import PruningEnv

    wrong = nn.Sequential(nn.Flatten(), nn.Linear(32, 10))  # digits images have 64 pixels
    with pytest.raises(ValueError, match=r"Sequential does not run on the dataset's inputs of shape \(N, 1, 8, 8\)"):
        PruningEnv("mlp-digits", model=wrong, device="cpu")
    with pytest.raises(ValueError, match="factory must return an nn.Module, it returned str"):
        PruningEnv("mlp-digits", model=lambda seed: "net", device="cpu")
