"""Problem instances: one seeded initialization of a network with its scoring batch and proxy scores, cached.

An instance is what one init seed fixes: the weights a plan prunes (the initial weights θ0, or with a ``trained``
hook the network trained from θ0, ``pruning_env.trained``), the scoring batch (``per_class`` training samples
of each class), the within-layer scorer's per-weight scores and a summary of every observation proxy's scores.
Scoring is the expensive part of a reset, so the last ``capacity`` instances are kept. All scoring of the env
happens here: a target-dependent mask scorer (``scorers.is_target_dependent``) is scored per target, on demand.

Ownership: the cache owns its working model (the network an instance's weights are loaded into for scoring); nobody
else mutates it.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pruning_env.budget import Budget
from pruning_env.data import Dataset, scoring_batch
from pruning_env.features import ProxySummary, summarize_proxy
from pruning_env.layers import PrunableLayer, prunable_layers
from pruning_env.masking import MaskedWeights, importance_orders
from pruning_env.scorers import compute_scores, is_target_dependent

ModelSource = nn.Module | Callable[[int], nn.Module]
"""A network: a module whose own weights are θ0, or a factory ``seed -> module`` giving a seeded init."""
Trained = Callable[[int, nn.Module], dict[str, torch.Tensor]]
"""``(init seed, network holding its θ0) -> the state dict the plan prunes`` (``pruning_env.trained.TrainedWeights``);
it leaves the network as it is."""


@dataclass(frozen=True)
class Instance:
    """What one init seed fixes."""

    init_seed: int
    state: dict[str, torch.Tensor]
    """The weights the plan prunes as a state dict on the env's device (BatchNorm buffers included): the
    initialization θ0, or the network trained from it (``prune_at="trained"``)."""
    batch: tuple[torch.Tensor, torch.Tensor]
    """Scoring batch: ``per_class`` training samples of each class, on the device."""
    mask_orders: dict[str, torch.Tensor] | None
    """Layer name -> ``masking.importance_order`` of the within-layer scorer's scores of ``state`` (None for a
    target-dependent scorer: ``InstanceCache.mask_orders`` scores it per target)."""
    summaries: tuple[ProxySummary, ...]
    """``features.summarize_proxy`` of each observation proxy under the cache's budget, in order."""


def materialize(source: ModelSource) -> nn.Module:
    """A module of one's own built from ``source``: a copy of a module, or the factory's seed-0 network.

    Raises:
        ValueError: if ``source`` is neither a module nor a callable returning one.
    """
    if isinstance(source, nn.Module):
        return copy.deepcopy(source)
    if not callable(source):
        raise ValueError(f"model must be an nn.Module or a factory seed -> nn.Module, got {type(source).__name__}")
    built = source(0)
    if not isinstance(built, nn.Module):
        raise ValueError(f"the model factory must return an nn.Module, it returned {type(built).__name__}")
    return built


def check_outputs(model: nn.Module, data: Dataset) -> None:
    """ValueError unless ``model`` maps a batch of ``data``'s inputs to one logit per class, ``(N, classes)``."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        shape = tuple(model(data.x_train[:2]).shape)
    model.train(was_training)
    if shape != (2, data.num_classes):
        raise ValueError(
            f"{type(model).__name__} gives outputs of shape (N, {', '.join(map(str, shape[1:]))}) on the dataset's "
            f"inputs; the dataset has {data.num_classes} classes, so the head must give (N, {data.num_classes})"
        )


def reinitialize(model: nn.Module, seed: int) -> None:
    """Draw new weights in place with every submodule's own ``reset_parameters``, from ``seed`` alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()


