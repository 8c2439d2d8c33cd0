"""Named tasks: a network, a dataset, a default target and the reward's and final evaluation's schedules.

| task             | id                    | network        | data     | target | reward steps K | final training          |
|------------------|-----------------------|----------------|----------|--------|----------------|-------------------------|
| mlp-digits       | MlpDigits-v1          | MLP 64-256x4-128-10 | digits (embedded) | 0.98 | 100 Adam lr 1e-2 | 600 steps Adam lr 3e-3, cosine |
| cnn-digits       | CnnDigits-v1          | small CNN      | digits (embedded) | 0.98 | 100 Adam lr 1e-2 | 600 steps Adam lr 3e-3, cosine |
| lenet300-mnist   | Lenet300Mnist-v1      | LeNet-300-100  | MNIST    | 0.98   | 100 Adam       | 20 epochs SGD (SNIP's optimizer), cosine |
| lenet5-mnist     | Lenet5Mnist-v1        | LeNet-5-Caffe  | MNIST    | 0.99   | 100 Adam       | 20 epochs SGD (SNIP's optimizer), cosine |
| resnet20-cifar10 | Resnet20Cifar10-v1    | ResNet-20      | CIFAR-10 | 0.90   | 100 SGD        | 160 epochs SGD, cosine  |
| vgg19-cifar10    | Vgg19Cifar10-v1       | VGG-19-bn      | CIFAR-10 | 0.90   | 100 SGD        | 160 epochs SGD, cosine  |

FLOPs variants (``FLOPS_TASKS``): the same tasks with ``budget="flops"``, where the target is the fraction of the
prunable layers' multiply-accumulates per sample removed (``pruning_env.budget``); same target values.

| task                   | id                      | of               | prunable MACs per sample (weights) |
|------------------------|-------------------------|------------------|------------------------------------|
| cnn-digits-flops       | CnnDigitsFlops-v1       | cnn-digits       | 0.93 M (0.10 M)                    |
| lenet5-mnist-flops     | Lenet5MnistFlops-v1     | lenet5-mnist     | 2.29 M (0.43 M)                    |
| resnet20-cifar10-flops | Resnet20Cifar10Flops-v1 | resnet20-cifar10 | 40.8 M (0.27 M)                    |
| vgg19-cifar10-flops    | Vgg19Cifar10Flops-v1    | vgg19-cifar10    | 398 M (20.0 M)                     |

The MLP tasks have none: in a network of Linear layers every weight costs one MAC, so a FLOPs budget is the weight
budget.

Trained variants (``TRAINED_TASKS``, ``prune_at="trained"``): the network trained from its seeded initialization
with the final schedule is pruned (``pruning_env.trained``), with magnitude masks, and by default the reward reads
the pruned network with no fine-tuning (``reward_steps=0``, one forward pass). The benchmark's final evaluation
reads the pruned network as it is (zero-shot) and after a short fine-tuning with its masks held (``finetune``:
on digits ``DIGITS_FINETUNE``, 50 steps of Adam at lr 1e-3, cosine: a twelfth of the final schedule's steps, which recovers most
of the accuracy of a sound allocation and not that of a poor one: at 0.9, mean of init seeds 0-1, test accuracy after
it is 98.1 / 96.8 / 85.5% for LAMP / global magnitude / uniform on cnn-digits, where all three read 10-12% zero-shot).

| task               | id                  | of         | target | dense         | uniform       | global magnitude |
|--------------------|---------------------|------------|--------|---------------|---------------|------------------|
| mlp-digits-trained | MlpDigitsTrained-v1 | mlp-digits | 0.90   | 0.965 / 0.951 | 0.236 / 0.271 | 0.479 / 0.542    |
| cnn-digits-trained | CnnDigitsTrained-v1 | cnn-digits | 0.70   | 0.993 / 0.972 | 0.257 / 0.104 | 0.840 / 0.778    |

(zero-shot validation accuracy of the pruned trained network, init seeds 0 / 1.)
Their targets are where the allocation decides (measured on the CPU, the same two seeds): at 0.5 the MLP's uniform
and global plans are within 2 points of dense, at 0.8 the CNN's are at 0.10-0.20 (chance: 0.10).

The MNIST LeNets' trained variants (``lenet300-mnist-trained``, ``Lenet300MnistTrained-v1``, target 0.95;
``lenet5-mnist-trained``, ``Lenet5MnistTrained-v1``, target 0.98) fine-tune with ``MNIST_FINETUNE`` (100 steps of
Adam at lr 1e-3, cosine, batch 100). Zero-shot validation accuracy at their targets, init seed 0: LeNet-300-100
uniform 83.0%, ERK 91.6%, LAMP 90.3%, global magnitude 90.4%; LeNet-5 uniform 12.7%, ERK 62.9%, LAMP 87.7%, global
magnitude 85.9%. Their first use trains the network (10,000 steps: about 25 s for LeNet-300-100 and 12 minutes for
LeNet-5 on one CPU core), cached.

Every id lives in the ``pruning_env/`` namespace (``gymnasium.make("pruning_env/MlpDigits-v1")``). The version
is bumped whenever a task's behaviour changes (v1: the default reward is ``neg_loss``; it was ``accuracy`` in v0). Look tasks up (and family members) with
``pruning_env.registry.get_task``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from torch import nn

from pruning_env.budget import Budget
from pruning_env.models import ArchSpec, build_model
from pruning_env.training import TrainConfig

DIGITS_PROXY = TrainConfig(steps=100, batch_size=128, optimizer="adam", lr=1e-2)
DIGITS_FINAL = TrainConfig(steps=600, batch_size=128, optimizer="adam", lr=3e-3)
DIGITS_FINETUNE = TrainConfig(steps=50, batch_size=128, optimizer="adam", lr=1e-3)
MNIST_PROXY = TrainConfig(steps=100, batch_size=128, optimizer="adam", lr=1e-3)
# SNIP's optimizer (SGD, momentum 0.9, batch 100, weight decay 5e-4, lr 0.1) for 20 epochs of 50k samples
MNIST_FINAL = TrainConfig(steps=10_000, batch_size=100, optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4)
# the trained LeNets' fine-tuning: a sixth of an epoch (1% of MNIST_FINAL's steps), which keeps a final evaluation of
# LeNet-5 at about 7 s on one CPU core
MNIST_FINETUNE = TrainConfig(steps=100, batch_size=100, optimizer="adam", lr=1e-3)
CIFAR_PROXY = TrainConfig(steps=100, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4)
# 160 epochs of 45k samples at batch 128, as in the SynFlow experiments
CIFAR_FINAL = TrainConfig(steps=56_250, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4)

DEFAULT_PROXIES: tuple[str, ...] = ("magnitude", "snip", "grasp", "synflow", "lamp")
PruneAt = Literal["init", "trained"]
PRUNE_AT: tuple[str, ...] = ("init", "trained")
TRAINED_SCORER = "magnitude"
"""The within-layer mask criterion of the trained variants (and of ``prune_at="trained"`` on another task)."""


@dataclass(frozen=True)
class Task:
    """Everything that defines one pruning problem apart from the controller."""

    name: str
    """Registry key, e.g. ``"mlp-digits"``."""
    env_id: str
    """Versioned id without namespace, e.g. ``"MlpDigits-v1"``."""
    model: str | ArchSpec
    """Key of ``pruning_env.models.MODELS``, or a generated architecture (``pruning_env.families``)."""
    dataset: str
    """Name for ``pruning_env.data.load_dataset``."""
    target_sparsity: float
    """Default global sparsity target (fraction of prunable weights removed)."""
    reward_train: TrainConfig
    """Schedule of the proxy reward's K training steps."""
    final_train: TrainConfig
    """Schedule of the benchmark's full training."""
    scorer: str = "snip"
    """Within-layer mask criterion."""
    proxies: tuple[str, ...] = DEFAULT_PROXIES
    """Proxies (scorer names) whose statistics feed the observation."""
    reward: str = "neg_loss"
    """Default reward kind (see ``pruning_env.rewards.REWARDS``): minus the validation loss after K steps, the
    kind the fidelity benchmark measured to rank plans best."""
    reward_eval_size: int = 1000
    """Size of the fixed validation subset the reward evaluates on (the whole split when smaller)."""
    tags: tuple[str, ...] = field(default=())
    """``"embedded"`` when the data ships with the package (no download)."""
    budget: Budget = "weights"
    """What ``target_sparsity`` is a fraction of: the prunable weights, or (``"flops"``) the prunable layers'
    multiply-accumulates per sample."""
    prune_at: PruneAt = "init"
    """What a plan prunes: the seeded initialization (``"init"``) or the network trained from it with
    ``final_train`` (``"trained"``, ``pruning_env.trained``)."""
    finetune: TrainConfig | None = None
    """The benchmark's fine-tuning of a pruned trained network (``prune_at="trained"``), masks held; None:
    ``final_train``."""

    @property
    def evaluation_train(self) -> TrainConfig:
        """The schedule the benchmark's final evaluation trains a pruned network with: ``final_train`` from θ0, or
        on a trained task its ``finetune`` of the pruned trained weights."""
        return self.finetune if self.prune_at == "trained" and self.finetune is not None else self.final_train


