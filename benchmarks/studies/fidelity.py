"""Reward fidelity: does the proxy reward rank pruning plans like their final test accuracy, and at what cost?

    python -m benchmarks.studies.fidelity --task mlp-digits --target 0.98 --random-plans 20 --seeds 2 \
        --reward-steps 25 50 100 200 --reward neg_loss accuracy

Plans: the heuristic allocations (uniform, ER, ERK, LAMP and the global-score ones, read from the observation as
``agents.heuristics`` does) and ``--random-plans`` random plans around ``--random-center`` (``agents.random_search``;
the same noise on every seed). For every plan and init seed: the proxy reward of every (reward kind, K) from an env
built with ``reward=kind, reward_steps=K``, and the plan's final test accuracy after the task's full training
(``benchmarks.final_accuracy``, one full training per plan and seed, shared by all K). Per (kind, K):

- Kendall τ and Spearman ρ of proxy vs final accuracy across plans on one instance, averaged over seeds (the
  controller's view: one fixed initialization), and pooled over all (plan, seed) points;
- top-1 regret: final accuracy of the best plan minus that of the plan the proxy ranks first, averaged over seeds;
- the proxy's cost: median reward seconds as a percentage of the median full training (training + test).

With ``--noise-ceiling`` every plan is trained fully a second time with another minibatch order, and that second
training is ranked against the first like a proxy: how well the ground truth agrees with itself, a rough ceiling
for any proxy (a proxy can land slightly above it by chance: the ceiling compares two noisy trainings).

Outputs in ``--out-dir``: ``fidelity_<task>_<target>.md`` (the table, also printed), ``.jsonl`` (one row per plan,
seed, kind and K), ``.png`` (proxy vs final accuracy, one panel per kind, one colour per K) and
``_tradeoff.png`` (τ and regret against cost, one line per kind).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import tyro
from scipy.stats import kendalltau, spearmanr

from agents.base import stacked
from agents.heuristics import REFERENCE_HEURISTICS, reference_sparsities
from agents.random_search import sample_plans
from benchmarks.final_accuracy import FinalEvaluator
from benchmarks.plots import Panel, Series, save_lines, save_scatter
from benchmarks.study import publish, write_records
from pruning_env.parallel import PruningEnv
from pruning_env.registry import get_task

ProxyKey = tuple[str, int | None]
"""(reward kind, K); K is None for the zero-cost reward, which does not train."""
NOISE_CEILING = "final_repeat"
"""Summary kind of the noise ceiling: the final accuracy of a second full training (another minibatch order)."""
REPEAT_SEED_OFFSET = 1_000_003
"""The repeated full training's minibatch seed is the init seed plus this."""


