"""The token policy: each prunable layer is a token, one set of weights serves any number of layers.

Observation ``(N, L, F)`` (padded to the longest network of the batch, ``mask`` True on real layers) ->
LayerNorm + Linear + GELU embedding -> transformer encoder (pre-LN, no positional encoding: the layer's position
is one of its features) -> an actor head per token and a centralized critic on the mean of the tokens.

Continuous actions: a squashed Gaussian. The policy draws ``z ~ Normal(mean, std)`` in logit space and requests
sparsity ``sigmoid(z)``, with ``mean = logit(1 - reference_density) + head`` and one learned ``log_std``. The
stored action is ``z`` and every log-probability is that of ``z``: the change of variables adds
``-log(s (1 - s))`` to the log-density of the sparsity ``s`` (see ``sparsity_log_prob``), a term that does not
depend on the parameters, so PPO's ratios and gradients are the same in either space; the entropy bonus is the
Gaussian's, in logit space (the space the env's budget projection works in).

Discrete actions (bin i requests sparsity i / (bins - 1)): a categorical whose logits are the head output plus a
Gaussian-shaped prior in logit space centred on the reference, so it too starts at the reference heuristic.

Autoregressive option (MAT): a transformer decoder whose token i sees the encoder's token i plus an embedding of
layer i-1's action (a learned start vector for layer 0), attends causally to earlier layers and to every encoded
layer. Training evaluates all layers at once (teacher forcing); acting samples layer by layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional

from agents.mappo.config import MappoConfig

DENSITY_FLOOR = 1e-4  # reference densities are clamped into [floor, 1 - floor] so their logits stay finite
LOG_STD_RANGE = (-5.0, 2.0)


def sparsity_log_prob(mean: Tensor, std: Tensor, sparsity: Tensor) -> Tensor:
    """Log-density of ``sparsity = sigmoid(z)``, ``z ~ Normal(mean, std)``: Gaussian at logit(s) - log(s (1 - s))."""
    z = torch.logit(sparsity)
    return torch.distributions.Normal(mean, std).log_prob(z) - torch.log(sparsity * (1 - sparsity))


def _encoder_block(config: MappoConfig) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(
        config.embed_dim, config.num_heads, 4 * config.embed_dim, dropout=0.0, activation="gelu",
        batch_first=True, norm_first=True,
    )


class TokenPolicy(nn.Module):
    """Actor-critic over layer tokens.

    Args:
        feature_names: the env's observation columns (``env.feature_names``).
        config: architecture fields of ``MappoConfig``.
        action_bins: number of discrete bins, or None for continuous actions.
    """

    def __init__(self, feature_names: Sequence[str], config: MappoConfig, action_bins: int | None = None) -> None:
        super().__init__()
        self.feature_names = list(feature_names)
        self.action_bins = action_bins
        self.autoregressive = config.autoregressive
        self.prior_width = config.prior_width
        if config.reference_feature is not None and config.reference_feature not in self.feature_names:
            raise ValueError(
                f"reference_feature must be None or one of the env's features {self.feature_names}, "
                f"got {config.reference_feature!r}"
            )
        self.reference_index = (
            None if config.reference_feature is None else self.feature_names.index(config.reference_feature)
        )
        dim, num_features = config.embed_dim, len(self.feature_names)
        self.embed = nn.Sequential(nn.LayerNorm(num_features), nn.Linear(num_features, dim), nn.GELU())
        self.encoder = nn.TransformerEncoder(_encoder_block(config), config.num_blocks, enable_nested_tensor=False)
        self.critic = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 1))
        self.actor = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 1 if action_bins is None else action_bins))
        nn.init.zeros_(self.actor[-1].weight)  # the head starts at 0: the initial policy is the reference
        nn.init.zeros_(self.actor[-1].bias)
        self.log_std = nn.Parameter(torch.tensor(float(config.init_log_std)))
        if self.autoregressive:
            block = nn.TransformerDecoderLayer(
                dim, config.num_heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
            )
            self.decoder = nn.TransformerDecoder(block, config.num_blocks)
            self.action_embed = nn.Linear(1 if action_bins is None else action_bins, dim)
            self.start = nn.Parameter(torch.zeros(dim))

    @property
    def discrete(self) -> bool:
        return self.action_bins is not None

    # --- pieces ---------------------------------------------------------------------------------------------
    def reference_logit(self, obs: Tensor) -> Tensor:
        """logit of the reference sparsity per token ``(N, L)`` (zeros without a reference)."""
        if self.reference_index is None:
            return torch.zeros(obs.shape[:2], device=obs.device)
        density = obs[..., self.reference_index].clamp(DENSITY_FLOOR, 1 - DENSITY_FLOOR)
        return torch.logit(1 - density)

    def encode(self, obs: Tensor, mask: Tensor) -> Tensor:
        """Tokens ``(N, L, D)`` of observations ``(N, L, F)``; ``mask`` ``(N, L)`` is True on real layers."""
        return self.encoder(self.embed(obs), src_key_padding_mask=~mask)

    def value(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Centralized value ``(N,)`` from the mean of the real tokens."""
        weights = mask.unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * weights).sum(1) / weights.sum(1).clamp_min(1)
        return self.critic(pooled).squeeze(-1)

    def _action_features(self, obs: Tensor, actions: Tensor) -> Tensor:
        """What the decoder sees of an action ``(N, L)``: its offset from the reference, or its bin one-hot."""
        if self.discrete:
            return functional.one_hot(actions.long(), self.action_bins).to(obs.dtype)
        return (actions - self.reference_logit(obs)).unsqueeze(-1)

    def _head_input(self, obs: Tensor, tokens: Tensor, mask: Tensor, actions: Tensor | None) -> Tensor:
        """Per-token input of the actor head; ``actions`` (teacher forcing) only matter when autoregressive."""
        if not self.autoregressive:
            return tokens
        count, length, dim = tokens.shape
        previous = self.start.expand(count, 1, dim)
        if length > 1:
            assert actions is not None
            embedded = self.action_embed(self._action_features(obs[:, :-1], actions[:, : length - 1]))
            previous = torch.cat([previous, embedded], dim=1)
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device, dtype=torch.bool)
        return self.decoder(
            previous + tokens, tokens, tgt_mask=causal, tgt_is_causal=True,
            tgt_key_padding_mask=~mask, memory_key_padding_mask=~mask,
        )

    def distribution(self, obs: Tensor, head_input: Tensor) -> torch.distributions.Distribution:
        """Per-token action distribution (batch shape ``(N, L)``): Normal over logits, or Categorical over bins."""
        head = self.actor(head_input)
        reference = self.reference_logit(obs)
        if not self.discrete:
            std = self.log_std.clamp(*LOG_STD_RANGE).exp().expand_as(reference)
            return torch.distributions.Normal(reference + head.squeeze(-1), std)
        bins = torch.linspace(0, 1, self.action_bins, device=obs.device).clamp(DENSITY_FLOOR, 1 - DENSITY_FLOOR)
        prior = -0.5 * ((torch.logit(bins) - reference.unsqueeze(-1)) / self.prior_width) ** 2
        return torch.distributions.Categorical(logits=head + prior)

    # --- what PPO and the controller call -------------------------------------------------------------------
    def evaluate(self, obs: Tensor, mask: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Log-probabilities ``(N, L)`` and entropies ``(N, L)`` of stored actions, and values ``(N,)``."""
        tokens = self.encode(obs, mask)
        dist = self.distribution(obs, self._head_input(obs, tokens, mask, actions))
        return dist.log_prob(actions), dist.entropy(), self.value(tokens, mask)

    @torch.no_grad()
    def act(
        self, obs: Tensor, mask: Tensor, generator: torch.Generator | None = None, deterministic: bool = False
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Actions ``(N, L)`` (logits of the sparsity, or bin indices as floats), their log-probs, values ``(N,)``.

        ``deterministic``: the mean logit (continuous) or the most likely bin (discrete), else a sample drawn
        with ``generator``.
        """
        tokens = self.encode(obs, mask)
        if not self.autoregressive:
            dist = self.distribution(obs, tokens)
            actions = self._choose(dist, generator, deterministic)
            return actions, dist.log_prob(actions), self.value(tokens, mask)
        actions = torch.zeros(obs.shape[:2], device=obs.device)
        for index in range(obs.shape[1]):  # layer i's distribution needs the actions of layers 0..i-1
            dist = self.distribution(obs, self._head_input(obs, tokens, mask, actions))
            actions[:, index] = self._choose(dist, generator, deterministic)[:, index]
        # the last pass saw every earlier action, so its distribution is right for every layer
        return actions, dist.log_prob(actions), self.value(tokens, mask)

    def _choose(self, dist: torch.distributions.Distribution, generator: torch.Generator | None, deterministic: bool) -> Tensor:
        if isinstance(dist, torch.distributions.Normal):
            if deterministic:
                return dist.mean
            noise = torch.randn(dist.mean.shape, generator=generator, device=dist.mean.device)
            return dist.mean + dist.stddev * noise
        if deterministic:
            return dist.probs.argmax(-1).float()
        flat = dist.probs.reshape(-1, dist.probs.shape[-1])
        return torch.multinomial(flat, 1, generator=generator).reshape(dist.probs.shape[:-1]).float()


def sparsities(actions: Tensor) -> Tensor:
    """Continuous actions (logits) -> requested sparsities in (0, 1)."""
    return torch.sigmoid(actions)
