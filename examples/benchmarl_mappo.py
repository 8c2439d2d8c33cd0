"""BenchMARL's MAPPO on the env as a BenchMARL task (no fork of BenchMARL): 32 one-step episodes, i.e. 2 iterations
of 16, on one instance (``init=0``) of mlp-digits at 0.98 with K = 20. Prints each iteration's mean reward. Writes
its run folder to runs/benchmarl. About 20 seconds on 2 CPU cores shared with other work.
"""

import copy

from benchmarl.algorithms import MappoConfig
from benchmarl.experiment import Experiment
from benchmarl.models import MlpConfig

from pruning_env.integrations.benchmarl import PruningTask, RewardHistory, experiment_config

if __name__ == "__main__":
    task = PruningTask.MLP_DIGITS.get_task(config={"target_sparsity": 0.98, "reward_steps": 20, "init": 0})
    model = MlpConfig.get_from_yaml()
    model.num_cells = [64, 64]
    history = RewardHistory()
    experiment = Experiment(task=task, algorithm_config=MappoConfig.get_from_yaml(), model_config=model,
                            critic_model_config=copy.deepcopy(model), seed=0,
                            config=experiment_config(episodes=32, save_folder="runs/benchmarl"), callbacks=[history])
    experiment.run()                                   # 2 iterations of 16 one-step episodes
    print("mean reward per iteration:", [round(row["reward_mean"], 3) for row in history.history])
