"""BenchMARL's algorithms as controllers of our benchmark: ``benchmarl_mappo``, ``benchmarl_ippo`` (continuous
sparsities) and ``benchmarl_iql`` (the env's sparsity bins), trained by BenchMARL's own ``Experiment`` on the
task of ``pruning_env.integrations.benchmarl`` with the benchmark's budget of reward evaluations (one frame = one
one-step episode = one reward evaluation; BenchMARL's evaluation rollouts are off, so nothing is spent outside the
budget), their final policy's deterministic plan then trained fully and tested like every controller's.

    controller = agents.make_controller("benchmarl_mappo", env, seed=0)
    controller.train(lambda: PruningEnv("mlp-digits", target_sparsity=0.98, init=0), episodes=96, seed=0)
    actions = controller.act(*env.reset(seed=0))

BenchMARL rebuilds the env from its options (``env.config``: task, target, reward, K, init, scorer, proxies,
bins, device), so these controllers train on registered tasks, not on an env built around your own module.
BenchMARL is imported when a controller is built (about 4 s), not with ``agents``.
"""

from __future__ import annotations

import copy
import functools
import tempfile
import time
from typing import Any

import torch

from agents.base import (
    Actions,
    EnvFactory,
    Observations,
    TrainingReport,
    register_controller,
    stacked,
    to_actions,
)

ALGORITHMS: tuple[str, ...] = ("mappo", "ippo", "iql")


def algorithm_config(algorithm: str) -> Any:
    """BenchMARL's default config of ``algorithm`` (its YAML)."""
    from benchmarl.algorithms import IppoConfig, IqlConfig, MappoConfig

    configs = {"mappo": MappoConfig, "ippo": IppoConfig, "iql": IqlConfig}
    if algorithm not in configs:
        raise ValueError(f"unknown BenchMARL algorithm {algorithm!r}; known: {', '.join(configs)}")
    return configs[algorithm].get_from_yaml()


class BenchMARLController:
    """A BenchMARL algorithm trained on the pruning task (a ``TrainableController``).

    Args:
        env: the env it will act on (its ``feature_names`` and ``action_bins`` are read).
        seed: BenchMARL's experiment seed when ``train`` is given none.
        algorithm: ``"mappo"``, ``"ippo"`` or ``"iql"``.
        hidden: widths of BenchMARL's MLP (policy, critic and Q-network).
        frames_per_batch: episodes collected per BenchMARL iteration; the budget is rounded down to a multiple.
    """

    kind = "learner"
    accepts_pool = False
    accepts_on_update = False
    budget_unit = "evaluations"

    def __init__(self, env: Any, seed: int = 0, algorithm: str = "mappo", hidden: tuple[int, ...] = (64, 64),
                 frames_per_batch: int = 16) -> None:
        self.algorithm_config = algorithm_config(algorithm)
        self.name = f"benchmarl_{algorithm}"
        self.algorithm = algorithm
        self.seed = seed
        self.hidden = list(hidden)
        self.frames_per_batch = frames_per_batch
        self.action_bins = int(env.action_bins)
        self.policy: Any = None
        self.continuous = True

    def train(self, make_env: EnvFactory, episodes: int, seed: int) -> TrainingReport:
        """Train with BenchMARL for ``episodes`` reward evaluations (rounded down to a multiple of
        ``frames_per_batch``) on the env ``make_env`` builds; one history row per BenchMARL iteration."""
        from benchmarl.experiment import Experiment
        from benchmarl.models import MlpConfig

        from pruning_env.integrations.benchmarl import PruningTaskClass, RewardHistory, experiment_config

        frames = episodes // self.frames_per_batch * self.frames_per_batch
        if frames < self.frames_per_batch:
            raise ValueError(f"{self.name} needs episodes >= frames_per_batch ({self.frames_per_batch}), got {episodes}")
        task = PruningTaskClass(name=self.name.upper(), config=task_config(make_env()))
        model = MlpConfig.get_from_yaml()
        model.num_cells = self.hidden
        rows = RewardHistory()
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="benchmarl") as folder:
            experiment = Experiment(
                task=task, algorithm_config=self.algorithm_config, model_config=model,
                critic_model_config=copy.deepcopy(model), seed=seed,
                config=experiment_config(frames, folder, frames_per_batch=self.frames_per_batch), callbacks=[rows],
            )
            experiment.run()
        self.policy, self.continuous = experiment.policy, experiment.continuous_actions
        return TrainingReport(frames, time.perf_counter() - start, rows.history[-1]["best_reward"], rows.history)

    def act(self, observations: Observations, infos: dict[str, dict[str, float]]) -> Actions:
        """The trained policy's deterministic plan (the mean action, or the greedy bin)."""
        from tensordict import TensorDict
        from torchrl.envs.utils import ExplorationType, set_exploration_type

        if self.policy is None:
            raise ValueError(f"{self.name}.act() needs a trained policy: call train() first")
        data = TensorDict({("layer", "observation"): torch.as_tensor(stacked(observations), dtype=torch.float32)},
                          batch_size=[])
        with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
            action = self.policy(data).get(("layer", "action"))
        sparsities = action[:, 0].double() if self.continuous else action.double() / (self.action_bins - 1)
        return to_actions(sparsities.numpy())


def task_config(env: Any) -> dict[str, Any]:
    """The BenchMARL task config that rebuilds ``env`` (a ``PruningEnv`` of a registered task) from its options."""
    config = env.config
    return {
        "task": config.task.name, "target_sparsity": list(config.target_range), "reward": config.reward,
        "reward_steps": config.reward_steps, "init": config.init, "scorer": config.scorer,
        "proxies": list(config.proxies), "action_bins": config.action_bins, "device": str(config.device),
    }


for _algorithm in ALGORITHMS:
    register_controller(f"benchmarl_{_algorithm}")(functools.partial(BenchMARLController, algorithm=_algorithm))
