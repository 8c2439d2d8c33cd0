"""Saliency scores for pruning at initialization, one tensor per prunable layer.

Every scorer has the signature ``score(model, layers, batch, *, <its own keyword options>)`` and declares only the
options it uses (``random``: ``generator``; ``grasp``: ``temperature``; ``synflow_iterative``: ``sparsity``,
``rounds``). ``compute_scores`` passes each scorer the options it takes, so one set of options (e.g. the env's
generator and target) serves every scorer. A scorer with a required ``sparsity`` is target-dependent
(``is_target_dependent``): it is scored per target, not once per initialization. Each returns
``{layer.name: Tensor}`` with each tensor shaped like the layer's weight, float32, on the weight's device, where a
HIGHER score means "keep first": a global or per-layer top-k on the scores gives the kept weights.

| name              | score per weight θ                                   | data | model mode used        |
|-------------------|------------------------------------------------------|------|------------------------|
| magnitude         | abs(θ)                                               | no   | -                      |
| random            | uniform in [0, 1) from ``generator``                 | no   | -                      |
| snip              | abs(θ · ∂L/∂θ)                                       | yes  | the model's own        |
| grasp             | θ · (H g), H g = Hessian-gradient product (see grasp)| yes  | the model's own        |
| synflow           | abs(θ · ∂R/∂θ), R = sum of outputs of the abs'd net  | no*  | eval                   |
| synflow_iterative | SynFlow re-scored over ``rounds`` masking rounds     | no*  | eval                   |
| grad_norm         | abs(∂L/∂θ)                                           | yes  | the model's own        |
| fisher            | ½ θ² · mean over samples of (∂ℓ_n/∂θ)²               | yes  | the model's own        |
| wanda             | abs(θ) · ‖x_j‖₂, x_j the input θ multiplies          | yes  | the model's own        |

L is the mean cross-entropy of the batch, ℓ_n the cross-entropy of sample n. (*) SynFlow only uses the shape of
one input sample. "The model's own" mode: a model in train mode scores with BatchNorm batch statistics, in eval
mode with running statistics.

Scorers never change the caller's model: they work on ``copy.deepcopy(model)`` and find each layer in the copy by
its name, so the caller's weights, ``.grad`` fields, buffers (BatchNorm running statistics) and training flag are
as they were. They also run under ``torch.no_grad()`` callers (gradients are enabled locally).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pruning_env.budget import target_count
from pruning_env.layers import PrunableLayer, layers_by_name
from pruning_env.masking import importance_order

ScoreFn = Callable[..., dict[str, Tensor]]
Batch = tuple[Tensor, Tensor]


def _weights(model: nn.Module, layers: Sequence[PrunableLayer]) -> dict[str, Tensor]:
    """The weight of each layer as found by name in ``model``."""
    return {name: module.weight for name, module in layers_by_name(model, list(layers)).items()}


def _working_copy(model: nn.Module, layers: Sequence[PrunableLayer]) -> tuple[nn.Module, dict[str, Tensor]]:
    """A deep copy of ``model`` and its layer weights (by name), ready to take gradients."""
    work = copy.deepcopy(model)
    weights = _weights(work, layers)
    for weight in weights.values():
        weight.requires_grad_(True)
    return work, weights


def _on_device(batch: Batch, device: torch.device) -> Batch:
    inputs, targets = batch
    if inputs.ndim < 1 or inputs.shape[0] < 1 or targets.shape != (inputs.shape[0],):
        raise ValueError(
            f"batch must be (inputs (N, ...), targets (N,)) with N >= 1; got {tuple(inputs.shape)} and "
            f"{tuple(targets.shape)}"
        )
    return inputs.to(device), targets.to(device)


def _float32(scores: dict[str, Tensor]) -> dict[str, Tensor]:
    return {name: score.detach().to(torch.float32) for name, score in scores.items()}


@contextlib.contextmanager
def _exact_float32() -> Iterator[None]:
    """Compute in true float32: no TF32, which PyTorch allows by default in cuDNN convolutions on recent GPUs.

    Measured on an H200 (ResNet-20, 100 samples): with TF32, SNIP and GraSP scores differed from CPU ones by up to
    5% of the largest score and 5% of the top-10% weights changed; without it 0.15% and 0.1%, at no cost in time.
    The caller's settings are restored afterwards.
    """
    cudnn_tf32, matmul_precision = torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = cudnn_tf32
        torch.set_float32_matmul_precision(matmul_precision)


def _loss_gradients(
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    batch: Batch,
    *,
    create_graph: bool = False,
    temperature: float = 1.0,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Weights of a working copy of ``model`` and the gradients at them of the batch's mean cross-entropy of
    ``logits / temperature``; with ``create_graph`` the gradients can be differentiated again."""
    work, weights = _working_copy(model, layers)
    inputs, targets = _on_device(batch, next(iter(weights.values())).device)
    with torch.enable_grad():
        loss = F.cross_entropy(work(inputs) / temperature, targets)
        grads = torch.autograd.grad(
            loss, list(weights.values()), create_graph=create_graph, materialize_grads=True
        )
    return weights, dict(zip(weights, grads, strict=True))


