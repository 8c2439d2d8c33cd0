"""PPO for one-step episodes: reward normalization, advantages, the clipped loss, one update over a batch.

Every episode is a single step, so the return is the reward itself (no bootstrapping, no GAE): with the running
normalization ``r' = (r - mean) / std``, the critic's target is ``r'`` and the advantage is ``r' - V(obs)``.
Each layer's log-probability ratio is clipped separately against the team's advantage (MAPPO's per-agent ratio).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from agents.mappo.config import MappoConfig
from agents.mappo.policy import TokenPolicy

NORM_EPS = 1e-8


@dataclass
class RunningMeanStd:
    """Mean and (population) variance of every value seen so far, merged batch by batch (Chan et al.)."""

    mean: float = 0.0
    var: float = 1.0
    count: int = 0

    def update(self, values: np.ndarray) -> None:
        """Fold a batch of values into the statistics."""
        batch_count = len(values)
        if batch_count == 0:
            return
        batch_mean, batch_var = float(np.mean(values)), float(np.var(values))
        total = self.count + batch_count
        delta = batch_mean - self.mean
        merged_sq = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        self.mean += delta * batch_count / total
        self.var = merged_sq / total
        self.count = total

    def normalize(self, values: np.ndarray) -> np.ndarray:
        """``(values - mean) / sqrt(var + 1e-8)``."""
        return (values - self.mean) / np.sqrt(self.var + NORM_EPS)


def one_step_targets(rewards: np.ndarray, values: np.ndarray, normalizer: RunningMeanStd | None) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and returns ``(N,)`` of one-step episodes.

    The normalizer (if any) first absorbs this batch, then standardizes it; return = (normalized) reward,
    advantage = return - value.
    """
    if normalizer is not None:
        normalizer.update(rewards)
        rewards = normalizer.normalize(rewards)
    returns = np.asarray(rewards, dtype=np.float64)
    return returns - values, returns


def group_advantages(rewards: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Leave-one-out advantages ``(N,)``: each reward minus the mean of the other rewards with the same group id
    (0 for an episode alone in its group: nothing to compare it with)."""
    advantages = np.zeros(len(rewards))
    for group in np.unique(groups):
        members = groups == group
        size = int(members.sum())
        if size > 1:
            others = (rewards[members].sum() - rewards[members]) / (size - 1)
            advantages[members] = rewards[members] - others
    return advantages


def standardize(values: Tensor) -> Tensor:
    """``(values - mean) / (std + 1e-8)`` (unbiased std; a single value maps to 0)."""
    if values.numel() < 2:
        return values - values.mean()
    return (values - values.mean()) / (values.std() + NORM_EPS)


def clipped_policy_loss(
    new_log_prob: Tensor, old_log_prob: Tensor, advantages: Tensor, mask: Tensor, clip_coef: float
) -> tuple[Tensor, Tensor, Tensor]:
    """PPO's clipped surrogate loss over real tokens, with its clip fraction and approximate KL.

    Args:
        new_log_prob, old_log_prob: per-token log-probabilities ``(N, L)``.
        advantages: one per episode ``(N,)``, shared by its layers.
        mask: ``(N, L)``, True on real layers (padding is ignored).
        clip_coef: ratios are clipped to ``[1 - clip_coef, 1 + clip_coef]``.

    Returns:
        loss = mean over tokens of ``max(-A r, -A clip(r))``; fraction of tokens with ``|r - 1| > clip_coef``;
        KL estimate ``mean((r - 1) - log r)``.
    """
    log_ratio = new_log_prob - old_log_prob
    ratio = log_ratio.exp()
    advantage = advantages.unsqueeze(-1).expand_as(ratio)
    surrogate = torch.max(-advantage * ratio, -advantage * ratio.clamp(1 - clip_coef, 1 + clip_coef))
    real = mask.to(ratio.dtype)
    count = real.sum().clamp_min(1)
    loss = (surrogate * real).sum() / count
    with torch.no_grad():
        clip_fraction = (((ratio - 1).abs() > clip_coef).to(ratio.dtype) * real).sum() / count
        approx_kl = (((ratio - 1) - log_ratio) * real).sum() / count
    return loss, clip_fraction, approx_kl


@dataclass
class Batch:
    """One update's episodes, padded to the longest network: obs ``(N, L, F)``, mask/actions/log_prob ``(N, L)``,
    advantages/returns ``(N,)``."""

    obs: Tensor
    mask: Tensor
    actions: Tensor
    log_prob: Tensor
    advantages: Tensor
    returns: Tensor


def ppo_update(
    policy: TokenPolicy, optimizer: torch.optim.Optimizer, batch: Batch, config: MappoConfig, generator: torch.Generator
) -> dict[str, float]:
    """``config.update_epochs`` passes of minibatch PPO over ``batch``; statistics averaged over minibatches."""
    count = batch.obs.shape[0]
    rows: list[dict[str, float]] = []
    for _ in range(config.update_epochs):
        order = torch.randperm(count, generator=generator)
        for index in order.tensor_split(min(config.num_minibatches, count)):
            mask = batch.mask[index]
            new_log_prob, entropy, value = policy.evaluate(batch.obs[index], mask, batch.actions[index])
            advantages = batch.advantages[index]
            if config.normalize_advantages:
                advantages = standardize(advantages)
            policy_loss, clip_fraction, approx_kl = clipped_policy_loss(
                new_log_prob, batch.log_prob[index], advantages, mask, config.clip_coef
            )
            value_loss = 0.5 * ((value - batch.returns[index]) ** 2).mean()
            mean_entropy = (entropy * mask).sum() / mask.sum()
            loss = policy_loss + config.vf_coef * value_loss - config.ent_coef * mean_entropy
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
            optimizer.step()
            rows.append({
                "policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "entropy": mean_entropy.item(),
                "clip_fraction": clip_fraction.item(), "approx_kl": approx_kl.item(),
            })
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
