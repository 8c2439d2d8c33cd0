"""BenchMARL over PruningEnv: a ``TaskClass`` and a ``Task`` enum, so that BenchMARL's algorithms (MAPPO, IPPO,
MASAC, IQL, QMIX, VDN, ...) train on the pruning env with no change to BenchMARL.

    from benchmarl.algorithms import MappoConfig
    from benchmarl.experiment import Experiment
    from benchmarl.models import MlpConfig
    from pruning_env.integrations.benchmarl import PruningTask, experiment_config

    task = PruningTask.MLP_DIGITS.get_task(config={"target_sparsity": 0.98, "reward_steps": 20})
    experiment = Experiment(task=task, algorithm_config=MappoConfig.get_from_yaml(),
                            model_config=MlpConfig.get_from_yaml(), seed=0,
                            config=experiment_config(episodes=64, save_folder="runs/benchmarl"))
    experiment.run()

The task. Every prunable layer is an agent of one group, ``"layer"`` (TorchRL's ``PettingZooWrapper`` groups
``layer_*``); the policy sees ``("layer", "observation")`` ``(L, F)``; MAPPO's centralized critic and QMIX's mixer
read ``state`` ``(L x F,)``; the env's numeric infos are ``("layer", "info", key)`` (logged by ``log_info``, never
fed to a model). Continuous algorithms act with ``Box(0, 1)`` sparsities, discrete ones (IQL, QMIX, VDN) with the
env's sparsity bins (``action_bins``, default 21): BenchMARL chooses, so ``action_type`` is not a config field.
Every episode is one step, so one frame is one reward evaluation.

Config fields (``get_task(config={...})``): any ``PruningEnv`` keyword argument except ``action_type`` —
``target_sparsity`` (a float or a (low, high) range), ``reward``, ``reward_steps``, ``init``, ``scorer``,
``proxies``, ``action_bins``, ``device``, ... — plus ``task`` to pick any registered task by name (the enum
member's task by default: ``MLP_DIGITS`` is ``"mlp-digits"``). BenchMARL passes the experiment's seed: the
wrapper's first reset uses it.

YAML: ``PruningTask.MLP_DIGITS.get_from_yaml(path)`` reads a task config from a file of ours
(``pruning_env/integrations/benchmarl_tasks/mlp_digits.yaml``). BenchMARL's hydra CLI (``benchmarl/run.py``)
cannot load this task: it resolves ``task=<env>/<name>`` only against the configs and the ``task_config_registry``
inside its own package, so an outside task needs the Python API above.

Versions: benchmarl 1.5.2 with torchrl 0.11.1 and tensordict 0.11.0 (BenchMARL 1.5.2 imports
``torchrl.collectors.SyncDataCollector``, which torchrl 0.14 no longer has; our TorchRL integration passes its tests
on 0.11). Install benchmarl with ``--no-deps``: it declares torchvision and av, which it needs only for videos.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from benchmarl.environments import Task, TaskClass
from benchmarl.experiment import Callback, ExperimentConfig
from tensordict import TensorDictBase
from torchrl.data import Composite
from torchrl.envs import EnvBase

from pruning_env.integrations.torchrl import GROUP, torchrl_env

TASK_CONFIGS = Path(__file__).with_name("benchmarl_tasks")
"""YAML task configs of ours, one per enum member (``<member name lower>.yaml``)."""
LOGGED_INFOS: tuple[str, ...] = ("global_sparsity", "accuracy", "loss", "diverged")


def task_name(member: str) -> str:
    """The pruning task of an enum member's name: ``"MLP_DIGITS"`` -> ``"mlp-digits"``."""
    return member.lower().replace("_", "-")


class PruningTaskClass(TaskClass):
    """BenchMARL's view of ``PruningEnv``: ``name`` is the enum member's name, ``config`` the env options (see the
    module docstring)."""

    def get_env_fun(
        self, num_envs: int, continuous_actions: bool, seed: int | None, device: str | torch.device
    ) -> Callable[[], EnvBase]:
        # PruningEnv is not vectorized: BenchMARL runs num_envs copies in a SerialEnv (or ParallelEnv) of its own
        options = copy.deepcopy(dict(self.config))
        if "action_type" in options:
            raise ValueError("action_type is not a config field: BenchMARL picks continuous or discrete actions "
                             "from the algorithm (IQL, QMIX and VDN are discrete)")
        task = options.pop("task", task_name(self.name))
        options["action_type"] = "continuous" if continuous_actions else "discrete"
        return lambda: torchrl_env(seed=seed, wrapper_device=device, task=task, **options)

    def supports_continuous_actions(self) -> bool:
        return True

    def supports_discrete_actions(self) -> bool:
        return True

    def has_render(self, env: EnvBase) -> bool:
        return False  # the env renders an ANSI table; BenchMARL's video loggers want rgb_array frames

    def max_steps(self, env: EnvBase) -> int:
        return 1  # one-step episodes

    def group_map(self, env: EnvBase) -> dict[str, list[str]]:
        return env.group_map  # the wrapper's own map (BenchMARL issue #202: its reward-sum transform needs it)

    def observation_spec(self, env: EnvBase) -> Composite:
        return _only(env.observation_spec, "observation")

    def info_spec(self, env: EnvBase) -> Composite | None:
        return _only(env.observation_spec, "info")

    def state_spec(self, env: EnvBase) -> Composite | None:
        return Composite({"state": env.observation_spec["state"].clone()})

    def action_mask_spec(self, env: EnvBase) -> Composite | None:
        return None

    def action_spec(self, env: EnvBase) -> Composite:
        return env.full_action_spec

    @staticmethod
    def env_name() -> str:
        return "pruning"

    @staticmethod
    def log_info(batch: TensorDictBase) -> dict[str, float]:
        info = batch.get(("next", GROUP, "info"))
        return {f"collection/info/{key}": info.get(key).float().mean().item() for key in LOGGED_INFOS
                if key in info.keys()}


