"""TorchRL over PruningEnv: the PettingZoo wrapper, MAPPO actor and critic modules, and a ClipPPOLoss for them.

    from pruning_env.integrations.torchrl import clip_ppo_loss, mappo_modules, torchrl_env

    env = torchrl_env(reward="neg_loss", reward_steps=20, seed=0)     # group "layer": every layer agent
    actor, critic = mappo_modules(env)
    with torch.no_grad():
        data = env.rollout(8, policy=actor, break_when_any_done=False)  # 8 one-step episodes, batch (8,)
    loss = clip_ppo_loss(actor, critic)
    values = loss(data)
    (values["loss_objective"] + values["loss_critic"] + values["loss_entropy"]).backward()

Keys. The layer agents form one group ``GROUP`` = ``"layer"``: observations ``("layer", "observation")``
``(..., L, F)``, actions ``("layer", "action")`` (``(..., L, 1)`` float32 continuous, ``(..., L)`` int64 bin
indices discrete), rewards and done flags ``("layer", "reward" | "done" | "terminated")`` ``(..., L, 1)``, the
env's numeric infos under ``("layer", "info", <key>)`` ``(..., L)`` float32, and ``state`` ``(..., L x F)``.
Every episode is one step: a rollout with ``break_when_any_done=False`` resets after every step.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from tensordict.nn import TensorDictModule
from tensordict.nn.distributions import NormalParamExtractor
from torch import nn
from torchrl.envs import PettingZooWrapper
from torchrl.modules import MultiAgentMLP, ProbabilisticActor, TanhNormal, ValueOperator
from torchrl.objectives import ClipPPOLoss

from pruning_env.parallel import PruningEnv

GROUP = "layer"


def torchrl_env(
    seed: int | None = None, wrapper_device: str | torch.device = "cpu", **env_kwargs: Any
) -> PettingZooWrapper:
    """``PruningEnv(**env_kwargs)`` as a TorchRL env with one agent group, ``GROUP``, its tensordicts on
    ``wrapper_device`` (the env's own ``device`` option says where it trains); reset with ``seed`` if given."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PettingZoo in TorchRL is tested using version")
        return PettingZooWrapper(PruningEnv(**env_kwargs), return_state=True, categorical_actions=True, seed=seed,
                                 device=wrapper_device)


def mappo_modules(env: PettingZooWrapper, hidden: int = 64, depth: int = 2) -> tuple[ProbabilisticActor, ValueOperator]:
    """A stochastic actor shared by every layer agent and a centralized critic (MAPPO), for continuous or discrete.

    Continuous actions: a tanh-Normal squashed into the action bounds [0, 1]; discrete: a categorical over the
    bins. The actor writes ``("layer", "action")`` and its log-probability ``("layer", "action_log_prob")``; the
    critic reads every layer's observation and writes ``("layer", "state_value")`` ``(..., L, 1)``.
    """
    spec = env.full_action_spec[GROUP, "action"]
    num_agents, num_features = env.observation_spec[GROUP, "observation"].shape[-2:]
    discrete = not spec.dtype.is_floating_point
    outputs = spec.space.n if discrete else 2

    def agents_mlp(out: int, centralized: bool) -> MultiAgentMLP:
        return MultiAgentMLP(num_features, out, num_agents, centralized=centralized, share_params=True,
                             num_cells=hidden, depth=depth, activation_class=nn.Tanh)

    if discrete:
        head = TensorDictModule(agents_mlp(outputs, False), [(GROUP, "observation")], [(GROUP, "logits")])
        actor_kwargs: dict[str, Any] = {"in_keys": [(GROUP, "logits")], "distribution_class": torch.distributions.Categorical}
    else:
        net = nn.Sequential(agents_mlp(outputs, False), NormalParamExtractor())
        head = TensorDictModule(net, [(GROUP, "observation")], [(GROUP, "loc"), (GROUP, "scale")])
        actor_kwargs = {
            "in_keys": [(GROUP, "loc"), (GROUP, "scale")],
            "distribution_class": TanhNormal,
            "distribution_kwargs": {"low": spec.space.low, "high": spec.space.high},
        }
    actor = ProbabilisticActor(
        head,
        out_keys=[(GROUP, "action")],
        return_log_prob=True,
        log_prob_key=(GROUP, "action_log_prob"),
        **actor_kwargs,
    )
    critic = ValueOperator(agents_mlp(1, True), in_keys=[(GROUP, "observation")], out_keys=[(GROUP, "state_value")])
    return actor, critic


def clip_ppo_loss(actor: ProbabilisticActor, critic: ValueOperator, **kwargs: Any) -> ClipPPOLoss:
    """TorchRL's ``ClipPPOLoss`` reading the group's keys (advantages by GAE, computed when absent)."""
    loss = ClipPPOLoss(actor, critic, **kwargs)
    loss.set_keys(
        reward=(GROUP, "reward"),
        action=(GROUP, "action"),
        sample_log_prob=(GROUP, "action_log_prob"),
        value=(GROUP, "state_value"),
        done=(GROUP, "done"),
        terminated=(GROUP, "terminated"),
        advantage=(GROUP, "advantage"),
        value_target=(GROUP, "value_target"),
    )
    return loss
