"""PruningEnv, the native PettingZoo ParallelEnv of one-shot layer-wise pruning: ``help(PruningEnv)`` documents it."""

from __future__ import annotations

import copy
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import gymnasium
import numpy as np
import torch
from pettingzoo import ParallelEnv
from torch import nn

from pruning_env.config import OPTIONS, EnvConfig, check_option_names
from pruning_env.data import Dataset, load_dataset
from pruning_env.effective import ConnectivityProbe
from pruning_env.features import FEATURE_CLIP, feature_names, observation_matrix, static_features
from pruning_env.fidelity import (
    ZERO_COST_COST,
    ComputeLimitReached,
    Fidelity,
    check_fidelity,
    evaluation_cost,
    parse_fidelity,
    schedule_of,
)
from pruning_env.instances import Instance, InstanceCache, ModelSource
from pruning_env.layers import PrunableLayer, prunable_layers
from pruning_env.plan import EpisodeResult, PrunedPlan, prune_plan
from pruning_env.rewards import RewardEvaluator
from pruning_env.spaces import SharedAgentSpaces, seeded_generator
from pruning_env.tasks import Task, task_model
from pruning_env.trained import TrainedWeights
from pruning_env.training import MaskedTrainer, TrainConfig

ARGUMENTS: tuple[str, ...] = ("task", "model", "data", *OPTIONS)
"""Every keyword argument ``PruningEnv`` takes; any other is a ValueError (``config.check_option_names``)."""


def setting_label(config: EnvConfig) -> str:
    """``"target 0.99, reward neg_loss K=100"``: the target (or range), reward and K an env poses, for labels."""
    low, high = config.target_range
    target = f"{low:g}" if low == high else f"{low:g}-{high:g}"
    schedule = ", final schedule" if config.reward_schedule == "final" and config.reward != "full" else ""
    orders = f", {config.reward_orders} orders" if config.reward_orders > 1 else ""
    return f"target {target}, reward {config.reward} K={config.reward_steps}{schedule}{orders}"


