"""The speed and scale-out benchmarks on their tiniest settings, in this process: every figure they derive is
recomputed here from the figures it is derived from (as printed or recorded, within their rounding) or by another
path (FLOPs and memory from the architecture by hand, rewards in this process instead of Ray actors). No wall-clock
threshold: the timings themselves are whatever they are.

tests/test_commands.py runs the same commands as a user does (``python -m``), with their output's shape checked."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from agents.random_search import RandomSearch
from benchmarks.studies import env_speed, ray_scaling, reward_throughput
from pruning_env.data import load_dataset
from pruning_env.parallel import PruningEnv
from pruning_env.registry import get_task

MLP_DIGITS_MACS = 64 * 256 + 3 * 256 * 256 + 256 * 128 + 128 * 10
"""Multiply-accumulates per sample of mlp-digits' prunable layers (MLP 64-256-256-256-256-128-10), by hand."""
MLP_DIGITS_PARAMETERS = MLP_DIGITS_MACS + 4 * 256 + 128 + 10
"""Its weights and biases."""


def printed(text: str) -> tuple[float, float]:
    """A number as printed and half a unit of its last digit (the most its rounding moved it)."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    return float(text), 0.5 * 10.0**-decimals


def assert_derived(shown: str, formula: Callable[..., float], *inputs: str) -> None:
    """The printed ``shown`` is ``formula`` of the printed ``inputs``, within everyone's rounding: ``formula`` is
    monotonic in each input, so its range over the inputs' rounding box is reached at the box's corners."""
    value, half = printed(shown)
    boxes = [(x - h, x + h) for x, h in map(printed, inputs)]
    corners = [formula(*corner) for corner in itertools.product(*boxes)]
    assert min(corners) - half <= value <= max(corners) + half, (shown, inputs, min(corners), max(corners))


def test_env_speed_derives_its_rates_and_breakdown_from_its_timings(capsys):
    with torch.random.fork_rng():  # main seeds torch's global generator
        env_speed.main(env_speed.Args(tasks=("mlp-digits",), device="cpu", repeats=1, reward_steps=2,
                                      memory_episodes=2, memory_warmup=1, matmul_size=128))
    out = capsys.readouterr().out
    line = re.search(r"^mlp-digits\s+cpu\s+K=2\s+layers=6\s+episodes/s=\s*(\S+)\s+reset uncached=(\S+)s cached=(\S+)s"
                     r"\s+step=(\S+)s\s+plain loop=(\S+)s\s+step/plain=(\S+)$", out, re.M)
    assert line, out
    episodes, uncached, cached, step, loop, ratio = line.groups()
    assert_derived(episodes, lambda c, s: 1 / (c + s), cached, step)
    assert_derived(ratio, lambda s, p: s / p, step, loop)

    phases = dict(part.rsplit(" ", 2)[:2] for part in re.search(r"breakdown: (.*)$", out, re.M)[1].split(" | "))
    assert_derived(phases["scoring"], lambda u, c: 1e3 * (u - c), uncached, cached)
    assert_derived(phases["step overhead"], lambda s, p, t, e: 1e3 * s - p - t - e, step, phases["plan pipeline"],
                   phases["training"], phases["evaluation"])

    matmul = re.search(r"^plain matmul 128x128 float32: (\S+) GFLOP/s$", out, re.M)[1]
    rate = re.search(r"reward training ≈ (\S+) GFLOP/s \(dense estimate: 2 x 3 x ([\d,]+) MAC/sample x batch (\d+) "
                     r"x 2 steps\) = (\S+)% of the plain 128x128 float32 matmul's (\S+) GFLOP/s", out)
    assert rate, out
    assert int(rate[2].replace(",", "")) == MLP_DIGITS_MACS and int(rate[3]) == 128  # the task's batch
    assert_derived(rate[1], lambda t: 6 * MLP_DIGITS_MACS * 128 * 2 / (t / 1e3) / 1e9, phases["training"])
    assert rate[5] == matmul
    assert_derived(rate[4], lambda r, m: 100 * r / m, rate[1], matmul)

    memory = re.search(r"memory over 2 episodes of mlp-digits: (\S+) MiB after 1, (\S+) MiB at the end, "
                       r"growth ([-+]\S+)%$", out, re.M)
    assert memory, out
    assert_derived(memory[3], lambda b, f: (f - b) / b * 100, memory[1], memory[2])


def test_reward_throughput_figures_follow_from_the_architecture_and_its_rates(tmp_path):
    args = reward_throughput.Args(tasks=("mlp-digits",), batches=(1, 2), precisions=("fp32",), steps=1, device="cpu",
                                  sequential_plans=1, matmul_size=256, tau_plans=3, out=tmp_path, label="_tiny")
    reward_throughput.main(args)
    records = [json.loads(line) for line in (tmp_path / "reward_throughput_cpu_tiny.jsonl").read_text().splitlines()]
    rows, fidelity = records[:-1], records[-1]
    assert [(row["batch"], row["skipped"]) for row in rows] == [(1, False), (2, False)]

    task = get_task("mlp-digits")
    evaluated = min(task.reward_eval_size, len(load_dataset("digits").y_val))  # the whole validation split
    flops = 2 * MLP_DIGITS_MACS * (3 * task.reward_train.batch_size * 1 + evaluated)  # K = 1 step, then evaluation
    for row in rows:
        assert row["tflops"] == pytest.approx(row["evaluations_per_s"] * flops / 1e12, rel=1e-12)
        # on CPU: parameters, gradients and two Adam moments in float32; an MLP has no buffers
        assert row["mib_per_copy"] == 4 * 4 * MLP_DIGITS_PARAMETERS / 2**20
    peaks = [100 * row["tflops"] / row["percent_of_peak"] for row in rows]
    assert peaks[0] == pytest.approx(peaks[1], rel=1e-12)  # one matmul peak per precision
    report = (tmp_path / "reward_throughput_cpu_tiny.md").read_text()
    peak, half = printed(re.search(r"Matmul peak in the same run: fp32 (\S+) TFLOP/s\.", report)[1])
    assert peak == pytest.approx(peaks[0], abs=half + 1e-12)
    for row in rows:
        assert (f"| mlp-digits | fp32 | {row['batch']} | {row['evaluations_per_s']:.2f} | "
                f"{row['ratio_to_sequential']:.2f} | {row['tflops']:.4f} | {row['percent_of_peak']:.2f} | "
                f"{row['mib_per_copy']:.1f} |") in report

    # the bf16 fidelity, again from envs built for each precision (the benchmark switches one env's trainer)
    plans = reward_throughput.plans_around_erk(PruningEnv("mlp-digits", reward_steps=1, device="cpu"), 3)
    rewards = {precision: [PruningEnv("mlp-digits", reward_steps=1, device="cpu", reward_precision=precision)
                           .evaluate_plan(0, plan).reward for plan in plans] for precision in ("fp32", "bf16")}
    gap = np.max(np.abs(np.subtract(rewards["fp32"], rewards["bf16"])))
    assert (fidelity["kind"], fidelity["plans"]) == ("bf16_fidelity", 3)
    assert fidelity["max_abs_difference"] == pytest.approx(gap, abs=1e-6)
    tau = kendalltau(rewards["fp32"], rewards["bf16"]).statistic
    assert fidelity["kendall_tau"] == pytest.approx(tau, nan_ok=True)


@pytest.mark.slow  # a local Ray cluster and one actor: about 10-15 s
def test_ray_scaling_records_the_rewards_this_process_computes(ray_home, tmp_path, capsys):
    out = tmp_path / "ray_scaling.json"
    args = ray_scaling.Args(task="mlp-digits", reward_steps=1, episodes=3, workers=(1,), device="cpu", out=out)
    assert ray_scaling.main(args) == 0
    [run] = json.loads(out.read_text())["runs"]
    local = RandomSearch(PruningEnv(task="mlp-digits", reward="neg_loss", reward_steps=1, device="cpu"), episodes=3,
                         seed=0, progress=False).search()
    assert run["rewards"] == [row["reward_mean"] for row in local.history]  # a Ray actor's rewards, bit for bit
    assert run["best_reward"] == max(run["rewards"]) == local.best_reward
    assert run["episodes_per_second"] == 3 / run["seconds"]
    assert (run["workers"], run["speedup"], run["same_rewards"]) == (1, 1.0, True)
    assert re.search(r"^\s+1\s+\S+\s+\S+\s+1\.00\s+True\s", capsys.readouterr().out, re.M)


@pytest.mark.parametrize(("task", "prune_at"), [("mlp-digits-trained", None), ("mlp-digits", "trained")])
def test_env_speed_times_the_zero_step_reward_as_evaluations_per_second(capsys, task, prune_at):
    with torch.random.fork_rng():
        env_speed.main(env_speed.Args(tasks=(task,), device="cpu", repeats=2, plans=3, memory_episodes=0,
                                      matmul_size=64, prune_at=prune_at))
    out = capsys.readouterr().out
    line = re.search(rf"^{task}\s+cpu\s+K=0\s+layers=6\s+evaluations/s one per call=\s*(\S+)\s+3 per call="
                     r"\s*(\S+)\s+step=(\S+) ms\s+forward pass=(\S+) ms\s+rest of the step=(\S+) ms$", out, re.M)
    assert line, out
    single, together, step, forward, rest = line.groups()
    assert float(single) > 0 and float(together) > 0 and 0 < float(forward) < float(step)
    assert_derived(rest, lambda s, f: s - f, step, forward)
    assert "GFLOP/s (dense estimate" not in out  # no training to rate
