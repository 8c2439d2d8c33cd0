"""The ``Dataset`` container, the seeded stratified split every loader uses, and the scoring batch."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Dataset:
    """Train / validation / test tensors of one classification dataset, all on one device.

    ``x_*`` are float32 ``(N, *input_shape)``, already normalized; ``y_*`` are int64 ``(N,)`` class indices in
    ``[0, num_classes)``. Rewards use train and val only; the test split is for final reports.
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    input_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        for split in _SPLITS:
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != torch.float32 or y.dtype != torch.int64:
                raise ValueError(f"{split}: x must be float32 and y int64, got {x.dtype} and {y.dtype}")
            if tuple(x.shape[1:]) != self.input_shape or y.shape != (x.shape[0],):
                raise ValueError(
                    f"{split}: x {tuple(x.shape)} and y {tuple(y.shape)} must be (N, *{self.input_shape}) and (N,)"
                )
            if x.device != self.device or y.device != self.device:
                raise ValueError(f"{split}: tensors must all be on {self.device}")

    @property
    def device(self) -> torch.device:
        """The device every tensor is on."""
        return self.x_train.device

    @property
    def train(self) -> tuple[Tensor, Tensor]:
        """The training split as a batch ``(x, y)``."""
        return self.x_train, self.y_train

    @property
    def val(self) -> tuple[Tensor, Tensor]:
        """The validation split as a batch ``(x, y)``."""
        return self.x_val, self.y_val

    @property
    def test(self) -> tuple[Tensor, Tensor]:
        """The test split as a batch ``(x, y)``."""
        return self.x_test, self.y_test

    def to(self, device: str | torch.device) -> Dataset:
        """This dataset with every tensor on ``device`` (``self`` if it is already there)."""
        device = torch.device(device)
        if device == self.device:
            return self
        tensors = {f"{kind}_{split}": getattr(self, f"{kind}_{split}") for kind in "xy" for split in _SPLITS}
        return dataclasses.replace(self, **{key: value.to(device) for key, value in tensors.items()})


def stratified_holdout(
    labels: np.ndarray, fraction: float, rng: np.random.Generator, field: str = "val_fraction"
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices ``0..N-1`` into (kept, held out), holding out ``round(fraction * N)`` of them.

    Each class gives its share ``fraction * count`` rounded down; the samples left to reach the total go to the
    classes with the largest remainders (ties: lower class first). Which samples of a class are held out is
    drawn by ``rng``. Both index arrays are sorted, so each split keeps the source order.

    Raises:
        ValueError (naming ``field``): ``fraction`` not in (0, 1), or it leaves a split empty.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"{field} must be in (0, 1), got {fraction}")
    total = len(labels)
    n_held = round(fraction * total)
    if not 0 < n_held < total:
        raise ValueError(f"{field}={fraction} of {total} samples leaves an empty split")
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n_held / total
    take = np.floor(quota).astype(np.int64)
    take[np.argsort(take - quota, kind="stable")[: n_held - take.sum()]] += 1
    held = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)]
    )
    is_held = np.zeros(total, dtype=bool)
    is_held[held] = True
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)


def build_dataset(
    name: str,
    x_pool: np.ndarray,
    y_pool: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    num_classes: int,
    val_fraction: float,
    rng: np.random.Generator,
    scale: float = 1.0,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Dataset:
    """Hold out a stratified validation split of the training pool and make normalized CPU tensors.

    Pixels become ``(x / scale - mean[c]) / std[c]`` per channel ``c`` (axis 1). Without ``mean`` and ``std``
    one scalar mean and std are taken from the training split (after the hold-out).

    Args:
        x_pool, y_pool: training pool, ``(N, *input_shape)`` of any numeric dtype and ``(N,)`` labels.
        x_test, y_test: the test split, same layout.
        scale: raw pixel maximum, e.g. 255 for uint8 images, so that ``x / scale`` is in [0, 1].
    """
    for split, labels in (("training", y_pool), ("test", y_test)):
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(f"{name}: {split} labels outside [0, {num_classes})")
    train_idx, val_idx = stratified_holdout(y_pool, val_fraction, rng)
    xs = {"train": x_pool[train_idx], "val": x_pool[val_idx], "test": x_test}
    ys = {"train": y_pool[train_idx], "val": y_pool[val_idx], "test": y_test}
    tensors = {
        split: torch.from_numpy(np.ascontiguousarray(x)).float().div_(scale) for split, x in xs.items()
    }
    if mean is None or std is None:
        shift, spread = tensors["train"].mean(), tensors["train"].std()
    else:
        view = (-1,) + (1,) * (x_pool.ndim - 2)
        shift, spread = torch.tensor(mean).view(view), torch.tensor(std).view(view)
    fields = {}
    for split in _SPLITS:
        fields[f"x_{split}"] = tensors[split].sub_(shift).div_(spread)
        fields[f"y_{split}"] = torch.as_tensor(np.asarray(ys[split], dtype=np.int64))
    return Dataset(name=name, num_classes=num_classes, input_shape=tuple(x_pool.shape[1:]), **fields)


def scoring_batch(
    data: Dataset, per_class: int = 10, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``per_class`` random training samples of every class (the PaI convention, e.g. SNIP/GraSP), on the data's device.

    Samples are drawn without replacement, grouped by class in increasing class order. ``generator`` is a CPU
    generator; ``None`` uses torch's global one.

    Returns:
        ``(x, y)`` with ``per_class * num_classes`` samples.

    Raises:
        ValueError: ``per_class < 1`` or a class has fewer than ``per_class`` training samples.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    labels = data.y_train.cpu()
    counts = torch.bincount(labels, minlength=data.num_classes)
    if int(counts.min()) < per_class:
        short = int(counts.argmin())
        raise ValueError(
            f"per_class={per_class} exceeds the {int(counts[short])} training samples of class {short}"
        )
    # A random order, then a stable sort by label: each class's block is a random permutation of that class.
    order = torch.randperm(len(labels), generator=generator)
    order = order[torch.sort(labels[order], stable=True).indices]
    starts = torch.cumsum(counts, 0) - counts
    picked = order[(starts[:, None] + torch.arange(per_class)).flatten()].to(data.device)
    return data.x_train[picked], data.y_train[picked]