def flops_variant(task: Task) -> Task:
    """``task`` under a FLOPs budget: named ``<name>-flops``, id ``<Stem>Flops-v<N>`` (``"CnnDigitsFlops-v1"``)."""
    stem, version = task.env_id.rsplit("-", 1)
    return replace(task, name=f"{task.name}-flops", env_id=f"{stem}Flops-{version}", budget="flops")


def trained_variant(task: Task, target_sparsity: float, finetune: TrainConfig) -> Task:
    """``task`` pruned after training at another default target: named ``<name>-trained``, id
    ``<Stem>Trained-v<N>`` (``"MlpDigitsTrained-v1"``), magnitude masks (``TRAINED_SCORER``), the benchmark's
    fine-tuning ``finetune``."""
    stem, version = task.env_id.rsplit("-", 1)
    return replace(task, name=f"{task.name}-trained", env_id=f"{stem}Trained-{version}", prune_at="trained",
                   scorer=TRAINED_SCORER, target_sparsity=target_sparsity, finetune=finetune)


WEIGHT_TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task("mlp-digits", "MlpDigits-v1", "mlp_digits", "digits", 0.98, DIGITS_PROXY, DIGITS_FINAL, tags=("embedded",)),
        Task("cnn-digits", "CnnDigits-v1", "cnn_digits", "digits", 0.98, DIGITS_PROXY, DIGITS_FINAL, tags=("embedded",)),
        Task("lenet300-mnist", "Lenet300Mnist-v1", "lenet300", "mnist", 0.98, MNIST_PROXY, MNIST_FINAL),
        Task("lenet5-mnist", "Lenet5Mnist-v1", "lenet5", "mnist", 0.99, MNIST_PROXY, MNIST_FINAL),
        Task("resnet20-cifar10", "Resnet20Cifar10-v1", "resnet20", "cifar10", 0.90, CIFAR_PROXY, CIFAR_FINAL),
        Task("vgg19-cifar10", "Vgg19Cifar10-v1", "vgg19", "cifar10", 0.90, CIFAR_PROXY, CIFAR_FINAL),
    )
}
"""The built-in tasks under the weight budget, by name."""
FLOPS_TASKS: dict[str, Task] = {
    f"{name}-flops": flops_variant(WEIGHT_TASKS[name])
    for name in ("cnn-digits", "lenet5-mnist", "resnet20-cifar10", "vgg19-cifar10")
}
"""The FLOPs variants of the convolutional tasks, by name."""
TRAINED_TASKS: dict[str, Task] = {
    f"{name}-trained": trained_variant(WEIGHT_TASKS[name], target, finetune)
    for name, target, finetune in (("mlp-digits", 0.90, DIGITS_FINETUNE), ("cnn-digits", 0.70, DIGITS_FINETUNE),
                                   ("lenet300-mnist", 0.95, MNIST_FINETUNE), ("lenet5-mnist", 0.98, MNIST_FINETUNE))
}
"""The digits tasks and the MNIST LeNets pruned after training, by name (targets: see the module docstring)."""
TASKS: dict[str, Task] = {**WEIGHT_TASKS, **FLOPS_TASKS, **TRAINED_TASKS}
"""Every built-in task by name: the weight-budget tasks, their FLOPs variants, then the trained variants."""


def task_model(task: Task, num_classes: int) -> Callable[[int], nn.Module]:
    """The task's network as a factory ``seed -> module`` with ``num_classes`` outputs."""
    return lambda seed: build_model(task.model, num_classes=num_classes, seed=seed)
