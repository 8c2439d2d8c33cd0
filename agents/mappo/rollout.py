"""Collecting one-step episodes through an evaluation pool (``pruning_env.pools``).

The policy stays in the main process; the pool's workers only host envs. Every episode is fixed in advance by
``episode_plan`` (its task, reset seed and sampling seed are functions of the run seed and the episode's index),
so a run's numbers do not depend on the number of workers or on their timing: the pool observes each distinct
instance, the main process samples every episode's actions, the pool evaluates all plans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from agents.base import Actions, to_actions
from agents.mappo.policy import TokenPolicy, sparsities
from pruning_env.plan import EpisodeResult
from pruning_env.pools import EvaluationPool, PlanRequest

LOGIT_CLIP = 15.0  # requested sparsities stay in [sigmoid(-15), sigmoid(15)], exactly representable below 1
SEED_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class PlannedEpisode:
    """Which env factory, the seed to reset it with, the seed of the action sample."""

    task: int
    reset_seed: int
    sample_seed: int


@dataclass
class Episode:
    """A finished one-step episode: observation ``(L, F)``, actions / log-probs ``(L,)``, value, and its result."""

    task: int
    obs: np.ndarray
    actions: np.ndarray
    log_prob: np.ndarray
    value: float
    result: EpisodeResult
    """The evaluated plan (reward, accuracy, loss, applied sparsities, ...)."""

    @property
    def reward(self) -> float:
        return self.result.reward


def episode_plan(seed: int, first: int, count: int, fresh: Sequence[bool], group_size: int = 1) -> list[PlannedEpisode]:
    """Episodes ``first .. first + count - 1`` of a run over ``len(fresh)`` env factories.

    Episode ``index`` belongs to group ``index // group_size``; a group shares its task, drawn uniformly, and its
    reset seed: ``seed`` itself for a factory whose entry in ``fresh`` is False (every episode on the same
    instance), else drawn; both from ``np.random.default_rng([seed, group])``. The action sample's seed is that
    generator's next draw when ``group_size`` is 1, else drawn from ``default_rng([seed, index, 1])``.
    """
    plan = []
    for index in range(first, first + count):
        rng = np.random.default_rng([seed, index // group_size])
        task = int(rng.integers(len(fresh)))
        drawn, sample_seed = (int(value) for value in rng.integers(SEED_LIMIT, size=2))
        if group_size > 1:
            sample_seed = int(np.random.default_rng([seed, index, 1]).integers(SEED_LIMIT))
        plan.append(PlannedEpisode(task, drawn if fresh[task] else seed, sample_seed))
    return plan


def env_actions(actions: np.ndarray, discrete: bool) -> Actions:
    """Policy actions ``(L,)`` -> the env's dict: sparsity ``sigmoid(logit)`` (float32) or the bin index."""
    if discrete:
        return {f"layer_{i}": np.int64(value) for i, value in enumerate(actions)}
    logits = torch.as_tensor(np.asarray(actions, dtype=np.float64)).clamp(-LOGIT_CLIP, LOGIT_CLIP)
    return to_actions(sparsities(logits).numpy())


def sparsity_plan(actions: np.ndarray, action_bins: int | None) -> np.ndarray:
    """Policy actions ``(L,)`` -> the requested sparsities ``(L,)`` float64 that ``env_actions`` asks the env for:
    bin i of ``action_bins`` is i / (bins - 1); a logit's sparsity is rounded to float32 as the action is."""
    if action_bins is not None:
        return np.asarray(actions).astype(np.int64) / (action_bins - 1)
    actions_dict = env_actions(actions, discrete=False)
    return np.array([actions_dict[f"layer_{i}"][0] for i in range(len(actions_dict))], dtype=np.float64)


def _sample(policy: TokenPolicy, obs: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    tokens = torch.as_tensor(obs).unsqueeze(0)
    mask = torch.ones(tokens.shape[:2], dtype=torch.bool)
    actions, log_prob, value = policy.act(tokens, mask, generator=torch.Generator().manual_seed(seed))
    return actions[0].numpy(), log_prob[0].numpy(), float(value[0])


def collect(policy: TokenPolicy, pool: EvaluationPool, plan: Sequence[PlannedEpisode]) -> list[Episode]:
    """Run the planned episodes on the pool: observe each distinct instance once, sample every episode's actions
    here, evaluate all plans on the pool's workers; the episodes in plan order."""
    instances = list(dict.fromkeys((planned.task, planned.reset_seed) for planned in plan))
    observed = pool.observe([seed for _, seed in instances], [task for task, _ in instances])
    observations = dict(zip(instances, observed, strict=True))
    samples, requests = [], []
    for planned in plan:
        obs = observations[(planned.task, planned.reset_seed)]
        actions, log_prob, value = _sample(policy, obs, planned.sample_seed)
        samples.append((obs, actions, log_prob, value))
        plan_array = sparsity_plan(actions, pool.infos[planned.task].action_bins)
        requests.append(PlanRequest(planned.reset_seed, plan_array, planned.task))
    results = pool.evaluate(requests)
    return [
        Episode(planned.task, obs, actions, log_prob, value, result)
        for planned, (obs, actions, log_prob, value), result in zip(plan, samples, results, strict=True)
    ]


def pad(episodes: Sequence[Episode]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Observations ``(N, L, F)``, mask, actions and log-probs ``(N, L)``, zero-padded to the longest network."""
    length = max(len(episode.obs) for episode in episodes)
    count, features = len(episodes), episodes[0].obs.shape[1]
    obs = torch.zeros(count, length, features)
    mask = torch.zeros(count, length, dtype=torch.bool)
    actions, log_prob = torch.zeros(count, length), torch.zeros(count, length)
    for i, episode in enumerate(episodes):
        size = len(episode.obs)
        obs[i, :size] = torch.as_tensor(episode.obs)
        mask[i, :size] = True
        actions[i, :size] = torch.as_tensor(episode.actions)
        log_prob[i, :size] = torch.as_tensor(episode.log_prob)
    return obs, mask, actions, log_prob