class InstanceCache:
    """Builds, scores and caches instances of one network.

    Args:
        source: the network (see ``ModelSource``).
        model: the cache's own working copy of the network on the data's device; its weights are overwritten.
        layers: that model's prunable layers.
        data: the dataset on the device.
        proxies: proxy names that feed the observation.
        mask_scorer: the within-layer mask criterion (target-dependent scorers are scored per target).
        reinit_module: for a module source, whether each init seed draws new weights (``reinitialize``) or the
            module's own weights are θ0 for every seed.
        per_class: scoring batch samples per class.
        capacity: how many instances to keep (least recently used dropped first).
        budget: the budget the proxies' global rankings are for (``"weights"`` or ``"flops"``).
        trained: what the plan prunes instead of θ0 (``Trained``); None: θ0 itself.
    """

    def __init__(
        self,
        source: ModelSource,
        model: nn.Module,
        layers: Sequence[PrunableLayer],
        data: Dataset,
        proxies: Sequence[str],
        mask_scorer: str,
        reinit_module: bool,
        per_class: int = 10,
        capacity: int = 8,
        budget: Budget = "weights",
        trained: Trained | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.source = source
        self.model = model
        self.layers = list(layers)
        self.data = data
        self.proxies = tuple(proxies)
        self.mask_scorer = mask_scorer
        self.reinit_module = reinit_module
        self.per_class = per_class
        self.capacity = capacity
        self.budget = budget
        self.trained = trained
        self._instances: OrderedDict[int, Instance] = OrderedDict()
        self._module_state = copy.deepcopy(source.state_dict()) if isinstance(source, nn.Module) else None
        self._target_orders: OrderedDict[tuple[int, float], dict[str, torch.Tensor]] = OrderedDict()

    @classmethod
    def of_network(
        cls, source: ModelSource, data: Dataset, proxies: Sequence[str], mask_scorer: str, reinit_module: bool,
        capacity: int = 8, budget: Budget = "weights", trained: Trained | None = None,
    ) -> InstanceCache:
        """A cache over its own copy of the network of ``source``, on ``data``'s device (layers discovered on it)."""
        model = materialize(source).to(data.device)
        layers = prunable_layers(model, data.x_train[:2])
        check_outputs(model, data)
        return cls(source, model, layers, data, proxies, mask_scorer, reinit_module, capacity=capacity, budget=budget,
                   trained=trained)

    def __contains__(self, init_seed: int) -> bool:
        return init_seed in self._instances

    def get(self, init_seed: int) -> Instance:
        """The instance of ``init_seed``, built on first use."""
        if init_seed in self._instances:
            self._instances.move_to_end(init_seed)
            return self._instances[init_seed]
        instance = self._build(init_seed)
        self._instances[init_seed] = instance
        if len(self._instances) > self.capacity:
            self._instances.popitem(last=False)
        return instance

    def mask_orders(self, instance: Instance, target_sparsity: float) -> dict[str, torch.Tensor]:
        """The within-layer importance orders of ``instance`` at a target: the instance's own, or for a
        target-dependent scorer the scores of its ``state`` at ``target_sparsity`` (the last ``capacity`` kept)."""
        if instance.mask_orders is not None:
            return instance.mask_orders
        key = (instance.init_seed, target_sparsity)
        if key not in self._target_orders:
            self.model.load_state_dict(instance.state)
            scores = self._scores(self.mask_scorer, instance, sparsity=target_sparsity)
            self._target_orders[key] = importance_orders(scores)
            if len(self._target_orders) > self.capacity:
                self._target_orders.popitem(last=False)
        return self._target_orders[key]

    def pruned_model(self, instance: Instance, masks: dict[str, torch.Tensor]) -> nn.Module:
        """A new copy of the network holding ``instance``'s ``state`` with the pruned weights set to zero."""
        model = copy.deepcopy(self.model)
        model.load_state_dict(instance.state)
        MaskedWeights.from_layers(prunable_layers(model, self.data.x_train[:2]), masks).reapply()
        return model

    def _scores(self, name: str, instance: Instance, **options: object) -> dict[str, torch.Tensor]:
        """Scores of the working model (holding ``instance``'s ``state``) by ``name``, seeded by the init seed."""
        generator = torch.Generator().manual_seed(instance.init_seed)
        return compute_scores(name, self.model, self.layers, instance.batch, generator=generator, **options)

    def _initial_state(self, init_seed: int) -> dict[str, torch.Tensor]:
        if self._module_state is None:
            fresh = self.source(init_seed)  # type: ignore[operator]
            self.model.load_state_dict(fresh.state_dict())
        else:
            self.model.load_state_dict(self._module_state)
            if self.reinit_module:
                reinitialize(self.model, init_seed)
        return {key: value.detach().clone() for key, value in self.model.state_dict().items()}

    def _build(self, init_seed: int) -> Instance:
        state = self._initial_state(init_seed)
        if self.trained is not None:
            state = self.trained(init_seed, self.model)
            self.model.load_state_dict(state)
        generator = torch.Generator().manual_seed(init_seed)
        batch = scoring_batch(self.data, per_class=self.per_class, generator=generator)
        scratch = Instance(init_seed, state, batch, None, ())
        scored_mask = None if is_target_dependent(self.mask_scorer) else self.mask_scorer
        scores = {
            name: self._scores(name, scratch)
            for name in dict.fromkeys((*self.proxies, *([scored_mask] if scored_mask else [])))
        }
        summaries = tuple(summarize_proxy(self.layers, scores[name], self.budget) for name in self.proxies)
        mask_orders = importance_orders(scores[scored_mask]) if scored_mask else None
        return Instance(init_seed, state, batch, mask_orders, summaries)
