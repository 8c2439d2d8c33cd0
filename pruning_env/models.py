"""Reference networks, each built from a seed so that one seed gives one initialization.

| name            | input       | prunable layers | source                                   |
|-----------------|-------------|-----------------|------------------------------------------|
| mlp_digits      | (1, 8, 8)   | 6 Linear        | DESIGN.md calibration: 64-256-256-256-256-128-10 |
| cnn_digits      | (1, 8, 8)   | 5 Conv2d + 2 Linear | small VGG-style CNN for 8x8 digits    |
| lenet300        | (1, 28, 28) | 3 Linear        | LeNet-300-100 (LeCun et al. 1998; SNIP)  |
| lenet5          | (1, 28, 28) | 2 Conv2d + 2 Linear | LeNet-5-Caffe (SNIP, Lee et al. 2019) |
| resnet20/32/56  | (3, 32, 32) | 19/31/55 conv + 2 shortcut convs + 1 Linear | He et al. 2016, CIFAR variant, 1x1 conv shortcuts |
| vgg11/16/19     | (3, 32, 32) | 8/13/16 Conv2d + 1 Linear | Simonyan & Zisserman 2015 with BatchNorm, CIFAR head |

Beside the named networks, an ``ArchSpec`` describes one member of a generated family (an MLP, a CNN or a residual
MLP of given widths, see ``pruning_env.families``); ``build_model`` takes either.

Initialization: PyTorch's defaults (Kaiming-uniform for Linear/Conv, BatchNorm weight 1 and bias 0), drawn
inside a fork of the global RNG seeded with ``seed``: one seed gives one initialization, and building a model
never disturbs the caller's random state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import prod
from typing import Literal

import torch
from torch import nn


def _seeded(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


class MLP(nn.Module):
    """Fully connected ReLU network on flattened inputs; one Linear per entry of ``widths`` plus the head."""

    def __init__(self, in_features: int, widths: Sequence[int], num_classes: int) -> None:
        super().__init__()
        sizes = [in_features, *widths]
        hidden = [nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        self.features = nn.Sequential(nn.Flatten(), *hidden)
        self.head = nn.Linear(sizes[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def mlp_digits(num_classes: int = 10, seed: int = 0) -> nn.Module:
    """MLP 64-256-256-256-256-128-10 for 8x8 digits (6 prunable Linear layers, 240k weights)."""
    return _seeded(lambda: MLP(64, (256, 256, 256, 256, 128), num_classes), seed)


def lenet300(num_classes: int = 10, seed: int = 0) -> nn.Module:
    """LeNet-300-100 for 28x28 inputs: 784-300-100-10 (266k weights)."""
    return _seeded(lambda: MLP(784, (300, 100), num_classes), seed)


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU()
    )


class SmallCNN(nn.Module):
    """VGG-style CNN for 8x8 inputs: conv16-conv32-pool-conv32-conv64-pool-conv64-fc128-fc10 (7 prunable)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn_relu(in_channels, 16),
            _conv_bn_relu(16, 32),
            nn.MaxPool2d(2),
            _conv_bn_relu(32, 32),
            _conv_bn_relu(32, 64),
            nn.MaxPool2d(2),
            _conv_bn_relu(64, 64),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * 2 * 2, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def cnn_digits(num_classes: int = 10, seed: int = 0) -> nn.Module:
    """Small CNN for 8x8 digits (5 Conv2d + 2 Linear prunable layers)."""
    return _seeded(lambda: SmallCNN(1, num_classes), seed)