@dataclass
class Args:
    task: str = "mlp-digits"
    """Task name (``pruning_env.TASKS``)."""
    target: float = 0.98
    """Global target sparsity in [0, 1)."""
    heuristics: tuple[str, ...] = tuple(REFERENCE_HEURISTICS)
    """Heuristic plans (``agents.heuristics.REFERENCE_HEURISTICS`` names)."""
    random_plans: int = 20
    """Random plans around ``random_center``."""
    random_center: str = "erk"
    """Reference allocation the random plans are drawn around."""
    random_scale: float = 1.0
    """Standard deviation of the random plans' logit-space noise."""
    plan_seed: int = 1234
    """Seed of the random plans' noise (the same noise on every init seed)."""
    seeds: int = 2
    """Init seeds ``first_seed … first_seed + seeds - 1``."""
    first_seed: int = 0
    """First init seed."""
    reward_steps: tuple[int, ...] = (25, 50, 100, 200)
    """K values of the trained proxy rewards."""
    reward: tuple[str, ...] = ("neg_loss", "accuracy")
    """Reward kinds: "accuracy", "neg_loss", "zero_cost" (K-free)."""
    final_steps: int | None = None
    """Steps of the full training; the task's schedule when omitted (shorten only for tests)."""
    device: str = "auto"
    """"auto", "cpu" or "cuda"."""
    reward_orders: int = 1
    """Minibatch orders every proxy reward averages over (``PruningEnv(reward_orders=...)``): n trainings of K
    steps per plan, so n x K costs what one K x n does."""
    noise_ceiling: bool = False
    """Train every plan a second time with another minibatch order and rank one training by the other: how well the
    ground truth agrees with itself, a rough ceiling for any proxy (costs one more full training per plan and seed)."""
    out_dir: Path = Path("benchmarks/results")
    """Folder of the outputs."""
    threads: int | None = None
    """Torch intra-op CPU threads; torch's default when omitted (1 is steadier on a shared machine)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.target < 1.0:
            raise ValueError(f"target must be in [0, 1), got {self.target}")
        if self.seeds < 1 or self.random_plans < 0:
            raise ValueError(f"seeds must be >= 1 and random_plans >= 0, got {self.seeds}, {self.random_plans}")
        unknown = sorted(set(self.heuristics) - set(REFERENCE_HEURISTICS))
        if unknown:
            raise ValueError(f"unknown heuristics {unknown}; known: {', '.join(REFERENCE_HEURISTICS)}")
        if not self.heuristics and self.random_plans == 0:
            raise ValueError("no plans: give heuristics or random_plans > 0")
        if "full" in self.reward:
            raise ValueError("reward 'full' is the ground truth's cost, not a proxy; use accuracy, neg_loss or zero_cost")
        if any(k < 1 for k in self.reward_steps):
            raise ValueError(f"reward_steps must be >= 1, got {self.reward_steps}")
        if self.reward_orders < 1:
            raise ValueError(f"reward_orders must be >= 1, got {self.reward_orders}")

    @property
    def stem(self) -> str:
        orders = f"_orders{self.reward_orders}" if self.reward_orders > 1 else ""
        return f"fidelity_{self.task}_{self.target:g}{orders}"


def proxy_keys(args: Args) -> list[ProxyKey]:
    """Every (kind, K) to measure, in output order."""
    keys: list[ProxyKey] = []
    for kind in args.reward:
        keys += [(kind, None)] if kind == "zero_cost" else [(kind, k) for k in args.reward_steps]
    return keys


def named_plans(env: PruningEnv, observation: np.ndarray, args: Args) -> dict[str, np.ndarray]:
    """Plan name -> requested sparsities ``(L,)`` on the instance whose stacked observation is ``observation``."""
    names = env.feature_names
    plans = {name: reference_sparsities(observation, names, REFERENCE_HEURISTICS[name]) for name in args.heuristics}
    center = reference_sparsities(observation, names, args.random_center)
    noise = sample_plans(center, args.random_scale, args.random_plans, np.random.default_rng(args.plan_seed))
    plans.update({f"random_{i}": plan for i, plan in enumerate(noise)})
    return plans


def collect(args: Args) -> list[dict]:
    """One row per (plan, seed, kind, K): the proxy reward and the plan's final test accuracy."""
    task = get_task(args.task)
    final_train = task.final_train if args.final_steps is None else replace(task.final_train, steps=args.final_steps)
    final = FinalEvaluator(task, args.target, device=args.device, final_train=final_train)
    envs = {
        key: PruningEnv(task, data=final.data, target_sparsity=args.target, reward=key[0], reward_steps=key[1],
                        reward_orders=args.reward_orders, device=final.data.device)
        for key in proxy_keys(args)
    }
    observer = next(iter(envs.values()))
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        observations, _ = observer.reset(seed=seed)
        for name, plan in named_plans(observer, stacked(observations), args).items():
            outcome = final(plan, seed)
            repeat = (final(plan, seed, train_seed=seed + REPEAT_SEED_OFFSET).test_accuracy if args.noise_ceiling
                      else None)
            proxies = []
            for (kind, k), env in envs.items():
                proxy = env.evaluate_plan(seed, plan)
                if not np.array_equal(proxy.pruned_counts, outcome.pruned_counts):
                    raise RuntimeError(f"plan {name}: the proxy env and the final evaluator pruned different counts")
                proxies.append(f"{kind}@{k}={proxy.reward:.3f}")
                rows.append({
                    "task": task.name, "target": args.target, "plan": name, "seed": seed, "reward": kind,
                    "reward_steps": k, "reward_orders": args.reward_orders, "proxy": proxy.reward, "proxy_accuracy": proxy.accuracy,
                    "proxy_loss": proxy.loss, "proxy_seconds": proxy.seconds, "final_accuracy": outcome.test_accuracy,
                    "final_loss": outcome.test_loss, "final_seconds": outcome.seconds, "final_accuracy_repeat": repeat,
                    "global_sparsity": outcome.global_sparsity, "applied_sparsity": proxy.applied.tolist(),
                })
            print(f"seed {seed} {name:<17} final {outcome.test_accuracy:.3f} ({outcome.seconds:.1f}s)  "
                  f"{' '.join(proxies)}", flush=True)
    return rows


def _rank_correlations(proxy: Sequence[float], final: Sequence[float]) -> tuple[float, float]:
    """Kendall τ-b and Spearman ρ; NaN when either side is constant (no ranking to compare)."""
    if len(proxy) < 2 or np.ptp(proxy) == 0 or np.ptp(final) == 0:
        return math.nan, math.nan
    return float(kendalltau(proxy, final).statistic), float(spearmanr(proxy, final).statistic)


