"""The shipped ``pretrained`` controller prunes a network of your own zero-shot, at initialization: a two-branch
module (a small conv branch beside a dense one) on the digits data, at 98% sparsity. No reward is trained
(``reward="zero_cost"``): only the plan is wanted. Prints each layer's sparsity and the global one. About 6 seconds
on 2 CPU cores.
"""

import torch
from torch import nn

import agents
from pruning_env import PruningEnv


class TwoBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 24, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.dense = nn.Sequential(nn.Flatten(), nn.Linear(64, 300), nn.ReLU())
        self.head = nn.Linear(96 + 300, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.conv(x), self.dense(x)], dim=1))


# digits data for the proxies; reward="zero_cost" because only the plan is wanted, not a trained reward
env = PruningEnv("mlp-digits", model=TwoBranch(), target_sparsity=0.98, reward="zero_cost")
controller = agents.make_controller("pretrained", env)
observations, infos = env.reset(seed=0)
_, _, _, _, infos = env.step(controller.act(observations, infos))
print({name: round(1 - mask.float().mean().item(), 4) for name, mask in env.last_masks.items()})  # per-layer sparsity
print("global sparsity:", round(infos["layer_0"]["global_sparsity"], 6))
pruned = env.pruned_model()   # the initialization with the pruned weights zeroed; env.last_masks hold them
