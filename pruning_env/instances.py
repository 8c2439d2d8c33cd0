"""Problem instances: one seeded initialization of a network with its scoring batch and proxy scores, cached.

An instance is what one init seed fixes: the initial weights θ0, the scoring batch (``per_class`` training samples
of each class), the within-layer scorer's per-weight scores and a summary of every observation proxy's scores.
Scoring is the expensive part of a reset, so the last ``capacity`` instances are kept.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pruning_env.data import Dataset, scoring_batch
from pruning_env.features import ProxySummary, summarize_proxy
from pruning_env.layers import PrunableLayer
from pruning_env.masking import importance_orders
from pruning_env.scorers import compute_scores

ModelSource = nn.Module | Callable[[int], nn.Module]
"""A network: a module whose own weights are θ0, or a factory ``seed -> module`` giving a seeded init."""


@dataclass(frozen=True)
class Instance:
    """What one init seed fixes."""

    init_seed: int
    state: dict[str, torch.Tensor]
    """The initialization θ0 as a state dict on the env's device (BatchNorm buffers included)."""
    batch: tuple[torch.Tensor, torch.Tensor]
    """Scoring batch: ``per_class`` training samples of each class, on the device."""
    mask_orders: dict[str, torch.Tensor] | None
    """Layer name -> ``masking.importance_order`` of the within-layer scorer's scores of θ0 (None for a
    target-dependent scorer, scored at each step)."""
    summaries: tuple[ProxySummary, ...]
    """``features.summarize_proxy`` of each observation proxy, in order."""


def reinitialize(model: nn.Module, seed: int) -> None:
    """Draw new weights in place with every submodule's own ``reset_parameters``, from ``seed`` alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()


class InstanceCache:
    """Builds and caches instances for a working model.

    Args:
        source: the network (see ``ModelSource``).
        model: the env's working copy of the network on its device; its weights are overwritten.
        layers: the working model's prunable layers.
        data: the dataset on the device.
        proxies: proxy names that feed the observation.
        mask_scorer: the within-layer mask criterion, or None when it depends on the target (scored per step).
        reinit_module: for a module source, whether each init seed draws new weights (``reinitialize``) or the
            module's own weights are θ0 for every seed.
        per_class: scoring batch samples per class.
        capacity: how many instances to keep (least recently used dropped first).
    """

    def __init__(
        self,
        source: ModelSource,
        model: nn.Module,
        layers: Sequence[PrunableLayer],
        data: Dataset,
        proxies: Sequence[str],
        mask_scorer: str | None,
        reinit_module: bool,
        per_class: int = 10,
        capacity: int = 8,
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
        self._instances: OrderedDict[int, Instance] = OrderedDict()
        self._module_state = copy.deepcopy(source.state_dict()) if isinstance(source, nn.Module) else None

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
        generator = torch.Generator().manual_seed(init_seed)
        batch = scoring_batch(self.data, per_class=self.per_class, generator=generator)
        scores = {
            name: compute_scores(name, self.model, self.layers, batch, generator=torch.Generator().manual_seed(init_seed))
            for name in dict.fromkeys((*self.proxies, *([self.mask_scorer] if self.mask_scorer else [])))
        }
        summaries = tuple(summarize_proxy(self.layers, scores[name]) for name in self.proxies)
        mask_orders = importance_orders(scores[self.mask_scorer]) if self.mask_scorer else None
        return Instance(init_seed, state, batch, mask_orders, summaries)
