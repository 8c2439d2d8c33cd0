"""PruningEnv: one-shot layer-wise pruning at initialization as a PettingZoo ParallelEnv (ARLP's setting).

## Description
Before any training, decide for every prunable layer (Linear, Conv1d/2d/3d weight) of a network what fraction of
its weights to remove, so that the whole network meets a global sparsity target exactly and trains to the best
accuracy. Each layer is an agent. An episode is one step: the agents observe meta-features of their layer computed
from zero-cost pruning-at-initialization proxies, each requests a sparsity, the requests are projected onto the
exact budget, the initialization is pruned with the within-layer scorer's masks, and the team is rewarded with the
pruned network's proxy accuracy.

## Agents
``layer_0 … layer_{L-1}``, the prunable layers in forward order (``env.layers[i]`` describes ``layer_i``). All
agents share one observation space and one action space.

## Observation Space
``Box(-10, 10, (F,), float32)``: the per-layer meta-features documented in ``pruning_env.features`` (their names:
``env.feature_names``). With the default five proxies F = 34. ``state()`` is every agent's observation stacked,
flattened to ``(L * F,)``, for centralized critics.

## Action Space
- ``action_type="continuous"``: ``Box(0, 1, (1,), float32)``, the requested sparsity of the layer. Finite values
  outside [0, 1] are clipped (``clipped`` = 1 in that agent's infos); NaN or inf is a ValueError.
- ``action_type="discrete"``: ``Discrete(action_bins)``; bin i requests sparsity i / (action_bins - 1).

Requests are relative: ``pruning_env.budget.project_to_budget`` shifts them monotonically (in logit space) so the
number of pruned weights equals round(target x total) exactly, every layer keeps at least one weight, and a layer
that asked for more never gets less. A plan that already meets the budget is applied as it is.

## Rewards
The same team reward for every agent; the kind is chosen with ``reward`` (see ``pruning_env.rewards``): validation
accuracy after ``reward_steps`` masked training steps (default), minus the validation loss, a zero-cost SynFlow
reward, or validation accuracy after the task's full training. The test split is never used. A diverged training
earns the lowest reward and ``diverged`` = 1.

## Episode End
After the single step every agent is terminated (``terminations`` all True, ``truncations`` all False) and
``env.agents`` is empty; call ``reset``.

## Infos
The same numeric keys for every agent at reset and at step (zeros at reset): ``requested_sparsity``,
``applied_sparsity`` (this layer), ``clipped`` (0/1, this agent's request was clipped), ``target_sparsity``,
``global_sparsity`` (achieved, = pruned / total), ``any_clipped``, ``diverged``, ``accuracy`` and ``loss`` (of the
reward's evaluation; NaN for the zero-cost reward), ``reward_seconds``, ``step_seconds``, ``reset_seconds``,
``init_seed``.

## Arguments
| argument        | default        | meaning                                                                   |
|-----------------|----------------|---------------------------------------------------------------------------|
| task            | "mlp-digits"   | a name or id from ``pruning_env.TASKS``; it supplies every default below  |
| model           | task's network | an nn.Module (its weights are θ0) or a factory ``seed -> nn.Module``      |
| data            | task's dataset | a ``pruning_env.data.Dataset``                                            |
| target_sparsity | task's target  | a float in [0, 1), or a (low, high) range sampled uniformly per episode   |
| scorer          | "snip"         | within-layer mask criterion, a name from ``pruning_env.scorers.SCORERS``  |
| features        | 5 proxies      | proxies that feed the observation (magnitude, snip, grasp, synflow, lamp)  |
| reward          | "accuracy"     | "accuracy", "neg_loss", "zero_cost" or "full"                             |
| reward_steps    | task's K       | training steps of the accuracy / neg_loss rewards                         |
| action_type     | "continuous"   | "continuous" or "discrete"                                                |
| action_bins     | 21             | number of discrete sparsity levels                                        |
| init            | "fixed"        | "fixed": θ0 from the reset seed; "per_episode": a new θ0 every episode;  |
|                 |                | an int s: θ0 of seed s in every episode (reset seeds then vary the rest)  |
| device          | "auto"         | "auto" (CUDA when present), "cpu", "cuda", or a torch.device              |
| seed            | None           | seed of the first reset when ``reset`` is called without one              |
| render_mode     | None           | None, "ansi" (returns a table) or "human" (prints it)                     |

## Seeding
``reset(seed=s)`` fixes everything: the initialization (its seed is s with ``init="fixed"``, drawn from s's RNG
with ``"per_episode"``, always s0 with ``init=s0``), the scoring batch, the target drawn from a range, and the
reward's minibatch order (derived from the init seed, so one plan on one instance always earns the same reward
on one device).
``reset()`` without a seed continues the RNG. A module passed as ``model`` keeps its own weights as θ0 with
``init="fixed"``; with ``"per_episode"`` each init seed redraws them with the modules' ``reset_parameters``.

## Version History
- v0: initial release.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import gymnasium
import numpy as np
import torch
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv
from torch import nn

from pruning_env.budget import project_to_budget
from pruning_env.data import Dataset, load_dataset
from pruning_env.features import FEATURE_CLIP, feature_names, observation_matrix, static_features
from pruning_env.instances import Instance, InstanceCache, ModelSource
from pruning_env.layers import PrunableLayer, prunable_layers, total_weights
from pruning_env.masking import MaskedWeights, importance_orders, masks_from_orders
from pruning_env.models import build_model
from pruning_env.rewards import RewardEvaluator, RewardOutcome, check_reward_kind
from pruning_env.scorers import SCORERS, compute_scores
from pruning_env.tasks import Task, get_task
from pruning_env.training import MaskedTrainer, TrainConfig

INFO_KEYS: tuple[str, ...] = (
    "requested_sparsity",
    "applied_sparsity",
    "clipped",
    "target_sparsity",
    "global_sparsity",
    "any_clipped",
    "diverged",
    "accuracy",
    "loss",
    "reward_seconds",
    "step_seconds",
    "reset_seconds",
    "init_seed",
)
TARGET_DEPENDENT_SCORERS = frozenset({"synflow_iterative"})  # scorers that need the sparsity to score


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as torch understands it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available; use device='auto' or 'cpu'")
    return resolved


def _check_target(target: float | tuple[float, float]) -> tuple[float, float]:
    low, high = (target, target) if isinstance(target, int | float) else tuple(target)
    if not (0.0 <= low <= high < 1.0) or not all(np.isfinite([low, high])):
        raise ValueError(f"target_sparsity must be a float in [0, 1) or a range (low, high) with 0 <= low <= high < 1, got {target!r}")
    return float(low), float(high)


def seeded_generator(seed: int | None) -> np.random.Generator:
    """``gymnasium.utils.seeding.np_random(seed)``; ValueError unless the seed is None or in [0, 2**63)."""
    if seed is not None and not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed}")
    return seeding.np_random(seed)[0]


class SharedAgentSpaces:
    """PettingZoo's space methods for envs whose agents ``possible_agents`` all share ``_observation_space`` and
    ``_action_space``: any other agent name is a ValueError."""

    possible_agents: list[str]
    _observation_space: gymnasium.spaces.Box
    _action_space: gymnasium.spaces.Space

    def observation_space(self, agent: str) -> gymnasium.spaces.Box:
        self._check_agent(agent)
        return self._observation_space

    def action_space(self, agent: str) -> gymnasium.spaces.Space:
        self._check_agent(agent)
        return self._action_space

    def _check_agent(self, agent: str) -> None:
        if agent not in self.possible_agents:
            raise ValueError(f"unknown agent {agent!r}; agents are layer_0 … layer_{len(self.possible_agents) - 1}")


class PruningEnv(SharedAgentSpaces, ParallelEnv):
    """See the module docstring for the full documentation."""

    metadata = {"name": "pruning_env_v0", "render_modes": ["ansi", "human"], "is_parallelizable": True}

    def __init__(
        self,
        task: str | Task = "mlp-digits",
        *,
        model: ModelSource | None = None,
        data: Dataset | None = None,
        target_sparsity: float | tuple[float, float] | None = None,
        scorer: str | None = None,
        features: Sequence[str] | None = None,
        reward: str | None = None,
        reward_steps: int | None = None,
        action_type: Literal["continuous", "discrete"] = "continuous",
        action_bins: int = 21,
        init: Literal["fixed", "per_episode"] | int = "fixed",
        device: str | torch.device = "auto",
        seed: int | None = None,
        render_mode: str | None = None,
        cache_size: int = 8,
    ) -> None:
        self.task = task if isinstance(task, Task) else get_task(task)
        self.target_range = _check_target(self.task.target_sparsity if target_sparsity is None else target_sparsity)
        self.scorer = self.task.scorer if scorer is None else scorer
        self.proxies = tuple(self.task.features if features is None else features)
        for name in (self.scorer, *self.proxies):
            if name not in SCORERS:
                raise ValueError(f"unknown scorer/feature proxy {name!r}; known: {', '.join(SCORERS)}")
        if set(self.proxies) & TARGET_DEPENDENT_SCORERS:
            raise ValueError(f"features cannot use target-dependent scorers {sorted(TARGET_DEPENDENT_SCORERS)}")
        self.reward_kind = self.task.reward if reward is None else reward
        check_reward_kind(self.reward_kind)
        if action_type not in ("continuous", "discrete"):
            raise ValueError(f"action_type must be 'continuous' or 'discrete', got {action_type!r}")
        if action_bins < 2:
            raise ValueError(f"action_bins must be >= 2, got {action_bins}")
        if not (init in ("fixed", "per_episode") or (isinstance(init, int) and init >= 0)):
            raise ValueError(f"init must be 'fixed', 'per_episode' or a seed (int >= 0), got {init!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.action_type = action_type
        self.action_bins = action_bins
        self.init = init
        self.render_mode = render_mode
        self.device = resolve_device(device)

        self.data = (data if data is not None else load_dataset(self.task.dataset)).to(self.device)
        source: ModelSource = model if model is not None else self._task_factory()
        working = copy.deepcopy(source) if isinstance(source, nn.Module) else source(0)
        self.model = working.to(self.device)
        self.layers: list[PrunableLayer] = prunable_layers(self.model, self.data.x_train[:2])
        self.sizes = np.array([layer.num_weights for layer in self.layers], dtype=np.int64)
        self.feature_names = feature_names(self.proxies)
        self._static = static_features(self.layers)
        self._instances = InstanceCache(
            source,
            self.model,
            self.layers,
            self.data,
            self.proxies,
            mask_scorer=None if self.scorer in TARGET_DEPENDENT_SCORERS else self.scorer,
            reinit_module=init == "per_episode",
            capacity=cache_size,
        )
        train_config = self.task.final_train if self.reward_kind == "full" else self.task.reward_train
        if reward_steps is not None:
            train_config = TrainConfig(**{**train_config.__dict__, "steps": reward_steps})
        eval_size = min(self.task.reward_eval_size, len(self.data.x_val))
        self._reward = RewardEvaluator(
            self.reward_kind,
            MaskedTrainer(self.model, self.layers, self.data.x_train, self.data.y_train),
            train_config,
            self.data.x_val[:eval_size],
            self.data.y_val[:eval_size],
            self.data.num_classes,
        )
        self.reward_range = (self._reward.low, self._reward.high)

        self.possible_agents = [f"layer_{i}" for i in range(len(self.layers))]
        self.agents: list[str] = []
        self._seed = seed
        self._np_random: np.random.Generator | None = None
        self._episode: _Episode | None = None
        self.last_plan: dict[str, np.ndarray] | None = None
        """After a step: ``requested`` and ``applied`` sparsities ``(L,)`` and ``pruned_counts`` (int64)."""
        self.last_masks: dict[str, torch.Tensor] | None = None
        """After a step: layer name -> bool mask (True = kept) of the applied plan."""

    def _task_factory(self) -> ModelSource:
        name, classes = self.task.model, self.data.num_classes
        return lambda seed: build_model(name, num_classes=classes, seed=seed)

    # --- spaces -----------------------------------------------------------------------------------------------
    @cached_property
    def _observation_space(self) -> gymnasium.spaces.Box:
        return gymnasium.spaces.Box(-FEATURE_CLIP, FEATURE_CLIP, (len(self.feature_names),), np.float32)

    @cached_property
    def _action_space(self) -> gymnasium.spaces.Space:
        if self.action_type == "discrete":
            return gymnasium.spaces.Discrete(self.action_bins)
        return gymnasium.spaces.Box(0.0, 1.0, (1,), np.float32)

    @cached_property
    def state_space(self) -> gymnasium.spaces.Box:
        size = len(self.possible_agents) * len(self.feature_names)
        return gymnasium.spaces.Box(-FEATURE_CLIP, FEATURE_CLIP, (size,), np.float32)

    # --- episode ----------------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        start = time.perf_counter()
        if seed is not None or self._np_random is None:
            seed = self._seed if seed is None else seed
            self._np_random = seeded_generator(seed)
            self._base_seed = int(seed) if seed is not None else int(self._np_random.integers(2**31 - 1))
        if isinstance(self.init, int):
            init_seed = self.init
        elif self.init == "fixed":
            init_seed = self._base_seed
        else:
            init_seed = int(self._np_random.integers(2**31 - 1))
        low, high = self.target_range
        target = float(self._np_random.uniform(low, high)) if high > low else low
        instance = self._instances.get(init_seed)
        observations = observation_matrix(self.layers, self._static, instance.summaries, target)
        self._episode = _Episode(instance, target, observations, time.perf_counter() - start)
        self.agents = list(self.possible_agents)
        self.last_plan = None
        self.last_masks = None
        infos = self._infos(np.zeros(len(self.layers)), np.zeros(len(self.layers)), np.zeros(len(self.layers)), None, 0.0)
        return self._observations(), infos

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if self._episode is None or not self.agents:
            raise ValueError("step() needs a running episode: call reset() first (every episode is one step)")
        start = time.perf_counter()
        episode = self._episode
        requested, clipped = self._requested_sparsities(actions)
        counts = project_to_budget(requested, self.sizes, episode.target, min_kept=1)
        pruned_counts = dict(zip(self._layer_names, counts.tolist(), strict=True))
        masks = masks_from_orders(self._mask_orders(episode), self._weight_shapes, pruned_counts)
        outcome = self._reward(episode.instance.state, masks, seed=episode.instance.init_seed)
        applied = counts / self.sizes
        self.last_plan = {"requested": requested, "applied": applied, "pruned_counts": counts}
        self.last_masks = masks
        infos = self._infos(requested, applied, clipped, outcome, time.perf_counter() - start)
        observations = self._observations()
        rewards = {agent: outcome.reward for agent in self.agents}
        terminations = {agent: True for agent in self.agents}
        truncations = {agent: False for agent in self.agents}
        self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

    @cached_property
    def _layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    @cached_property
    def _weight_shapes(self) -> dict[str, tuple[int, ...]]:
        return {layer.name: layer.weight_shape for layer in self.layers}

    def _mask_orders(self, episode: _Episode) -> dict[str, torch.Tensor]:
        if episode.instance.mask_orders is not None:
            return episode.instance.mask_orders
        self.model.load_state_dict(episode.instance.state)
        generator = torch.Generator().manual_seed(episode.instance.init_seed)
        scores = compute_scores(
            self.scorer, self.model, self.layers, episode.instance.batch, generator=generator, sparsity=episode.target
        )
        return importance_orders(scores)

    def _requested_sparsities(self, actions: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Requested sparsity per layer (clipped into [0, 1]) and a 0/1 flag per layer for clipping."""
        if not isinstance(actions, Mapping):
            raise ValueError(f"actions must be a dict agent -> action, got {type(actions).__name__}")
        unknown = sorted(set(actions) - set(self.possible_agents))
        missing = [agent for agent in self.agents if agent not in actions]
        if unknown:
            raise ValueError(f"actions for unknown agents {unknown}; agents are layer_0 … layer_{len(self.layers) - 1}")
        if missing:
            raise ValueError(f"missing actions for agents {missing}: every layer must act every step")
        values = np.array([self._parse_action(agent, actions[agent]) for agent in self.possible_agents])
        requested = np.clip(values, 0.0, 1.0)
        return requested, (requested != values).astype(np.float64)

    def _parse_action(self, agent: str, action: Any) -> float:
        array = np.asarray(action)
        if self.action_type == "discrete":
            if array.size != 1 or not np.issubdtype(array.dtype, np.integer):
                raise ValueError(f"action for {agent} must be one integer in [0, {self.action_bins - 1}], got {action!r}")
            index = int(array.reshape(()))
            if not 0 <= index < self.action_bins:
                raise ValueError(f"action for {agent} must be in [0, {self.action_bins - 1}], got {index}")
            return index / (self.action_bins - 1)
        if array.size != 1 or not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"action for {agent} must be a number or shape (1,) array in [0, 1], got {action!r}")
        value = float(array.reshape(()))
        if not np.isfinite(value):
            raise ValueError(f"action for {agent} must be finite (a sparsity in [0, 1]), got {value}")
        return value

    def _observations(self) -> dict[str, np.ndarray]:
        matrix = self._episode.observations  # type: ignore[union-attr]
        return {agent: matrix[i] for i, agent in enumerate(self.possible_agents)}

    def _infos(
        self,
        requested: np.ndarray,
        applied: np.ndarray,
        clipped: np.ndarray,
        outcome: RewardOutcome | None,
        step_seconds: float,
    ) -> dict[str, dict[str, float]]:
        episode = self._episode
        assert episode is not None
        pruned_fraction = float((applied * self.sizes).sum() / total_weights(self.layers)) if outcome else 0.0
        shared = {
            "target_sparsity": episode.target,
            "global_sparsity": pruned_fraction,
            "any_clipped": float(clipped.any()),
            "diverged": float(outcome.diverged) if outcome else 0.0,
            "accuracy": outcome.accuracy if outcome else 0.0,
            "loss": outcome.loss if outcome else 0.0,
            "reward_seconds": outcome.seconds if outcome else 0.0,
            "step_seconds": step_seconds,
            "reset_seconds": episode.reset_seconds,
            "init_seed": float(episode.instance.init_seed),
        }
        return {
            agent: {
                "requested_sparsity": float(requested[i]),
                "applied_sparsity": float(applied[i]),
                "clipped": float(clipped[i]),
                **shared,
            }
            for i, agent in enumerate(self.possible_agents)
        }

    # --- the rest of the API ----------------------------------------------------------------------------------
    @property
    def instance(self) -> Instance:
        """The running episode's instance: θ0 (``state``), ``init_seed``, scoring ``batch``, mask orders."""
        if self._episode is None:
            raise ValueError("the env has no episode: call reset() first")
        return self._episode.instance

    @property
    def draws_per_episode(self) -> bool:
        """The env draws a new initialization or target on every reset."""
        low, high = self.target_range
        return self.init == "per_episode" or high > low

    @property
    def reward_evaluator(self) -> RewardEvaluator:
        """The reward's evaluator: its ``train_config`` (K-step schedule), ``trainer`` and validation subset."""
        return self._reward

    def pruned_model(self) -> nn.Module:
        """A copy of the episode's initialization with the last step's pruned weights set to zero.

        Train it with the masks held (``pruning_env.masking.MaskedWeights.from_layers`` and ``reapply()`` after
        every optimizer step, or ``export_masks``/``prune_with_torch`` for torch's own pruning), e.g. for a final
        evaluation on the test split.
        """
        if self._episode is None or self.last_masks is None:
            raise ValueError("pruned_model() needs a finished step: call reset() and step() first")
        model = copy.deepcopy(self.model)
        model.load_state_dict(self._episode.instance.state)
        layers = prunable_layers(model, self.data.x_train[:2])
        MaskedWeights.from_layers(layers, self.last_masks).reapply()
        return model

    def state(self) -> np.ndarray:
        if self._episode is None:
            raise ValueError("state() needs a running episode: call reset() first")
        return self._episode.observations.reshape(-1)

    def render(self) -> str | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'human'")
            return None
        text = self._table()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def _table(self) -> str:
        header = f"{'agent':>9} {'layer':<28} {'weights':>10} {'requested':>9} {'applied':>8}"
        lines = [header]
        for i, layer in enumerate(self.layers):
            requested = f"{self.last_plan['requested'][i]:.4f}" if self.last_plan else "-"
            applied = f"{self.last_plan['applied'][i]:.4f}" if self.last_plan else "-"
            lines.append(f"{'layer_' + str(i):>9} {layer.name:<28} {layer.num_weights:>10} {requested:>9} {applied:>8}")
        if self._episode is not None:
            lines.append(f"target sparsity {self._episode.target:.4f}, init seed {self._episode.instance.init_seed}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Episode:
    """The running episode's instance, target and observation matrix ``(L, F)``."""

    instance: Instance
    target: float
    observations: np.ndarray
    reset_seconds: float
