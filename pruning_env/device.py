"""Device selection: ``"auto"`` picks CUDA when present; how many masked copies a reward trains side by side there."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as torch understands it.

    Raises:
        ValueError: for a device string torch does not know, or ``"cuda"`` without CUDA.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:<index>' or a torch.device, got {device!r}") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available; use device='auto' or 'cpu'")
    return resolved


CUDA_REWARD_BATCH = 64
"""Masked copies per batched reward pass on a GPU (not measured on a GPU yet: no GPU was lent while it was set;
a chunk that does not fit is split in halves, see ``pruning_env.training.split_on_oom``)."""


def default_reward_batch(device: torch.device) -> int:
    """``reward_batch="auto"``: 1 on CPU (sequential), ``CUDA_REWARD_BATCH`` on CUDA.

    On this project's 2-core CPU machines the batched path trained mlp-digits at 0.96-1.08x the sequential
    speed with one thread per worker (the benchmark's setting) and LeNet-5 at 0.66-0.82x even with two
    (``benchmarks/results/reference/reward_throughput_cpu/reward_throughput_cpu*.md``), so the CPU keeps the sequential path and its
    numbers.
    """
    return CUDA_REWARD_BATCH if device.type == "cuda" else 1
