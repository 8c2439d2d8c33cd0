"""The transformer MAPPO configuration: one frozen dataclass, one docstring per field (tyro turns them into --help)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

EpisodeSeeds = Literal["auto", "fixed", "fresh"]
ActPlan = Literal["mean", "best"]
RUN_FIELDS: frozenset[str] = frozenset(
    {"out", "resume", "overwrite", "workers", "ray_address", "progress", "tensorboard", "checkpoint_every"}
)
"""Fields that change where and how a run is executed, never its numbers (a resumed run may change them)."""


@dataclass(frozen=True)
class MappoConfig:
    """Transformer MAPPO over layer tokens (one set of weights for any number of layers)."""

    # --- policy ---------------------------------------------------------------------------------------------
    autoregressive: bool = False
    """MAT-style decoder: each layer's action is conditioned on the earlier layers' actions (else encoder-only)."""
    embed_dim: int = 64
    """Width of the token embedding and of the transformer."""
    num_blocks: int = 2
    """Transformer blocks of the encoder (and of the decoder when autoregressive)."""
    num_heads: int = 2
    """Attention heads; must divide embed_dim."""
    reference_feature: str | None = "snip_density"
    """Observation column holding the reference density the actor is an offset from (mean logit of the sparsity
    = logit(1 - reference) + head output, the head starting at 0, so the initial policy is that heuristic);
    None: no reference (the initial mean is sparsity 0.5 everywhere, i.e. uniform after the budget projection)."""
    init_log_std: float = -1.0
    """Initial log standard deviation of the Gaussian over the sparsity's logit (continuous actions)."""
    prior_width: float = 1.0
    """Discrete actions: width (logit units) of the Gaussian-shaped prior over bins centred on the reference."""

    # --- PPO ------------------------------------------------------------------------------------------------
    episodes_per_update: int = 24
    """One-step episodes collected per PPO update."""
    update_epochs: int = 8
    """Passes over each batch."""
    num_minibatches: int = 2
    """Minibatches per pass (episodes are split evenly)."""
    learning_rate: float = 3e-3
    """Adam learning rate."""
    clip_coef: float = 0.2
    """PPO ratio clipping: ratios outside [1 - clip, 1 + clip] earn no further gain."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clipping."""
    normalize_advantages: bool = True
    """Standardize advantages within each minibatch."""
    normalize_rewards: bool = True
    """Standardize rewards with running mean and std (all episodes so far) before the critic sees them."""
    group_size: int = 1
    """Consecutive episodes that share one instance (task, initialization, target) and differ only in the
    action sample. 1: advantage = reward - critic value. > 1: advantage = reward - mean reward of the other
    episodes of its group (leave-one-out baseline, as RLOO and GRPO), so how hard the instance is drops out."""

    act_plan: ActPlan = "mean"
    """What ``act`` returns after training. "mean": the policy's most likely action. "best": on the observation
    of the best episode evaluated in training (the per-instance protocol, every episode on one instance: any
    observation of it), that episode's plan, as a searcher returns its best plan; on any other observation the
    mean."""

    # --- collection -----------------------------------------------------------------------------------------
    workers: int = 1
    """Env copies in worker processes (1: in-process, no subprocess), or Ray actors with ``ray_address``."""
    ray_address: str | None = None
    """Ray cluster for the env workers ("auto", "host:port", "ray://host:10001"; "local" starts one); None: local
    processes."""
    episode_seeds: EpisodeSeeds = "auto"
    """"fixed": every episode resets with the run's seed (one instance: per-instance search); "fresh": a new
    seed per episode (new initializations and targets where the env draws them); "auto": fresh when the env
    draws something per episode (init="per_episode" or a target range), else fixed."""

    # --- output ---------------------------------------------------------------------------------------------
    out: str | None = None
    """Run folder for the CSV log, TensorBoard events, checkpoints, the learning curve and the final controller
    (None: keep nothing on disk)."""
    resume: bool = False
    """Continue from the checkpoint in ``out``."""
    overwrite: bool = False
    """Replace the run in ``out`` (its checkpoint, log, curve and controller); without it or ``resume`` a folder
    that already holds a run is refused."""
    checkpoint_every: int = 5
    """Write a checkpoint every this many updates (and at the end)."""
    progress: bool = True
    """Show a progress bar (episodes)."""
    tensorboard: bool = True
    """Also log to TensorBoard when tensorboardX or tensorboard is installed."""

    def __post_init__(self) -> None:
        positive = ("embed_dim", "num_blocks", "num_heads", "episodes_per_update", "update_epochs",
                    "num_minibatches", "workers", "checkpoint_every", "group_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"num_heads must divide embed_dim ({self.embed_dim}), got {self.num_heads}")
        for name in ("learning_rate", "clip_coef", "max_grad_norm", "prior_width"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("vf_coef", "ent_coef"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.act_plan not in ("mean", "best"):
            raise ValueError(f"act_plan must be 'mean' or 'best', got {self.act_plan!r}")
        if self.episode_seeds not in ("auto", "fixed", "fresh"):
            raise ValueError(f"episode_seeds must be 'auto', 'fixed' or 'fresh', got {self.episode_seeds!r}")
        if self.resume and self.out is None:
            raise ValueError("resume=True needs out (the run folder holding the checkpoint)")
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other: continue the run in out, or replace it")

    def numbers(self) -> MappoConfig:
        """This config with the run-only fields (``RUN_FIELDS``) at their defaults: equal iff same numbers."""
        defaults = MappoConfig()
        return replace(self, **{f.name: getattr(defaults, f.name) for f in fields(self) if f.name in RUN_FIELDS})