def _top1_regret(proxy: Sequence[float], final: Sequence[float]) -> float:
    """Best final accuracy minus the mean final accuracy of the plans the proxy ranks first (ties share)."""
    proxy, final = np.asarray(proxy), np.asarray(final)
    return float(final.max() - final[proxy == proxy.max()].mean())


def _nanmean(values: Iterable[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.fmean(finite) if finite else math.nan


def fidelity(rows: Sequence[dict], predictor: str) -> dict[str, float]:
    """How well the rows' ``predictor`` column ranks their final accuracy.

    Returns τ and ρ across plans on each seed's instance, averaged over seeds; pooled τ and ρ over all rows; the
    top-1 regret averaged over seeds.
    """
    per_seed = [[row for row in rows if row["seed"] == seed] for seed in sorted({row["seed"] for row in rows})]

    def columns(selected: Sequence[dict]) -> tuple[list[float], list[float]]:
        return [row[predictor] for row in selected], [row["final_accuracy"] for row in selected]

    seed_stats = [_rank_correlations(*columns(selected)) for selected in per_seed]
    tau_pooled, rho_pooled = _rank_correlations(*columns(rows))
    return {
        "tau": _nanmean(tau for tau, _ in seed_stats),
        "rho": _nanmean(rho for _, rho in seed_stats),
        "tau_pooled": tau_pooled,
        "rho_pooled": rho_pooled,
        "regret": statistics.fmean(_top1_regret(*columns(selected)) for selected in per_seed),
    }


def summarize(rows: Sequence[dict], keys: Sequence[ProxyKey]) -> list[dict]:
    """Per (kind, K): ``fidelity`` of the proxy and its cost; then, when the rows have repeated final trainings,
    the noise ceiling (kind ``NOISE_CEILING``: a second full training as the predictor)."""
    final_seconds = statistics.median(row["final_seconds"] for row in rows)
    summary = []
    for kind, k in keys:
        selected = [row for row in rows if row["reward"] == kind and row["reward_steps"] == k]
        proxy_seconds = statistics.median(row["proxy_seconds"] for row in selected)
        summary.append({
            "reward": kind, "reward_steps": k, "proxy_seconds": proxy_seconds, "final_seconds": final_seconds,
            "cost_percent": 100.0 * proxy_seconds / final_seconds, **fidelity(selected, "proxy"),
        })
    first = [row for row in rows if (row["reward"], row["reward_steps"]) == keys[0]]
    if all(row["final_accuracy_repeat"] is not None for row in first):
        summary.append({
            "reward": NOISE_CEILING, "reward_steps": None, "proxy_seconds": final_seconds,
            "final_seconds": final_seconds, "cost_percent": 100.0, **fidelity(first, "final_accuracy_repeat"),
        })
    return summary


def _k_label(k: int | None) -> str:
    return "-" if k is None else str(k)


def markdown(args: Args, rows: Sequence[dict], summary: Sequence[dict]) -> str:
    """The report: set-up, the fidelity table and every plan's final test accuracy."""
    plans = list(dict.fromkeys(row["plan"] for row in rows))
    seeds = sorted({row["seed"] for row in rows})
    lines = [
        f"# Reward fidelity: {args.task} at target sparsity {args.target:g}"
        + (f", each proxy the mean over {args.reward_orders} minibatch orders" if args.reward_orders > 1 else ""),
        "",
        f"{len(plans)} plans ({len(args.heuristics)} heuristic, {args.random_plans} random around {args.random_center}, "
        f"scale {args.random_scale:g}) x {len(seeds)} init seeds. Ground truth: test accuracy after the full training "
        f"(median {summary[0]['final_seconds']:.2f} s per plan). τ, ρ: rank correlation across plans on one instance, "
        "mean over seeds; pooled: over all (plan, seed) points. Regret: best final accuracy minus that of the plan "
        "the proxy ranks first (mean over seeds)."
        + (" Noise ceiling: a second full training (another minibatch order) as the predictor." if any(
            s["reward"] == NOISE_CEILING for s in summary) else ""),
        "",
        "| reward | K | proxy s | cost % of full training | τ | ρ | τ pooled | ρ pooled | top-1 regret |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        label = "second full training (noise ceiling)" if s["reward"] == NOISE_CEILING else s["reward"]
        lines.append(
            f"| {label} | {_k_label(s['reward_steps'])} | {s['proxy_seconds']:.3f} | {s['cost_percent']:.1f} | "
            f"{s['tau']:.3f} | {s['rho']:.3f} | {s['tau_pooled']:.3f} | {s['rho_pooled']:.3f} | {s['regret']:.3f} |"
        )
    lines += ["", "| plan | final test accuracy (mean) | " + " | ".join(f"seed {s}" for s in seeds) + " |",
              "|---|---:|" + "---:|" * len(seeds)]
    first = (summary[0]["reward"], summary[0]["reward_steps"])
    finals = {
        plan: [next(r["final_accuracy"] for r in rows if r["plan"] == plan and r["seed"] == seed
                    and (r["reward"], r["reward_steps"]) == first) for seed in seeds]
        for plan in plans
    }
    for plan, values in sorted(finals.items(), key=lambda item: -statistics.fmean(item[1])):
        lines.append(f"| {plan} | {statistics.fmean(values):.3f} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    return "\n".join(lines) + "\n"


def save_figures(args: Args, rows: Sequence[dict], summary: Sequence[dict]) -> list[Path]:
    """The scatter of proxy vs final accuracy and the cost/fidelity trade-off."""
    ceiling = [s for s in summary if s["reward"] == NOISE_CEILING]
    summary = [s for s in summary if s["reward"] != NOISE_CEILING]
    kinds = list(dict.fromkeys(s["reward"] for s in summary))
    scatter = [
        Panel(
            f"reward {kind}",
            "proxy reward" + (" (K steps)" if kind != "zero_cost" else ""),
            "final test accuracy",
            [
                Series(
                    f"K={_k_label(s['reward_steps'])}  τ={s['tau']:.2f}",
                    [r["proxy"] for r in rows if r["reward"] == kind and r["reward_steps"] == s["reward_steps"]],
                    [r["final_accuracy"] for r in rows if r["reward"] == kind and r["reward_steps"] == s["reward_steps"]],
                )
                for s in summary if s["reward"] == kind
            ],
        )
        for kind in kinds
    ]
    plans = len({row["plan"] for row in rows})
    seeds = len({row["seed"] for row in rows})
    title = f"{args.task} @ sparsity {args.target:g}: proxy reward vs final test accuracy ({plans} plans x {seeds} seeds)"
    paths = [save_scatter(args.out_dir / f"{args.stem}.png", scatter, title)]
    trained = [s for s in summary if s["reward_steps"] is not None]
    if trained:
        costs = [s["cost_percent"] for s in trained]

        def series(metric: str) -> list[Series]:
            lines = [
                Series(kind, [s["cost_percent"] for s in trained if s["reward"] == kind],
                       [s[metric] for s in trained if s["reward"] == kind],
                       [f"K={s['reward_steps']}" for s in trained if s["reward"] == kind])
                for kind in kinds if any(s["reward"] == kind for s in trained)
            ]
            return lines + [Series("second full training (noise ceiling)", [min(costs), max(costs)],
                                   [c[metric], c[metric]]) for c in ceiling]
        tradeoff = [
            Panel("rank fidelity (mean over seeds)", "proxy cost, % of one full training", "Kendall τ", series("tau"), xscale="log"),
            Panel("top-1 regret (lower is better)", "proxy cost, % of one full training", "final accuracy lost",
                  series("regret"), xscale="log"),
        ]
        paths.append(save_lines(args.out_dir / f"{args.stem}_tradeoff.png", tradeoff, f"{args.task} @ {args.target:g}"))
    return paths


def _json_safe(value: object) -> object:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_outputs(args: Args, rows: Sequence[dict], summary: Sequence[dict]) -> dict[str, Path]:
    """Write the Markdown table, the JSONL rows (non-finite numbers as null) and the figures."""
    publish(args.out_dir, args.stem, markdown(args, rows, summary))
    jsonl = args.out_dir / f"{args.stem}.jsonl"
    write_records(jsonl, ({key: _json_safe(value) for key, value in row.items()} for row in rows))
    return {"markdown": args.out_dir / f"{args.stem}.md", "jsonl": jsonl,
            **{p.stem: p for p in save_figures(args, rows, summary)}}


def main(args: Args) -> tuple[list[dict], list[dict]]:
    """Run the benchmark; returns the rows and the summary."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = collect(args)
    summary = summarize(rows, proxy_keys(args))
    outputs = write_outputs(args, rows, summary)
    print(outputs["markdown"].read_text())
    print(f"args: {json.dumps(asdict(args), default=str)}")
    print(f"wrote {', '.join(str(path) for path in outputs.values())} in {time.perf_counter() - start:.0f} s")
    return rows, summary


if __name__ == "__main__":
    main(tyro.cli(Args))