def _only(spec: Composite, key: str) -> Composite:
    """``spec`` without ``state`` and with only ``key`` under the agent group (every group entry of the
    observation spec is fed to BenchMARL's models)."""
    spec = spec.clone()
    for name in list(spec[GROUP].keys()):
        if name != key:
            del spec[GROUP][name]
    if "state" in spec.keys():
        del spec["state"]
    return spec


class PruningTask(Task):
    """The registered pruning tasks as BenchMARL tasks: ``PruningTask.MLP_DIGITS.get_task(config={...})``."""

    MLP_DIGITS = None
    CNN_DIGITS = None
    LENET300_MNIST = None
    LENET5_MNIST = None

    @staticmethod
    def associated_class() -> type[PruningTaskClass]:
        return PruningTaskClass

    def get_from_yaml(self, path: str | None = None) -> PruningTaskClass:
        """The task with the config of ``path``, by default ours in ``TASK_CONFIGS`` (BenchMARL's default path
        lies inside its own package)."""
        return super().get_from_yaml(str(TASK_CONFIGS / f"{self.name.lower()}.yaml") if path is None else path)


def experiment_config(
    episodes: int, save_folder: str | Path, *, frames_per_batch: int = 16, on_policy_epochs: int = 4,
    minibatch_size: int = 16, off_policy_steps: int = 16, evaluation_episodes: int = 0, device: str = "cpu",
) -> ExperimentConfig:
    """BenchMARL's base experiment config for a budget of ``episodes`` reward evaluations (= frames, one-step
    episodes), without loggers or checkpoints, writing under ``save_folder`` (created).

    ``evaluation_episodes`` > 0 adds BenchMARL's evaluation rollouts after every batch (each costs a reward
    evaluation of its own, outside the budget); 0 turns evaluation off.

    Raises:
        ValueError: if ``episodes`` is not a positive multiple of ``frames_per_batch``.
    """
    if episodes < frames_per_batch or episodes % frames_per_batch:
        raise ValueError(f"episodes must be a positive multiple of frames_per_batch ({frames_per_batch}), got {episodes}")
    Path(save_folder).mkdir(parents=True, exist_ok=True)
    config = ExperimentConfig.get_from_yaml()
    config.sampling_device = config.train_device = config.buffer_device = device
    config.max_n_frames, config.max_n_iters = episodes, None
    config.on_policy_collected_frames_per_batch = config.off_policy_collected_frames_per_batch = frames_per_batch
    config.on_policy_n_envs_per_worker = config.off_policy_n_envs_per_worker = 1
    config.on_policy_n_minibatch_iters = on_policy_epochs
    config.on_policy_minibatch_size = minibatch_size
    config.off_policy_n_optimizer_steps = off_policy_steps
    config.off_policy_train_batch_size = minibatch_size
    config.off_policy_memory_size = episodes
    config.off_policy_init_random_frames = 0
    config.evaluation = evaluation_episodes > 0
    config.evaluation_interval = frames_per_batch
    config.evaluation_episodes = max(evaluation_episodes, 1)
    config.render = False
    config.loggers = []
    config.create_json = evaluation_episodes > 0  # BenchMARL evaluates only with a logger or the JSON on
    config.save_folder = str(save_folder)
    config.checkpoint_interval = 0
    config.checkpoint_at_end = False
    return config



class RewardHistory(Callback):
    """A callback whose ``history`` gets one row per collected batch: ``episodes`` spent so far, ``reward_mean``
    (the batch's mean team reward) and ``best_reward`` so far (the rows every controller's history has)."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[dict[str, float]] = []

    def on_batch_collected(self, batch: TensorDictBase) -> None:
        rewards = batch.get(("next", GROUP, "reward"))[..., 0, 0]  # one team reward per episode
        last = self.history[-1] if self.history else {"episodes": 0.0, "best_reward": -np.inf}
        self.history.append({"episodes": last["episodes"] + rewards.numel(), "reward_mean": float(rewards.mean()),
                             "best_reward": max(float(rewards.max()), last["best_reward"])})
