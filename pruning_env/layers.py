"""Discovery of the prunable layers of any ``nn.Module``.

A prunable layer is a module of type Linear or Conv1d/2d/3d whose ``weight`` is a Parameter. Bias, BatchNorm and
every other parameter are never pruned. Layers are returned in *forward order*: the order in which a forward pass
on an example input first calls them. A module used several times (weight sharing) is one layer; its FLOPs sum
over its calls. Modules that hold a weight but are never called by the forward pass come last, with 0 FLOPs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

PRUNABLE_TYPES: dict[type[nn.Module], str] = {
    nn.Linear: "linear",
    nn.Conv1d: "conv1d",
    nn.Conv2d: "conv2d",
    nn.Conv3d: "conv3d",
}


@dataclass(frozen=True)
class PrunableLayer:
    """One prunable weight tensor of a model, with the static facts the features and allocations need.

    ``flops`` counts multiply-accumulates of this weight per input sample (the pruning literature's FLOPs
    convention): for a Linear, ``in_features * out_features`` per position; for a conv, ``weight.numel()`` per
    output position. ``fan_in`` is ``weight[0].numel()`` (inputs seen by one output unit: in/groups x kernel),
    ``fan_out`` is ``out_channels x prod(kernel_size)``.
    """

    index: int
    name: str
    kind: str
    weight_shape: tuple[int, ...]
    num_weights: int
    flops: int
    fan_in: int
    fan_out: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    groups: int
    module: nn.Module = field(compare=False, repr=False)

    @property
    def weight(self) -> nn.Parameter:
        """The live weight Parameter of the layer (shape ``weight_shape``)."""
        return self.module.weight  # type: ignore[return-value]


def _is_prunable(module: nn.Module) -> bool:
    return type(module) in PRUNABLE_TYPES and isinstance(getattr(module, "weight", None), nn.Parameter)


def _output_positions(output: torch.Tensor, kind: str, batch_size: int) -> int:
    """Spatial positions (conv) or leading positions (linear) per sample of one call's output."""
    if kind == "linear":
        return output.numel() // (batch_size * output.shape[-1])
    return output[0, 0].numel()


def prunable_layers(model: nn.Module, example_input: torch.Tensor) -> list[PrunableLayer]:
    """Find the prunable layers of ``model`` in forward order.

    Args:
        model: any module; it is not changed (training flag, buffers such as BatchNorm statistics, weights).
        example_input: a batch ``(N, *input_shape)`` on the model's device; N >= 1. Used once, without gradients,
            to order the layers and to measure FLOPs per sample.

    Returns:
        One ``PrunableLayer`` per distinct weight-bearing Linear/Conv module, ``index`` 0..L-1 in forward order.

    Raises:
        ValueError: if the model has no prunable layer, or its forward fails on ``example_input`` (the message
            names the model, the input shape and torch's error).
    """
    names: dict[nn.Module, str] = {}
    for name, module in model.named_modules():  # named_modules() yields a shared module once
        if _is_prunable(module):
            names.setdefault(module, name)
    if not names:
        raise ValueError(
            f"{type(model).__name__} has no prunable layer (Linear or Conv1d/2d/3d with a weight Parameter)"
        )
    batch_size = example_input.shape[0]
    call_order: list[nn.Module] = []
    positions: dict[nn.Module, int] = {}

    def record(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        if module not in positions:
            call_order.append(module)
            positions[module] = 0
        positions[module] += _output_positions(output, PRUNABLE_TYPES[type(module)], batch_size)

    handles = [module.register_forward_hook(record) for module in names]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example_input)
    except RuntimeError as error:
        raise ValueError(
            f"{type(model).__name__} does not run on the dataset's inputs of shape (N, "
            f"{', '.join(str(size) for size in example_input.shape[1:])}): {error}"
        ) from error
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()

    ordered = call_order + [module for module in names if module not in positions]
    return [_describe(index, names[module], module, positions.get(module, 0)) for index, module in enumerate(ordered)]


def _describe(index: int, name: str, module: nn.Module, positions: int) -> PrunableLayer:
    kind = PRUNABLE_TYPES[type(module)]
    shape = tuple(module.weight.shape)
    num_weights = module.weight.numel()
    if kind == "linear":
        kernel_size: tuple[int, ...] = ()
        stride: tuple[int, ...] = ()
        groups = 1
    else:
        kernel_size = tuple(module.kernel_size)
        stride = tuple(module.stride)
        groups = module.groups
    kernel_volume = int(torch.tensor(kernel_size, dtype=torch.long).prod()) if kernel_size else 1
    return PrunableLayer(
        index=index,
        name=name,
        kind=kind,
        weight_shape=shape,
        num_weights=num_weights,
        flops=num_weights * positions,
        fan_in=num_weights // shape[0],
        fan_out=shape[0] * kernel_volume,
        kernel_size=kernel_size,
        stride=stride,
        groups=groups,
        module=module,
    )


def layer_weights(layers: list[PrunableLayer]) -> dict[str, torch.Tensor]:
    """The live weight of each layer, keyed by layer name."""
    return {layer.name: layer.weight for layer in layers}


def total_weights(layers: list[PrunableLayer]) -> int:
    """Number of prunable weights in all layers."""
    return sum(layer.num_weights for layer in layers)


def macs_per_weight(layers: Sequence[PrunableLayer]) -> np.ndarray:
    """Multiply-accumulates per sample of one weight of each layer, ``(L,)`` int64: ``flops / num_weights``.

    Exact: ``flops`` is the weight count times the output positions per sample. With unstructured masks a layer's
    MACs are this times its kept weights. A layer the forward pass never calls has 0.
    """
    return np.array([layer.flops // layer.num_weights for layer in layers], dtype=np.int64)


def layers_by_name(model: nn.Module, layers: list[PrunableLayer]) -> Mapping[str, nn.Module]:
    """The modules of ``model`` (e.g. a copy of the original) that carry the given layers' names."""
    return {layer.name: model.get_submodule(layer.name) for layer in layers}
