"""The fidelity benchmark end to end on a tiny configuration, and the final-accuracy ground truth it relies on."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from benchmarks.final_accuracy import FinalEvaluator, final_test_accuracy
from benchmarks.studies.fidelity import Args, main
from pruning_env.masking import topk_masks
from pruning_env.parallel import PruningEnv
from pruning_env.registry import get_task
from pruning_env.scorers import compute_scores

SHORT_FINAL = replace(get_task("mlp-digits").final_train, steps=60)


def test_tiny_fidelity_run_writes_consistent_outputs(tmp_path):
    args = Args(
        target=0.9, heuristics=("uniform", "erk"), random_plans=2, seeds=1, reward_steps=(2,),
        reward=("neg_loss", "accuracy"), final_steps=10, noise_ceiling=True, out_dir=tmp_path,
    )
    rows, summary = main(args)

    stem = "fidelity_mlp-digits_0.9"
    for suffix in (".md", ".jsonl", ".png", "_tradeoff.png"):
        assert (tmp_path / f"{stem}{suffix}").stat().st_size > 0
    written = [json.loads(line) for line in (tmp_path / f"{stem}.jsonl").read_text().splitlines()]
    assert written == rows
    assert len(rows) == 4 * 1 * 2  # plans x seeds x (kind, K)
    assert {row["plan"] for row in rows} == {"uniform", "erk", "random_0", "random_1"}
    total = 16384 + 3 * 65536 + 32768 + 1280  # the MLP's prunable weights
    for row in rows:
        assert row["reward_steps"] == 2 and row["seed"] == 0
        assert 0.0 <= row["final_accuracy"] <= 1.0 and 0.0 <= row["proxy_accuracy"] <= 1.0
        assert 0.0 <= row["final_accuracy_repeat"] <= 1.0
        assert math.isfinite(row["proxy_loss"]) and row["proxy_seconds"] > 0 and row["final_seconds"] > 0
        assert row["proxy"] == (row["proxy_accuracy"] if row["reward"] == "accuracy" else -row["proxy_loss"])
        assert abs(row["global_sparsity"] - 0.9) <= 0.5 / total  # the budget, to the weight
    # one full training per (plan, seed), shared by every proxy
    for plan in ("uniform", "erk", "random_0", "random_1"):
        assert len({row["final_accuracy"] for row in rows if row["plan"] == plan}) == 1
    # the same training under both kinds: identical accuracy and loss
    by_kind = {kind: sorted((r["plan"], r["proxy_accuracy"], r["proxy_loss"]) for r in rows if r["reward"] == kind)
               for kind in ("neg_loss", "accuracy")}
    assert by_kind["neg_loss"] == by_kind["accuracy"]

    assert [(s["reward"], s["reward_steps"]) for s in summary] == [("neg_loss", 2), ("accuracy", 2), ("final_repeat", None)]
    assert summary[-1]["cost_percent"] == 100.0
    for s in summary:
        assert s["cost_percent"] > 0 and s["regret"] >= 0
        for key in ("tau", "rho", "tau_pooled", "rho_pooled"):
            assert math.isnan(s[key]) or -1.0 <= s[key] <= 1.0
    assert "| reward | K |" in (tmp_path / f"{stem}.md").read_text()


def test_final_evaluator_prunes_like_the_env_and_is_deterministic():
    evaluator = FinalEvaluator("mlp-digits", 0.95, device="cpu", final_train=SHORT_FINAL)
    plan = np.linspace(0.9, 0.99, len(evaluator.layers))
    first = evaluator(plan, seed=3)
    env = PruningEnv("mlp-digits", target_sparsity=0.95, reward="zero_cost", device="cpu")
    np.testing.assert_array_equal(env.evaluate_plan(3, plan).pruned_counts, first.pruned_counts)  # the env's counts

    # the trained weights are nonzero exactly where SNIP's top-k of the seed's initialization keeps them at those
    # counts (an independent recomputation of the masks)
    evaluator.env.reset(seed=3)
    instance = evaluator.env.instance
    model, layers = evaluator.plans.trainer.model, evaluator.plans.trainer.layers
    trained = {layer.name: layer.weight.detach() != 0 for layer in layers}
    model.load_state_dict(instance.state)
    scores = compute_scores("snip", model, layers, instance.batch)
    counts = dict(zip([layer.name for layer in layers], first.pruned_counts.tolist(), strict=True))
    expected = topk_masks(scores, counts)
    assert all(torch.equal(trained[name], expected[name]) for name in expected)
    assert first.pruned_counts.sum() == round(0.95 * sum(layer.num_weights for layer in layers))

    second = evaluator(plan, seed=3)
    assert (second.test_accuracy, second.test_loss, second.validation_accuracy) == (
        first.test_accuracy, first.test_loss, first.validation_accuracy)
    np.testing.assert_array_equal(second.applied, first.applied)


def test_final_accuracy_of_a_moderate_plan_beats_an_extreme_one():
    moderate = final_test_accuracy("mlp-digits", np.full(6, 0.5), 0, device="cpu", target_sparsity=0.5,
                                   final_train=SHORT_FINAL)
    extreme = final_test_accuracy("mlp-digits", np.full(6, 0.999), 0, device="cpu", target_sparsity=0.999,
                                  final_train=SHORT_FINAL)
    assert moderate > 0.85
    assert extreme < 0.3


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="target"):
        Args(target=1.0)
    with pytest.raises(ValueError, match="heuristics"):
        Args(heuristics=("erk", "best"))
    with pytest.raises(ValueError, match="full"):
        Args(reward=("full",))
    with pytest.raises(ValueError, match="reward_orders"):
        Args(reward_orders=0)
    assert Args(reward_orders=2).stem == "fidelity_mlp-digits_0.98_orders2" and Args().stem == "fidelity_mlp-digits_0.98"
    with pytest.raises(ValueError, match="sparsities"):
        FinalEvaluator("mlp-digits", 0.9, device="cpu")(np.full(3, 0.9), seed=0)