# Magnitude pruning (Han et al. 2015, "Learning both weights and connections"): keep the largest |θ|.
def magnitude(
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    batch: Batch,
) -> dict[str, Tensor]:
    """``|θ|`` per weight. ``batch`` is unused."""
    return _float32({name: weight.detach().abs() for name, weight in _weights(model, layers).items()})


def lamp_scores(weights: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """LAMP scores (Lee et al. 2021): ``w_u^2 / sum_{v >= u} w_v^2`` with each layer's weights sorted by ``w^2``
    ascending, so a layer's largest weight scores 1.

    Ties in ``w^2`` follow ``masking.importance_order`` (the lower flat index counts as larger), so LAMP masks
    equal magnitude masks within a layer. Computed in float64, returned float32; 0 where the sum is 0.
    """
    scores = {}
    for name, weight in weights.items():
        squared = weight.detach().double().flatten() ** 2
        order = importance_order(squared)
        # In descending order the ascending suffix sum sum_{v >= u} is the inclusive prefix sum.
        mass = torch.cumsum(squared[order], dim=0)
        ranked = torch.where(mass > 0, squared[order] / mass.clamp_min(torch.finfo(torch.float64).tiny), 0.0)
        layer_scores = torch.empty_like(squared)
        layer_scores[order] = ranked
        scores[name] = layer_scores.view(weight.shape).float()
    return scores


# Layer-adaptive magnitude pruning (Lee et al. 2021, "Layer-adaptive sparsity for the magnitude-based pruning")
def lamp(
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    batch: Batch,
) -> dict[str, Tensor]:
    """``lamp_scores`` of the weights: magnitude normalized per layer, for a global ranking. ``batch`` unused."""
    return lamp_scores(_weights(model, layers))


# Random pruning baseline (e.g. Liu et al. 2022, "The unreasonable effectiveness of random pruning").
def random(
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    batch: Batch,
    *,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Independent uniform draws in [0, 1) per weight, layers in the given order.

    Draws are made on the generator's device and moved to the weight's device, so one seed gives the same scores
    on CPU and CUDA. ``generator=None`` draws from torch's global CPU random state (and so advances it).
    """
    device = generator.device if generator is not None else torch.device("cpu")
    return {
        name: torch.rand(weight.shape, generator=generator, device=device).to(weight.device)
        for name, weight in _weights(model, layers).items()
    }


# SNIP (Lee et al. 2019, "SNIP: Single-shot network pruning based on connection sensitivity"), Eq. 6.
@_exact_float32()
def snip(
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    batch: Batch,
) -> dict[str, Tensor]:
    """Connection sensitivity ``|θ · ∂L/∂θ|`` on the batch (mean cross-entropy); the unnormalized form of Eq. 6."""
    weights, grads = _loss_gradients(model, layers, batch)
    return _float32({name: (weights[name] * grads[name]).abs() for name in weights})


# GraSP (Wang et al. 2020, "Picking winning tickets before training by preserving gradient flow"), Eq. 8.
@_exact_float32()
def grasp(
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    batch: Batch,
    *,
    temperature: float = 200.0,
) -> dict[str, Tensor]:
    """Gradient-flow preservation score ``θ · (H g)``; higher = keep.

    The paper scores ``S(-θ) = -θ ⊙ Hg`` and REMOVES the weights with the HIGHEST S (removing them reduces gradient
    flow the least, or increases it). We return ``-S = θ ⊙ Hg`` so that, like every scorer here, the highest
    scores are kept; the value can be negative. ``g = ∂L/∂θ`` (held constant) and ``Hg = ∂(gᵀ ∂L/∂θ)/∂θ`` by double
    backpropagation, with L the mean cross-entropy of the logits divided by ``temperature`` (200 in the paper's
    code, also used by Synaptic-Flow). H is the Hessian of L with respect to the prunable weights only.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    weights, grads = _loss_gradients(model, layers, batch, create_graph=True, temperature=temperature)
    with torch.enable_grad():
        flow = sum((grad * grad.detach()).sum() for grad in grads.values())
        hessian_grads = torch.autograd.grad(flow, list(weights.values()), materialize_grads=True)
    return _float32({name: weights[name] * hg for name, hg in zip(weights, hessian_grads, strict=True)})


def _synflow_setup(
    model: nn.Module, layers: Sequence[PrunableLayer], input_shape: Sequence[int]
) -> tuple[nn.Module, dict[str, Tensor], Tensor]:
    """Float64 eval-mode copy with every floating parameter and buffer made non-negative, and a ones input."""
    work = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for tensor in work.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    weights = _weights(work, layers)
    for weight in weights.values():
        weight.requires_grad_(True)
    device = next(iter(weights.values())).device
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
    return work, weights, ones


def _synaptic_flow(work: nn.Module, weights: dict[str, Tensor], ones: Tensor) -> dict[str, Tensor]:
    """``|θ · ∂R/∂θ|`` in float64 for the current (non-negative) weights of ``work``."""
    with torch.enable_grad():
        flow = work(ones).sum()
        grads = torch.autograd.grad(flow, list(weights.values()), materialize_grads=True)
    return {
        name: (weight * grad).abs().detach()
        for (name, weight), grad in zip(weights.items(), grads, strict=True)
    }


def synaptic_flow(model: nn.Module, layers: Sequence[PrunableLayer], input_shape: Sequence[int]) -> float:
    """SynFlow's objective R of ``model`` as it is (pruned weights included as zeros), unnormalized, in float64.

    R = 1ᵀ f(1; |θ|): the sum of the outputs of a float64 eval-mode copy whose parameters and floating buffers are
    replaced by their absolute values, on an all-ones input of shape ``(1, *input_shape)``. For a bias-free
    network of linear layers and ReLUs, R = 1ᵀ |W_L| … |W_1| 1, the path norm: the sum over all input-output paths
    of the product of their weights' magnitudes. Zeroing weights never raises it. The caller's model is unchanged.
    """
    work, _, ones = _synflow_setup(model, layers, input_shape)
    with torch.no_grad():
        return float(work(ones).sum())


def _rescaled(scores: dict[str, Tensor]) -> dict[str, Tensor]:
    """Divide float64 scores by their global maximum (when positive) so the float32 cast cannot overflow.

    SynFlow's R grows geometrically with depth (the largest ResNet-56 score at init is about 6e48, beyond
    float32's 3.4e38); one factor for all layers keeps every ranking, local and global.
    """
    peak = max(float(score.max()) for score in scores.values())
    return {name: score / peak for name, score in scores.items()} if peak > 0 else scores


# SynFlow (Tanaka et al. 2020, "Pruning neural networks without any data by iteratively conserving synaptic flow").
def synflow(
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    batch: Batch,
) -> dict[str, Tensor]:
    """Synaptic saliency ``|θ · ∂R/∂θ|`` of one round, rescaled so the largest score is 1.

    R = sum of the outputs of a float64 copy of the net in eval mode whose parameters AND floating buffers (as in
    Synaptic-Flow, which takes abs of the whole ``state_dict``) are replaced by their absolute values, on an
    all-ones input of one sample's shape ``batch[0].shape[1:]``. Only that shape is read from the batch.
    """
    work, weights, ones = _synflow_setup(model, layers, batch[0].shape[1:])
    return _float32(_rescaled(_synaptic_flow(work, weights, ones)))


# SynFlow, iterative (Tanaka et al. 2020, Algorithm 1): prune to ρ^(k/n) over n rounds, re-scoring each round.
def synflow_iterative(
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    batch: Batch,
    *,
    sparsity: float,
    rounds: int = 100,
) -> dict[str, Tensor]:
    """Iterative SynFlow encoded as scores whose global top-k at ``sparsity`` is the iterative mask.

    Round k = 1..rounds scores the masked net (pruned weights set to 0) and removes, globally over all layers, the
    lowest-scoring still-kept weights until ``budget.target_count(N, 1 - ρ^(k/rounds))`` are removed in all,
    ρ = 1 - sparsity, N = total weights (the last round uses ``sparsity`` itself, free of float round-off).

    Returned scores: a weight still kept after the last round gets its last-round SynFlow score rescaled to
    [0, 1] (>= 0); a weight removed in round k gets ``k - rounds - 1`` (-rounds ... -1): below every kept
    weight, and lower the earlier it was removed (ties within a round). So a global top-k that prunes
    ``budget.target_count(N, sparsity)`` weights reproduces the iterative mask exactly; a per-layer top-k does not.

    Raises:
        ValueError: if ``sparsity`` is not in [0, 1] or ``rounds`` < 1.
    """
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    work, weights, ones = _synflow_setup(model, layers, batch[0].shape[1:])
    originals = {name: weight.detach().clone() for name, weight in weights.items()}
    removed_in = {name: torch.zeros_like(weight, dtype=torch.int64) for name, weight in weights.items()}
    num_weights = sum(weight.numel() for weight in weights.values())
    for k in range(1, rounds + 1):
        with torch.no_grad():
            for name, weight in weights.items():
                weight.copy_(originals[name] * (removed_in[name] == 0))
        scores = _synaptic_flow(work, weights, ones)
        alive = torch.cat(
            [torch.where(removed_in[name] == 0, scores[name], -math.inf).flatten() for name in scores]
        )
        round_sparsity = sparsity if k == rounds else 1.0 - (1.0 - sparsity) ** (k / rounds)
        keep = torch.zeros_like(alive, dtype=torch.bool)
        keep[torch.topk(alive, num_weights - target_count(num_weights, round_sparsity)).indices] = True
        for name, kept in zip(scores, keep.split([s.numel() for s in scores.values()]), strict=True):
            removed_in[name][(removed_in[name] == 0) & ~kept.view_as(scores[name])] = k
    final = _rescaled(scores)
    return _float32(
        {
            name: torch.where(removed_in[name] == 0, final[name], removed_in[name] - rounds - 1.0)
            for name in final
        }
    )


# GradNorm per weight (the gradient-magnitude baseline of Abdelfattah et al. 2021, "Zero-cost proxies").
@_exact_float32()
def grad_norm(
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    batch: Batch,
) -> dict[str, Tensor]:
    """``|∂L/∂θ|`` per weight on the batch (the per-weight terms of the layer's gradient norm; θ itself unused)."""
    _, grads = _loss_gradients(model, layers, batch)
    return _float32({name: grad.abs() for name, grad in grads.items()})


# Fisher pruning per weight (Theis et al. 2018, "Faster gaze prediction with dense networks and Fisher pruning").
@_exact_float32()
def fisher(
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    batch: Batch,
) -> dict[str, Tensor]:
    """Loss increase from removing one weight, ``½ θ² F``, with F the per-sample empirical Fisher diagonal.

    ``F = (1/N) Σ_n (∂ℓ_n/∂θ)²`` with ℓ_n the cross-entropy of sample n of ONE forward pass of the whole batch in
    the model's own mode (in train mode each ℓ_n depends on the batch through BatchNorm statistics). This is the
    real empirical Fisher, not the batch approximation ``(∂L/∂θ)²``, which would rank exactly like SNIP. Cost: N
    backward passes through the batch graph (about 40x SNIP for a 100-sample batch on ResNet-20, CPU).
    """
    work, weights = _working_copy(model, layers)
    inputs, targets = _on_device(batch, next(iter(weights.values())).device)
    squares = {name: torch.zeros_like(weight).detach() for name, weight in weights.items()}
    with torch.enable_grad():
        losses = F.cross_entropy(work(inputs), targets, reduction="none")
        for n in range(losses.shape[0]):
            grads = torch.autograd.grad(
                losses[n],
                list(weights.values()),
                retain_graph=n + 1 < losses.shape[0],
                materialize_grads=True,
            )
            for name, grad in zip(weights, grads, strict=True):
                squares[name] += grad.square()
    return _float32(
        {name: 0.5 * weights[name].detach().square() * squares[name] / losses.shape[0] for name in weights}
    )


# Wanda (Sun et al. 2024, "A simple and effective pruning approach for large language models"): weights times
# the norm of the activations they multiply, for pruning trained networks without retraining.
def wanda(
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    batch: Batch,
) -> dict[str, Tensor]:
    """``|θ_oj| · ‖x_j‖₂`` per weight, ``x_j`` the layer input that θ_oj multiplies, over the batch: every sample
    (and position) of a Linear's input feature j; every sample and output position of the input patch element j
    (channel and kernel tap, ``F.unfold``'s columns) of a convolution, within the weight's group. One forward pass
    of the batch in the model's own mode; the targets are unused."""
    work = copy.deepcopy(model)
    modules = layers_by_name(work, list(layers))
    inputs, _ = _on_device(batch, next(iter(modules.values())).weight.device)
    norms: dict[str, Tensor] = {}

    def record(name: str, module: nn.Module) -> Callable[..., None]:
        def hook(_: nn.Module, args: tuple[Tensor, ...]) -> None:
            norms[name] = _input_norms(module, args[0].detach())
        return hook

    handles = [module.register_forward_pre_hook(record(name, module)) for name, module in modules.items()]
    try:
        with torch.no_grad():
            work(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return _float32({name: module.weight.detach().abs() * norms[name] for name, module in modules.items()})


def _input_norms(module: nn.Module, x: Tensor) -> Tensor:
    """The L2 norm of each input element a weight of ``module`` multiplies, shaped to broadcast on its weight."""
    if isinstance(module, nn.Linear):
        return x.reshape(-1, x.shape[-1]).double().norm(dim=0).to(x.dtype)[None, :]
    conv: nn.modules.conv._ConvNd = module  # type: ignore[assignment]
    dims = len(conv.kernel_size)
    if dims == 1:  # as a 2-d convolution of height 1
        x, kernel, padding, dilation, stride = (x.unsqueeze(2), (1, *conv.kernel_size), (0, *conv.padding),
                                                (1, *conv.dilation), (1, *conv.stride))
    elif dims == 2:
        kernel, padding, dilation, stride = conv.kernel_size, conv.padding, conv.dilation, conv.stride
    else:
        raise ValueError(f"wanda scores Linear, Conv1d and Conv2d layers, got {type(module).__name__}")
    if isinstance(padding, str):
        raise ValueError(f"wanda needs numeric padding, got padding={padding!r}")
    columns = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)  # (N, C·prod(kernel), P)
    norms = columns.transpose(0, 1).reshape(columns.shape[1], -1).double().norm(dim=1).to(x.dtype)
    groups, out = conv.groups, conv.out_channels
    per_group = norms.reshape(groups, 1, *conv.weight.shape[1:])  # (groups, 1, C / groups, *kernel)
    return per_group.expand(groups, out // groups, *conv.weight.shape[1:]).reshape(conv.weight.shape)


SCORERS: dict[str, ScoreFn] = {
    "magnitude": magnitude,
    "random": random,
    "snip": snip,
    "grasp": grasp,
    "synflow": synflow,
    "synflow_iterative": synflow_iterative,
    "grad_norm": grad_norm,
    "fisher": fisher,
    "lamp": lamp,
    "wanda": wanda,
}


def get_scorer(name: str) -> ScoreFn:
    """The scorer registered under ``name``.

    Raises:
        ValueError: if ``name`` is not registered; the message lists the known names.
    """
    if name not in SCORERS:
        raise ValueError(f"unknown scorer {name!r}; known scorers: {', '.join(SCORERS)}")
    return SCORERS[name]


def _keyword_options(scorer: ScoreFn) -> dict[str, inspect.Parameter]:
    return {
        param.name: param
        for param in inspect.signature(scorer).parameters.values()
        if param.kind is inspect.Parameter.KEYWORD_ONLY
    }


def is_target_dependent(name: str) -> bool:
    """Whether the scorer ``name`` needs the target sparsity (a required ``sparsity`` option) to score."""
    parameter = _keyword_options(get_scorer(name)).get("sparsity")
    return parameter is not None and parameter.default is inspect.Parameter.empty


def compute_scores(
    name: str, model: nn.Module, layers: Sequence[PrunableLayer], batch: Batch, **options: object
) -> dict[str, Tensor]:
    """Run the scorer ``name``, passing it those of the keyword ``options`` it declares.

    One set of options (``generator``, ``sparsity``, ``rounds``, ``temperature``) fits every scorer: an option
    that another scorer takes but this one does not (``sparsity`` for snip, say) is not passed to it.

    Raises:
        ValueError: for an unknown scorer, an option name no scorer takes (a typo), or a required option of this
            scorer (``sparsity`` for synflow_iterative) left out.
    """
    scorer = get_scorer(name)
    known = sorted({option for fn in SCORERS.values() for option in _keyword_options(fn)})
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown scorer options {unknown}; known options: {', '.join(known)}")
    declared = _keyword_options(scorer)
    missing = sorted(
        option for option, param in declared.items() if param.default is inspect.Parameter.empty and option not in options
    )
    if missing:
        raise ValueError(f"scorer {name!r} needs options {missing}")
    return scorer(model, layers, batch, **{option: value for option, value in options.items() if option in declared})