class PruningEnv(SharedAgentSpaces, ParallelEnv):
    """One-shot layer-wise pruning at initialization as a PettingZoo ParallelEnv (ARLP's setting).

    ## Description
    Before any training, decide for every prunable layer (Linear, Conv1d/2d/3d weight) of a network what fraction of
    its weights to remove, so that the whole network meets a global sparsity target exactly and trains to the best
    accuracy. Each layer is an agent. An episode is one step: the agents observe meta-features of their layer computed
    from zero-cost pruning-at-initialization proxies, each requests a sparsity, the requests are projected onto the
    exact budget, the initialization is pruned with the within-layer scorer's masks, and the team is rewarded with the
    pruned network's proxy accuracy.

    With ``prune_at="trained"`` the plan prunes the network trained from the initialization with the task's final
    schedule instead (post-training one-shot pruning, AMC's setting): the instance's weights, the observation's proxies
    and the within-layer masks (magnitude by default) are those of the trained network, trained once per init seed and
    cached on disk (``pruning_env.trained``); ``reward_steps=0`` then rewards the pruned network's validation accuracy
    or loss with no fine-tuning, one forward pass.

    The budget (``budget``) says what the target is a fraction of: ``"weights"`` (default), the prunable weights;
    ``"flops"`` (AMC's constraint), the prunable layers' multiply-accumulates per sample, where a layer's MACs are its
    MACs per weight (``layers.macs_per_weight``: output positions per sample) times its kept weights. The FLOPs
    variants of the tasks (``"cnn-digits-flops"``, ``"CnnDigitsFlops-v1"``, ...) set it.

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
    that asked for more never gets less. A plan that already meets the budget is applied as it is. Under
    ``budget="flops"`` the pruned MACs meet round(target x total MACs) to within half the MACs of one weight of the
    layer whose weights cost the most (whole weights of unequal cost cannot reach every total); the rest is the same.

    ## Rewards
    The same team reward for every agent; the kind is chosen with ``reward`` (see ``pruning_env.rewards``): minus the
    validation loss after ``reward_steps`` masked training steps (default; about -log C = -2.30 for 10 classes when
    the pruned net is no better than chance), the validation accuracy after those steps, a zero-cost SynFlow
    reward, or the validation accuracy after the task's full training. The test split is never used. A diverged training
    earns the lowest reward and ``diverged`` = 1.

    Evaluating a plan without the agent dicts: ``evaluate_plan(seed, plan)`` = ``reset(seed=seed)`` followed by a
    step in which layer i requests ``plan[i]`` (a sparsity, whatever the action type); it returns the
    ``pruning_env.plan.EpisodeResult``. ``last_result`` and ``last_masks`` hold the last step's.
    ``evaluate_plans([(seed, plan), ...])`` evaluates many episodes in one call: those on one instance train
    together, ``reward_batch`` masked copies side by side (the batched path, ``pruning_env.batched_training``).

    ## Episode End
    After the single step every agent is terminated (``terminations`` all True, ``truncations`` all False) and
    ``env.agents`` is empty; call ``reset``.

    ## Infos
    The same numeric keys for every agent at reset and at step (zeros at reset): ``requested_sparsity``,
    ``applied_sparsity`` (this layer), ``clipped`` (0/1, this agent's request was clipped), ``target_sparsity``,
    ``global_sparsity`` (achieved weight sparsity, = pruned weights / total), ``effective_sparsity`` (the fraction of
    weights pruned or dead: on no input-output path through kept weights, ``pruning_env.effective``; >=
    ``global_sparsity``), ``flops_reduction`` (achieved, = pruned MACs per sample / total, under either budget),
    ``any_clipped``, ``diverged``, ``init_seed``, and ``accuracy`` and ``loss`` of the reward's training (not with the
    zero-cost reward, which trains nothing). ``target_sparsity`` is in the budget's unit: under ``budget="flops"`` it
    is the target FLOPs reduction, which ``flops_reduction`` meets (within the bound above), and ``global_sparsity``
    is what it costs in weights. One seed and one action give equal infos (PettingZoo's seed tests): wall times are
    not in them but in ``last_result`` (``seconds`` of the reward, ``reset_seconds``, ``step_seconds``).

    ## Arguments
    | argument        | default        | meaning                                                                   |
    |-----------------|----------------|---------------------------------------------------------------------------|
    | task            | "mlp-digits"   | a name or id from ``pruning_env.TASKS``; it supplies every default below  |
    | model           | task's network | an nn.Module (its weights are θ0) or a factory ``seed -> nn.Module``      |
    | data            | task's dataset | a ``pruning_env.data.Dataset``, or a dataset's name (``load_dataset``)    |
    | target_sparsity | task's target  | a float in [0, 1), or a (low, high) range sampled uniformly per episode   |
    |                 |                | (a fraction of the weights, or of the MACs under budget="flops")          |
    | budget          | task's budget  | "weights" (default tasks) or "flops" (the "-flops" tasks)                 |
    | scorer          | "snip"         | within-layer mask criterion, a name from ``pruning_env.scorers.SCORERS``  |
    | proxies         | 5 proxies      | scorers whose statistics feed the observation (magnitude, snip, grasp,    |
    |                 |                | synflow, lamp); ``feature_names`` are the observation's columns          |
    | reward          | "neg_loss"     | "neg_loss", "accuracy", "zero_cost" or "full"                             |
    | reward_steps    | task's K       | training steps of the accuracy / neg_loss rewards; 0: none, the pruned    |
    |                 |                | network is read as it is (one forward pass on the validation subset)      |
    | action_type     | "continuous"   | "continuous" or "discrete"                                                |
    | action_bins     | 21             | number of discrete sparsity levels                                        |
    | init            | "fixed"        | "fixed": θ0 from the reset seed; "per_episode": a new θ0 every episode;  |
    |                 |                | an int s: θ0 of seed s in every episode (reset seeds then vary the rest)  |
    | device          | "auto"         | "auto" (CUDA when present), "cpu", "cuda", or a torch.device              |
    | seed            | None           | seed of the first reset when ``reset`` is called without one              |
    | render_mode     | None           | None, "ansi" (returns a table) or "human" (prints it)                     |
    | cache_size      | 8              | scored initializations kept in memory                                     |
    | reward_batch    | "auto"         | masked copies trained side by side by ``evaluate_plans``: "auto" is 1     |
    |                 |                | (sequential) on CPU and 64 on CUDA (``pruning_env.device``), or an int    |
    | reward_precision| "fp32"         | "fp32", or "bf16" autocast of the reward's forward passes                 |
    | reward_orders   | 1              | minibatch orders the reward averages over (n trainings per plan)          |
    | reward_order    | "instance"     | orders from the init seed, or "episode": drawn at each reset              |
    | reward_schedule | "reward"       | the reward trains with the task's reward schedule, or "final": its final  |
    |                 |                | schedule cut to ``reward_steps`` (``pruning_env.fidelity``)               |
    | compute_limit   | None           | most sample-steps the env's rewards may spend; past it an evaluation      |
    |                 |                | raises ``pruning_env.fidelity.ComputeLimitReached``                       |
    | prune_at        | "init"         | "init": plans prune θ0; "trained": the network trained from θ0 with the  |
    |                 |                | task's final schedule, cached on disk (``pruning_env.trained``); the      |
    |                 |                | default scorer is then "magnitude"                                        |

    The options after ``data`` are those of ``pruning_env.config.EnvConfig.build``, which defaults them from the task
    and validates them once (a bad value is a ValueError naming the option); the env keeps the result as ``config``.
    An unknown keyword is a ValueError naming the closest valid ones (``reward_step``: did you mean ``reward_steps``?).

    Choosing K (``reward_steps``) for one's own network: the DENSE network's validation accuracy (or loss) after K
    steps is the cue: ``PruningEnv(..., target_sparsity=0.0, reward_steps=K).evaluate_plan(0, np.zeros(L))`` trains
    it and returns its ``accuracy`` and ``loss``. Pick K where the dense net is clearly above chance (1 / classes):
    a pruned net learns no faster, and the ``"accuracy"`` reward is flat, so it ranks nothing, while plans sit at
    chance. The loss-based default (``"neg_loss"``) still ranks plans whose accuracies tie at chance, as long as
    their losses move away from log(classes); every step of K adds to the reward's time.

    ## Seeding
    ``reset(seed=s)`` fixes everything: the initialization (its seed is s with ``init="fixed"``, drawn from s's RNG
    with ``"per_episode"``, always s0 with ``init=s0``), the scoring batch, the target drawn from a range, and the
    reward's minibatch order (derived from the init seed, so one plan on one instance always earns the same reward
    on one device; with ``reward_order="episode"`` drawn from the reset's RNG instead, so the same (seed, plan)
    still earns the same reward, but each reset seed trains the plan on other minibatches).
    ``reset()`` without a seed continues the RNG. A module passed as ``model`` keeps its own weights as θ0 with
    ``init="fixed"``; with ``"per_episode"`` each init seed redraws them with the modules' ``reset_parameters``.

    ## Version History
    - v1: the default reward is ``neg_loss`` (was ``accuracy``); ``proxies`` replaces ``features``; the ``budget``
      option and the ``flops_reduction`` info were added later (the default, ``"weights"``, behaves as before).
      Later still: the ``effective_sparsity`` info was added, the wall-time infos (``reward_seconds``,
      ``step_seconds``, ``reset_seconds``) moved to ``last_result``, and an unknown option became a ValueError
      (observations, actions and rewards unchanged).
      Later: the ``prune_at`` option (``"trained"``: prune the trained network) and ``reward_steps=0`` (no training);
      the defaults behave as before. Then: the reward's fidelity as a choice (``reset(options={"fidelity": ...})``,
      ``evaluate_plans(fidelity=)``, ``EpisodeResult.cost``, ``compute_limit``, ``reward_schedule``); defaults
      unchanged.
    - v0: initial release.
    """

    metadata = {"name": "pruning_env_v1", "render_modes": ["ansi", "human"], "is_parallelizable": True}

    def __init__(
        self, task: str | Task = "mlp-digits", *, model: ModelSource | None = None, data: Dataset | str | None = None,
        **options: Any,
    ) -> None:
        check_option_names(options, ARGUMENTS)
        self.config = EnvConfig.build(task, **options)
        """Every option, defaulted from the task and validated (``pruning_env.config.EnvConfig``)."""
        config = self.config
        self.task = config.task
        self.device = config.device
        self.render_mode = config.render_mode
        self.data = (data if isinstance(data, Dataset) else load_dataset(data or self.task.dataset)).to(self.device)
        self._instances = InstanceCache.of_network(
            model if model is not None else task_model(self.task, self.data.num_classes), self.data, config.proxies,
            config.scorer, reinit_module=config.init == "per_episode", capacity=config.cache_size, budget=config.budget,
            trained=TrainedWeights(self.task.name, self.task.final_train, self.data) if config.prune_at == "trained"
            else None,
        )
        self.layers: list[PrunableLayer] = self._instances.layers
        self.sizes = np.array([layer.num_weights for layer in self.layers], dtype=np.int64)
        self.feature_names = feature_names(config.proxies)
        self._static = static_features(self.layers)
        # effective sparsity reads the network's structure and the zero pattern of its non-prunable parameters
        # (BatchNorm scales), which every initialization shares: one probe serves every instance
        self._connectivity = ConnectivityProbe(self._instances.model, [layer.name for layer in self.layers],
                                               self.data.input_shape)
        trained = copy.deepcopy(self._instances.model)  # the reward's trainer owns its own copy of the network
        eval_size = min(self.task.reward_eval_size, len(self.data.x_val))
        self._reward = RewardEvaluator(
            config.reward,
            MaskedTrainer(trained, prunable_layers(trained, self.data.x_train[:2]), self.data.x_train, self.data.y_train,
                          copies=config.reward_batch, precision=config.reward_precision),
            config.reward_train,
            self.data.x_val[:eval_size],
            self.data.y_val[:eval_size],
            self.data.num_classes,
            orders=config.reward_orders,
        )
        self._observation_cache: OrderedDict[tuple[int, float], np.ndarray] = OrderedDict()
        self.compute_spent = 0
        """Sample-steps every reward of this env has cost so far (``pruning_env.fidelity``)."""
        self.possible_agents = [f"layer_{i}" for i in range(len(self.layers))]
        self.agents: list[str] = []
        self._np_random: np.random.Generator | None = None
        self._base_seed = 0
        self._episode: _Episode | None = None
        self.last_result: EpisodeResult | None = None
        """After a step: the evaluated plan (requested, applied, pruned counts, reward, ...)."""
        self.last_masks: dict[str, torch.Tensor] | None = None
        """After a step: layer name -> bool mask (True = kept) of the applied plan."""

    # --- options read by wrappers and controllers --------------------------------------------------------------
    @property
    def action_type(self) -> str:
        return self.config.action_type

    @property
    def action_bins(self) -> int:
        return self.config.action_bins

    @property
    def draws_per_episode(self) -> bool:
        """The env draws a new initialization or target on every reset."""
        return self.config.draws_per_episode

    @property
    def reward_batch(self) -> int:
        """Most masked copies one reward pass trains side by side (1: the sequential path)."""
        return self.config.reward_batch

    @property
    def current(self) -> PruningEnv:
        """The env of the running episode: this one (``pruning_env.plan_env.PlanEnv``)."""
        return self

    @property
    def envs(self) -> list[PruningEnv]:
        """The single-task envs whose episodes this env runs: ``[self]``."""
        return [self]

    @property
    def label(self) -> str:
        """``"mlp-digits, target 0.99, reward neg_loss K=100"``: what the env poses, for titles and logs."""
        return f"{self.task.name}, {setting_label(self.config)}"

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
        fidelity = self.fidelity_of((options or {}).get("fidelity"))  # other keys are ignored (PettingZoo's checkers pass some)
        if seed is not None or self._np_random is None:
            seed = self.config.seed if seed is None else seed
            self._np_random = seeded_generator(seed)
            self._base_seed = int(seed) if seed is not None else int(self._np_random.integers(2**31 - 1))
        init = self.config.init
        if isinstance(init, int):
            init_seed = init
        elif init == "fixed":
            init_seed = self._base_seed
        else:
            init_seed = int(self._np_random.integers(2**31 - 1))
        low, high = self.config.target_range
        target = float(self._np_random.uniform(low, high)) if high > low else low
        instance = self._instances.get(init_seed)
        observations = self._observation_matrix(instance, target).copy()  # the episode's own: a caller may write
        # drawn last, only when asked for: the other draws of a seed stay what they were
        order = int(self._np_random.integers(2**31 - 1)) if self.config.reward_order == "episode" else init_seed
        self._episode = _Episode(self._base_seed, instance, target, observations, time.perf_counter() - start, order,
                                 fidelity)
        self.agents = list(self.possible_agents)
        self.last_result = None
        self.last_masks = None
        zeros = np.zeros(len(self.layers))
        return self._observations(), self._infos(zeros, zeros, zeros, None)

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if self._episode is None or not self.agents:
            raise ValueError("step() needs a running episode: call reset() first (every episode is one step)")
        result = self._play(self._requested_sparsities(actions))
        observations = self._observations()
        rewards = {agent: result.reward for agent in self.agents}
        terminations = {agent: True for agent in self.agents}
        truncations = {agent: False for agent in self.agents}
        self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, self._last_infos

    def _observation_matrix(self, instance: Instance, target: float) -> np.ndarray:
        """The observation ``(L, F)`` of an instance at a target, kept for the last ``cache_size`` x 4 pairs (a
        search resets on one instance and target again and again)."""
        key = (instance.init_seed, target)
        if key not in self._observation_cache:
            self._observation_cache[key] = observation_matrix(self.layers, self._static, instance.summaries, target,
                                                              self.config.budget)
            if len(self._observation_cache) > 4 * self.config.cache_size:
                self._observation_cache.popitem(last=False)
        self._observation_cache.move_to_end(key)
        return self._observation_cache[key]

    @property
    def compute_left(self) -> int | None:
        """Sample-steps left before ``config.compute_limit`` (None: no limit)."""
        limit = self.config.compute_limit
        return None if limit is None else limit - self.compute_spent

    def fidelity_of(self, requested: Fidelity | Mapping[str, Any] | None) -> Fidelity:
        """The fidelity an episode runs at: the env's own (``config.fidelity``) for None, else ``requested``
        checked (``pruning_env.fidelity.check_fidelity``: steps up to the task's final schedule).

        Raises:
            ValueError: for a fidelity out of range, or any fidelity under the zero-cost reward (it trains nothing).
        """
        if requested is None:
            return self.config.fidelity
        if self.config.reward == "zero_cost":
            raise ValueError("the zero_cost reward trains nothing: it takes no fidelity")
        return check_fidelity(parse_fidelity(requested), self.task.final_train.steps)

    def cost_of(self, fidelity: Fidelity) -> int:
        """Sample-steps of one reward at ``fidelity`` on this env (``pruning_env.fidelity.evaluation_cost``)."""
        if self.config.reward == "zero_cost":
            return ZERO_COST_COST
        return evaluation_cost(self._schedule(fidelity), fidelity.orders, len(self._reward.y_eval))

    def _schedule(self, fidelity: Fidelity) -> TrainConfig | None:
        """The training schedule of ``fidelity`` (``config.reward_train`` for the env's own)."""
        return schedule_of(fidelity, self.task.reward_train, self.task.final_train)

    def evaluate_plan(self, seed: int, plan: np.ndarray) -> EpisodeResult:
        """``reset(seed=seed)``, then one step in which layer i requests sparsity ``plan[i]``; the episode's result.

        ``plan`` is ``(L,)`` requested sparsities (finite; values outside [0, 1] are clipped), whatever the action
        type. The reward depends only on (seed, plan) on one device and reward setting. Raises ValueError for a
        wrong shape or a non-finite value, naming the agent.
        """
        return self.evaluate_plans([(seed, plan)])[0]

    def evaluate_plans(
        self, episodes: Sequence[tuple[int, np.ndarray]], fidelity: Fidelity | Mapping[str, Any] | None = None
    ) -> list[EpisodeResult]:
        """``evaluate_plan`` for many ``(seed, plan)`` episodes in one call; the results in input order.
        ``fidelity``: the reward's fidelity for all of them (``pruning_env.fidelity``; None: the env's own).

        Episodes that share an instance (one init seed, hence one minibatch order) are trained together: up to
        ``config.reward_batch`` masked copies side by side (``pruning_env.batched_training``), split and retried
        when a batch does not fit in device memory. Afterwards the env holds the last episode (``last_result``,
        ``last_masks``, ``pruned_model()``).

        Raises:
            ValueError: for no episodes, or a plan of the wrong shape or with a non-finite value (naming the
                episode, its seed and the agent).
        """
        if len(episodes) == 0:
            raise ValueError("evaluate_plans needs at least one (seed, plan) episode, got none")
        start = time.perf_counter()
        prepared: list[tuple[_Episode, PrunedPlan]] = []
        options = None if fidelity is None else {"fidelity": fidelity}
        for index, (seed, plan) in enumerate(episodes):
            self.reset(seed=seed, options=options)
            try:
                prepared.append((self._episode, self._prune(np.asarray(plan, dtype=np.float64))))  # type: ignore[arg-type]
            except ValueError as error:
                raise ValueError(f"episode {index} (seed {seed}): {error}") from None
        self.agents = []
        return self._finish(prepared, self._evaluate(prepared), (time.perf_counter() - start) / len(episodes))

    def _play(self, values: np.ndarray) -> EpisodeResult:
        """Prune the running episode's instance with the requests ``(L,)``, earn the reward, record the step."""
        start = time.perf_counter()
        episode = self._episode
        assert episode is not None
        prepared = [(episode, self._prune(values))]
        [result] = self._finish(prepared, self._evaluate(prepared), time.perf_counter() - start)
        return result

    def _prune(self, values: np.ndarray) -> PrunedPlan:
        """The running episode's plan: requests ``(L,)`` clipped, projected onto its target, masks cut."""
        episode = self._episode
        assert episode is not None
        orders = self._instances.mask_orders(episode.instance, episode.target)
        return prune_plan(values, self.layers, episode.target, orders, names=self.possible_agents, budget=self.config.budget)

    def _evaluate(self, prepared: Sequence[tuple[_Episode, PrunedPlan]]) -> list[EpisodeResult]:
        """The reward of every (episode, plan), the plans of one instance evaluated together; in input order."""
        costs = {fidelity: self.cost_of(fidelity) for fidelity in {episode.fidelity for episode, _ in prepared}}
        cost = sum(costs[episode.fidelity] for episode, _ in prepared)
        left = self.compute_left
        if left is not None and cost > left:
            raise ComputeLimitReached(
                f"this evaluation costs {cost:,} sample-steps and {left:,} of the compute_limit "
                f"{self.config.compute_limit:,} are left")
        groups: dict[tuple[int, int, Fidelity], list[int]] = {}  # (init seed, order seed, fidelity) -> episodes
        for index, (episode, _) in enumerate(prepared):
            groups.setdefault((episode.instance.init_seed, episode.order_seed, episode.fidelity), []).append(index)
        results: list[EpisodeResult | None] = [None] * len(prepared)
        for (init_seed, order_seed, fidelity), indices in groups.items():
            instance = prepared[indices[0]][0].instance
            evaluator = self._reward
            if fidelity != self.config.fidelity:
                evaluator = evaluator.at(self._schedule(fidelity), fidelity.orders)
            outcomes = evaluator.evaluate_many(instance.state, [prepared[i][1].masks for i in indices], order_seed)
            for index, (reward, run) in zip(indices, outcomes, strict=True):
                episode, pruned = prepared[index]
                result = EpisodeResult.of(
                    pruned, run, reward, episode.seed, init_seed, episode.target,
                    effective_sparsity=self._connectivity.effective_sparsity(pruned.masks),
                )
                results[index] = replace(result, cost=costs[fidelity])
        self.compute_spent += cost
        return results  # type: ignore[return-value]

    def _finish(
        self, prepared: Sequence[tuple[_Episode, PrunedPlan]], results: Sequence[EpisodeResult], step_seconds: float
    ) -> list[EpisodeResult]:
        """The results with their episodes' ``reset_seconds`` and ``step_seconds`` (wall time per episode); the
        last episode becomes the env's last one, with its plan's result, masks and infos."""
        timed = [
            replace(result, reset_seconds=episode.reset_seconds, step_seconds=step_seconds)
            for (episode, _), result in zip(prepared, results, strict=True)
        ]
        self._episode, pruned = prepared[-1]
        self.last_result, self.last_masks = timed[-1], pruned.masks
        self._last_infos = self._infos(pruned.requested, pruned.applied, pruned.clipped, timed[-1])
        return timed

    def _requested_sparsities(self, actions: Mapping[str, Any]) -> np.ndarray:
        """Requested sparsity per layer ``(L,)`` (unclipped) from the agents' actions."""
        if not isinstance(actions, Mapping):
            raise ValueError(f"actions must be a dict agent -> action, got {type(actions).__name__}")
        unknown = sorted(set(actions) - set(self.possible_agents))
        missing = [agent for agent in self.agents if agent not in actions]
        if unknown:
            raise ValueError(f"actions for unknown agents {unknown}; agents are layer_0 … layer_{len(self.layers) - 1}")
        if missing:
            raise ValueError(f"missing actions for agents {missing}: every layer must act every step")
        return np.array([self.parse_action(agent, actions[agent]) for agent in self.possible_agents])

    def parse_action(self, agent: str, action: Any) -> float:
        """The requested sparsity of one agent's action (unclipped).

        Raises:
            ValueError: naming the agent, for an action that is not one number (continuous: finite; discrete: an
                integer bin in [0, action_bins - 1]).
        """
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
        reward: EpisodeResult | None,
    ) -> dict[str, dict[str, float]]:
        """Every agent's infos: its request, applied sparsity and clip flag ``(L,)``, and the episode's shared
        numbers (zeros for those of a step when ``reward`` is None, at reset)."""
        episode = self._episode
        assert episode is not None
        shared = {
            "target_sparsity": episode.target,
            "global_sparsity": reward.global_sparsity if reward else 0.0,
            "effective_sparsity": reward.effective_sparsity if reward else 0.0,
            "flops_reduction": reward.flops_reduction if reward else 0.0,
            "any_clipped": float(clipped.any()),
            "diverged": float(reward.diverged) if reward else 0.0,
            "init_seed": float(episode.instance.init_seed),
        }
        if self.config.reward != "zero_cost":  # it trains nothing: no accuracy or loss to report (NaN breaks checkers)
            shared["accuracy"] = reward.accuracy if reward else 0.0
            shared["loss"] = reward.loss if reward else 0.0
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
    def target_sparsity(self) -> float:
        """The running episode's global target."""
        if self._episode is None:
            raise ValueError("the env has no episode: call reset() first")
        return self._episode.target

    def mask_orders(self) -> dict[str, torch.Tensor]:
        """The running episode's within-layer importance orders (``masking.importance_order`` per layer)."""
        return self._instances.mask_orders(self.instance, self.target_sparsity)

    @property
    def reward_evaluator(self) -> RewardEvaluator:
        """The reward's evaluator: its ``train_config`` (K-step schedule), ``trainer`` and validation subset."""
        return self._reward

    def pruned_model(self) -> nn.Module:
        """A new copy of the episode's initialization with the last step's pruned weights set to zero.

        Train it with the masks held (``pruning_env.masking.MaskedWeights.from_layers`` and ``reapply()`` after
        every optimizer step, or ``export_masks``/``prune_with_torch`` for torch's own pruning), e.g. for a final
        evaluation on the test split.
        """
        if self._episode is None or self.last_masks is None:
            raise ValueError("pruned_model() needs a finished step: call reset() and step() first")
        return self._instances.pruned_model(self._episode.instance, self.last_masks)

    def state(self) -> np.ndarray:
        if self._episode is None:
            raise ValueError("state() needs a running episode: call reset() first")
        return self._episode.observations.reshape(-1)

    def render(self) -> str | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'human'")
            return None
        text = self.table()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def table(self) -> str:
        """Every layer with its size and the last step's requested and applied sparsity, then the episode."""
        result = self.last_result
        lines = [f"{'agent':>9} {'layer':<28} {'weights':>10} {'requested':>9} {'applied':>8}"]
        for i, layer in enumerate(self.layers):
            requested = f"{result.requested[i]:.4f}" if result else "-"
            applied = f"{result.applied[i]:.4f}" if result else "-"
            lines.append(f"{'layer_' + str(i):>9} {layer.name:<28} {layer.num_weights:>10} {requested:>9} {applied:>8}")
        if self._episode is not None:
            target = "target sparsity" if self.config.budget == "weights" else "target FLOPs reduction"
            lines.append(f"{target} {self._episode.target:.4f}, init seed {self._episode.instance.init_seed}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Episode:
    """The running episode's reset seed, instance, target and observation matrix ``(L, F)``."""

    seed: int
    instance: Instance
    target: float
    observations: np.ndarray
    reset_seconds: float
    """Wall time of the reset that began the episode."""
    order_seed: int
    """Seed of the reward's minibatch order(s): the init seed, or drawn at reset (``reward_order="episode"``)."""
    fidelity: Fidelity
    """The reward's fidelity in this episode: the env's own or the one the reset asked for."""
