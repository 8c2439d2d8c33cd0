"""RLlib PPO with one policy shared by every layer agent, on a local Ray cluster of 2 CPUs: 2 training iterations
of 32 one-step episodes on mlp-digits at 0.98 with K = 10. Prints each iteration's mean episode return (RLlib sums
the agents' rewards: L x the team reward). About a minute on 2 CPU cores shared with other work, most of it Ray's
start.
"""

import ray
from ray.rllib.algorithms.ppo import PPOConfig

from pruning_env.integrations.rllib import register, with_shared_policy

ray.init(num_cpus=2, include_dashboard=False)
config = (
    PPOConfig()
    .environment(register(), env_config={"reward": "neg_loss", "reward_steps": 10, "target_sparsity": 0.98})
    .env_runners(num_env_runners=1)
    .training(train_batch_size_per_learner=32, minibatch_size=16)
)
algo = with_shared_policy(config).build_algo()
for iteration in range(2):  # a real run trains for many more iterations
    returns = algo.train()["env_runners"]["episode_return_mean"]   # L x the team reward (RLlib sums agents)
    print(f"iteration {iteration}: mean episode return {returns:.3f}")
algo.stop()
ray.shutdown()
