"""One MAPPO update with TorchRL: the env wrapped as a TorchRL env (one group, "layer"), a shared-parameter actor
and a centralized critic, 16 one-step episodes collected, ClipPPOLoss and one Adam step. Prints the episodes' team
rewards and the loss. About 15 seconds on 2 CPU cores shared with other work.
"""

import torch

from pruning_env.integrations.torchrl import clip_ppo_loss, mappo_modules, torchrl_env

env = torchrl_env(reward="neg_loss", reward_steps=20, target_sparsity=0.98, seed=0)
actor, critic = mappo_modules(env)                      # shared-parameter actor, centralized critic
with torch.no_grad():
    data = env.rollout(16, policy=actor, break_when_any_done=False)   # 16 one-step episodes
loss = clip_ppo_loss(actor, critic, entropy_coeff=0.01)
optimizer = torch.optim.Adam(loss.parameters(), lr=1e-3)
values = loss(data)
total = values["loss_objective"] + values["loss_critic"] + values["loss_entropy"]
total.backward()
optimizer.step()
rewards = data["next", "layer", "reward"][:, 0, 0]      # the team reward of each episode (every layer gets it)
print("team rewards:", [round(reward, 3) for reward in rewards.tolist()])
print(f"PPO loss {total.item():.4f}")