class LeNet5Caffe(nn.Module):
    """LeNet-5-Caffe: conv 20@5x5, pool, conv 50@5x5, pool, fc 500, fc 10 (431k weights)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(50 * 4 * 4, 500), nn.ReLU(), nn.Linear(500, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def lenet5(num_classes: int = 10, seed: int = 0) -> nn.Module:
    """LeNet-5-Caffe for 28x28 inputs."""
    return _seeded(lambda: LeNet5Caffe(num_classes), seed)


class BasicBlock(nn.Module):
    """ResNet basic block; a 1x1 conv + BN shortcut where the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 inputs: 16-32-64 channels, n blocks per stage, global pool, Linear head."""

    def __init__(self, depth: int, num_classes: int = 10) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"depth must be 6n+2 (20, 32, 56, ...), got {depth}")
        blocks_per_stage = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        stages: list[nn.Module] = []
        in_channels = 16
        for stage, channels in enumerate((16, 32, 64)):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                stages.append(BasicBlock(in_channels, channels, stride))
                in_channels = channels
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def resnet20(num_classes: int = 10, seed: int = 0) -> nn.Module:
    """ResNet-20 for CIFAR (0.27M weights)."""
    return _seeded(lambda: CifarResNet(20, num_classes), seed)


def resnet32(num_classes: int = 10, seed: int = 0) -> nn.Module:
    """ResNet-32 for CIFAR."""
    return _seeded(lambda: CifarResNet(32, num_classes), seed)


def resnet56(num_classes: int = 10, seed: int = 0) -> nn.Module:
    """ResNet-56 for CIFAR."""
    return _seeded(lambda: CifarResNet(56, num_classes), seed)


VGG_CONFIGS: dict[int, tuple[int | str, ...]] = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


class CifarVGG(nn.Module):
    """VGG with BatchNorm for 32x32 inputs; after five poolings a 512-wide vector feeds one Linear head."""

    def __init__(self, depth: int, num_classes: int = 10) -> None:
        super().__init__()
        if depth not in VGG_CONFIGS:
            raise ValueError(f"VGG depth must be one of {sorted(VGG_CONFIGS)}, got {depth}")
        layers: list[nn.Module] = []
        in_channels = 3
        for entry in VGG_CONFIGS[depth]:
            if entry == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers.append(_conv_bn_relu(in_channels, int(entry)))
                in_channels = int(entry)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(512, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def vgg11(num_classes: int = 10, seed: int = 0) -> nn.Module:
    """VGG-11-bn for CIFAR."""
    return _seeded(lambda: CifarVGG(11, num_classes), seed)


def vgg16(num_classes: int = 10, seed: int = 0) -> nn.Module:
    """VGG-16-bn for CIFAR."""
    return _seeded(lambda: CifarVGG(16, num_classes), seed)


def vgg19(num_classes: int = 10, seed: int = 0) -> nn.Module:
    """VGG-19-bn for CIFAR."""
    return _seeded(lambda: CifarVGG(19, num_classes), seed)


class ResidualMLP(nn.Module):
    """A Linear stem to ``width``, bottleneck blocks ``x + W2 relu(W1 x)`` (hidden widths ``hidden``), a Linear head."""

    def __init__(self, in_features: int, width: int, hidden: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Flatten(), nn.Linear(in_features, width), nn.ReLU())
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(width, inner), nn.ReLU(), nn.Linear(inner, width)) for inner in hidden
        )
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = torch.relu(x + block(x))
        return self.head(x)


class PlainCNN(nn.Module):
    """3x3 conv + BN + ReLU per entry of ``channels``, a 2x2 max-pool after every second conv while the map is at
    least 4 pixels wide, then Linear(flattened -> ``hidden``) + ReLU + Linear(-> classes)."""

    def __init__(self, input_shape: Sequence[int], channels: Sequence[int], hidden: int, num_classes: int) -> None:
        super().__init__()
        in_channels, size = input_shape[0], input_shape[-1]
        layers: list[nn.Module] = []
        for index, out_channels in enumerate(channels):
            layers.append(_conv_bn_relu(in_channels, out_channels))
            in_channels = out_channels
            if index % 2 == 1 and size >= 4:
                layers.append(nn.MaxPool2d(2))
                size //= 2
        self.features = nn.Sequential(*layers)
        flat = in_channels * size * size
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


ArchKind = Literal["mlp", "cnn", "resmlp"]


@dataclass(frozen=True)
class ArchSpec:
    """One generated architecture; ``spec(seed, num_classes)`` builds it with a seeded initialization.

    - ``"mlp"``: ``MLP`` with hidden ``widths``;
    - ``"cnn"``: ``PlainCNN`` with conv ``widths`` (channels) and a ``hidden``-wide Linear before the head;
    - ``"resmlp"``: ``ResidualMLP`` with stem width ``hidden`` and one bottleneck block per entry of ``widths``.
    """

    kind: ArchKind
    widths: tuple[int, ...]
    hidden: int = 0
    input_shape: tuple[int, int, int] = (1, 8, 8)
    """(channels, height, width) of one input."""

    def __post_init__(self) -> None:
        if self.kind not in ("mlp", "cnn", "resmlp"):
            raise ValueError(f"kind must be 'mlp', 'cnn' or 'resmlp', got {self.kind!r}")
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"widths must be a non-empty tuple of positive ints, got {self.widths!r}")
        if self.kind != "mlp" and self.hidden < 1:
            raise ValueError(f"a {self.kind} needs hidden >= 1, got {self.hidden}")

    @property
    def name(self) -> str:
        """e.g. ``"mlp-256-128"``, ``"cnn-16-32-h64"``, ``"resmlp-256-b64-b128"``."""
        if self.kind == "mlp":
            return "-".join(["mlp", *map(str, self.widths)])
        if self.kind == "cnn":
            return "-".join(["cnn", *map(str, self.widths), f"h{self.hidden}"])
        return "-".join(["resmlp", str(self.hidden), *(f"b{width}" for width in self.widths)])

    def __call__(self, seed: int = 0, num_classes: int = 10) -> nn.Module:
        def build() -> nn.Module:
            if self.kind == "mlp":
                return MLP(prod(self.input_shape), self.widths, num_classes)
            if self.kind == "cnn":
                return PlainCNN(self.input_shape, self.widths, self.hidden, num_classes)
            return ResidualMLP(prod(self.input_shape), self.hidden, self.widths, num_classes)

        return _seeded(build, seed)


ModelFactory = Callable[..., nn.Module]

MODELS: dict[str, ModelFactory] = {
    "mlp_digits": mlp_digits,
    "cnn_digits": cnn_digits,
    "lenet300": lenet300,
    "lenet5": lenet5,
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet56": resnet56,
    "vgg11": vgg11,
    "vgg16": vgg16,
    "vgg19": vgg19,
}


def build_model(name: str | ArchSpec, num_classes: int = 10, seed: int = 0) -> nn.Module:
    """Build a reference network by name, or a generated one from its ``ArchSpec``, with a seeded initialization."""
    if isinstance(name, ArchSpec):
        return name(seed=seed, num_classes=num_classes)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name](num_classes=num_classes, seed=seed)
