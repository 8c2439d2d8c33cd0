"""A controller of your own for the benchmark: global SNIP's sparsities pulled halfway towards the target, read from
the observation's columns (``env.feature_names``). With this file in the repository root (or on ``PYTHONPATH``),
``make bench SUITE=tiny CONTROLLER=my_pruners:HalfSnip`` adds its row beside ours. Run as a script, it acts once
on mlp-digits at 98% sparsity and prints the requested and achieved sparsities (about 6 seconds on 2 CPU cores).
"""

import numpy as np

from agents.base import stacked, to_actions


class HalfSnip:
    """Global SNIP's sparsities pulled halfway towards the target."""
    name = "half_snip"

    def __init__(self, env, seed=0):
        self.density = env.feature_names.index("snip_density")
        self.target = env.feature_names.index("target_sparsity")

    def act(self, observations, infos):
        obs = stacked(observations)
        return to_actions(0.5 * (1 - obs[:, self.density]) + 0.5 * obs[:, self.target])


if __name__ == "__main__":
    from pruning_env import PruningEnv

    env = PruningEnv("mlp-digits", target_sparsity=0.98, reward="zero_cost")   # zero_cost: no training, fast
    observations, infos = env.reset(seed=0)
    actions = HalfSnip(env).act(observations, infos)
    _, rewards, _, _, infos = env.step(actions)
    print("requested:", np.round([actions[agent][0] for agent in env.possible_agents], 4).tolist())
    print("applied:", [round(infos[agent]["applied_sparsity"], 4) for agent in env.possible_agents])
    print("global sparsity:", round(infos["layer_0"]["global_sparsity"], 6))
