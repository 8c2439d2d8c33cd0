"""Known-answer tests of ``pruning_env.training``: masks held through training, minibatch order, determinism,
evaluation by hand, divergence, config validation, and one optimizer step computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from pruning_env import training
from pruning_env.compute import TrainResult, train_result
from pruning_env.layers import prunable_layers
from pruning_env.training import MaskedTrainer, TrainConfig, evaluate


def _tiny_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def _tiny_data(n: int = 12, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=generator)
    y = torch.randint(0, 2, (n,), generator=generator)
    return x, y


def _hand_masks() -> dict[str, torch.Tensor]:
    """Layer "0" (4x3) and layer "2" (2x4), a few weights pruned in each, by hand."""
    mask0 = torch.tensor([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    mask2 = torch.tensor([[1, 0, 0, 1], [0, 1, 1, 0]], dtype=torch.bool)
    return {"0": mask0, "2": mask2}


def _trainer(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> MaskedTrainer:
    return MaskedTrainer(model, prunable_layers(model, x[:1]), x, y)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


# --- masks are held after every optimizer step ------------------------------------------------------------------
def test_pruned_weights_are_zero_at_every_forward_and_kept_weights_train() -> None:
    model = _tiny_net()
    x, y = _tiny_data()
    masks = _hand_masks()
    init = _state(model)
    for name, mask in masks.items():  # the test is meaningful only if the masked weights start nonzero
        assert (init[f"{name}.weight"][~mask] != 0).all()
    trainer = _trainer(model, x, y)
    seen: dict[str, list[torch.Tensor]] = {"0": [], "2": []}

    def recorder(name: str):
        def hook(module: nn.Module, _inputs: tuple) -> None:
            seen[name].append(module.weight.detach().clone())

        return hook

    handles = [model[int(name)].register_forward_pre_hook(recorder(name)) for name in masks]
    steps = 5
    config = TrainConfig(steps=steps, batch_size=4, optimizer="adam", lr=0.05, cosine=False)
    try:
        trainer.run(init, masks, config, seed=0, x_eval=x, y_eval=y)
    finally:
        for handle in handles:
            handle.remove()

    for name, mask in masks.items():
        # forward k (k >= 1) sees the weights after optimizer step k and the re-masking; the last is evaluation
        assert len(seen[name]) == steps + 1
        for weight in seen[name]:
            assert (weight[~mask] == 0).all()
        # the kept weights moved at every step and all of them moved away from θ0
        for before, after in zip(seen[name][:-1], seen[name][1:], strict=True):
            assert (before[mask] != after[mask]).any()
        assert (seen[name][-1][mask] != init[f"{name}.weight"][mask]).all()
        assert (model[int(name)].weight.detach()[~mask] == 0).all()
    # biases are never pruned: they trained too
    assert (model[0].bias.detach() != init["0.bias"]).all()


# --- minibatch order ----------------------------------------------------------------------------------------------
def test_minibatch_indices_are_consecutive_seeded_permutations() -> None:
    x, y = torch.zeros(5, 3), torch.zeros(5, dtype=torch.long)
    trainer = MaskedTrainer(nn.Linear(3, 2), [], x, y)
    indices = trainer.minibatch_indices(steps=4, batch_size=2, seed=3)  # 8 draws: 2 epochs of 5
    generator = torch.Generator().manual_seed(3)
    first, second = torch.randperm(5, generator=generator), torch.randperm(5, generator=generator)
    expected = torch.cat([first, second])[:8].view(4, 2)
    assert indices.dtype == torch.int64
    assert torch.equal(indices, expected)


def test_minibatch_indices_cover_every_sample_once_per_epoch() -> None:
    x, y = torch.zeros(6, 1), torch.zeros(6, dtype=torch.long)
    trainer = MaskedTrainer(nn.Linear(1, 2), [], x, y)
    indices = trainer.minibatch_indices(steps=6, batch_size=3, seed=0)  # 18 draws = 3 epochs of 6
    assert indices.shape == (6, 3)
    for epoch in indices.flatten().view(3, 6):
        assert sorted(epoch.tolist()) == [0, 1, 2, 3, 4, 5]
    assert torch.equal(indices, trainer.minibatch_indices(6, 3, seed=0))
    assert not torch.equal(indices, trainer.minibatch_indices(6, 3, seed=1))


def test_minibatch_larger_than_dataset_is_cut_to_the_dataset() -> None:
    x, y = torch.zeros(4, 1), torch.zeros(4, dtype=torch.long)
    trainer = MaskedTrainer(nn.Linear(1, 2), [], x, y)
    indices = trainer.minibatch_indices(steps=3, batch_size=10, seed=5)
    assert indices.shape == (3, 4)
    generator = torch.Generator().manual_seed(5)
    for row in indices:
        assert torch.equal(row, torch.randperm(4, generator=generator))


def test_trainer_rejects_empty_or_mismatched_data() -> None:
    with pytest.raises(ValueError, match="x_train and y_train"):
        MaskedTrainer(nn.Linear(1, 2), [], torch.zeros(3, 1), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="x_train and y_train"):
        MaskedTrainer(nn.Linear(1, 2), [], torch.zeros(0, 1), torch.zeros(0, dtype=torch.long))


# --- run: deterministic, restores θ0 ------------------------------------------------------------------------------
def test_run_is_deterministic_and_restores_the_initialization() -> None:
    model = _tiny_net()
    x, y = _tiny_data()
    masks = _hand_masks()
    init = _state(model)
    trainer = _trainer(model, x, y)
    config = TrainConfig(steps=4, batch_size=5, optimizer="adam", lr=0.05)

    first = trainer.run(init, masks, config, seed=0, x_eval=x, y_eval=y)
    after_first = _state(model)
    other = trainer.run(init, {n: torch.ones_like(m) for n, m in masks.items()}, config, seed=1, x_eval=x, y_eval=y)
    after_other = _state(model)
    again = trainer.run(init, masks, config, seed=0, x_eval=x, y_eval=y)
    after_again = _state(model)

    assert (first.accuracy, first.loss, first.diverged) == (again.accuracy, again.loss, again.diverged)
    for name in init:
        assert torch.equal(after_first[name], after_again[name])
        assert torch.equal(init[name], _tiny_net().state_dict()[name])  # run never writes into init_state
    # the run in between really changed the model (so restoring θ0 is what made the third run match) ...
    assert any(not torch.equal(after_first[name], after_other[name]) for name in init)
    assert other.loss != first.loss
    # ... and the seed matters: another minibatch order ends elsewhere
    trainer.run(init, masks, config, seed=1, x_eval=x, y_eval=y)
    assert any(not torch.equal(after_first[name], model.state_dict()[name]) for name in init)


def test_eval_at_reads_the_accuracy_of_shorter_runs_without_changing_the_training() -> None:
    model = _tiny_net()
    x, y = _tiny_data()
    masks = _hand_masks()
    init = _state(model)
    trainer = _trainer(model, x, y)
    config = TrainConfig(steps=6, batch_size=5, optimizer="sgd", lr=0.5, cosine=False)  # constant lr: a prefix
    probed = trainer.run(init, masks, config, seed=0, x_eval=x, y_eval=y, eval_at=(2, 6, 4))
    plain = trainer.run(init, masks, config, seed=0, x_eval=x, y_eval=y)
    assert (probed.accuracy, probed.loss) == (plain.accuracy, plain.loss) and plain.accuracy_at == ()
    # with a constant rate, the run read after step k is the k-step run with the same minibatch order
    shorter = [trainer.run(init, masks, TrainConfig(steps=k, batch_size=5, optimizer="sgd", lr=0.5, cosine=False),
                           seed=0, x_eval=x, y_eval=y).accuracy for k in (2, 6, 4)]
    assert list(probed.accuracy_at) == shorter and probed.accuracy_at[1] == probed.accuracy
    with pytest.raises(ValueError, match=r"eval_at steps must be in \[1, 6\]"):
        trainer.run(init, masks, config, seed=0, x_eval=x, y_eval=y, eval_at=(7,))


# --- evaluate by hand ---------------------------------------------------------------------------------------------
W_EVAL = np.array([[1.0, -2.0], [0.5, 0.5], [-1.0, 1.5]])
B_EVAL = np.array([0.1, 0.0, -0.2])
X_EVAL = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0], [-1.0, -1.0], [0.5, 2.0]])
Y_EVAL = np.array([0, 2, 0, 1, 1])


def _eval_model() -> nn.Module:
    # Dropout(0.5) is identity only in eval mode: the hand answer holds only if evaluate() switches to eval
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(2, 3))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor(W_EVAL))
        model[1].bias.copy_(torch.tensor(B_EVAL))
    return model.train()


def _hand_accuracy_and_loss() -> tuple[float, float]:
    # logits by hand:      sample 0: [1.1, 0.5, -1.2]  -> argmax 0 (label 0, right)
    # sample 1: [-1.9, 0.5, 1.3] -> 2 (label 2, right); sample 2: [4.1, 0.5, -3.7] -> 0 (right)
    # sample 3: [1.1, -1.0, -0.7] -> 0 (label 1, wrong); sample 4: [-3.4, 1.25, 2.3] -> 2 (label 1, wrong)
    logits = np.array(
        [[1.1, 0.5, -1.2], [-1.9, 0.5, 1.3], [4.1, 0.5, -3.7], [1.1, -1.0, -0.7], [-3.4, 1.25, 2.3]]
    )
    assert np.allclose(logits, X_EVAL @ W_EVAL.T + B_EVAL)
    accuracy = 3 / 5
    losses = [math.log(sum(math.exp(v) for v in row)) - row[label] for row, label in zip(logits, Y_EVAL, strict=True)]
    return accuracy, sum(losses) / len(losses)


def test_evaluate_matches_hand_computation() -> None:
    model = _eval_model()
    accuracy, loss = evaluate(model, torch.tensor(X_EVAL, dtype=torch.float32), torch.tensor(Y_EVAL))
    hand_accuracy, hand_loss = _hand_accuracy_and_loss()
    assert accuracy == hand_accuracy
    assert loss == pytest.approx(hand_loss, rel=1e-6)
    assert model.training  # its mode is restored


def test_evaluate_chunks_give_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _eval_model()
    calls: list[int] = []
    model[1].register_forward_hook(lambda _m, inputs, _out: calls.append(len(inputs[0])))
    monkeypatch.setattr(training, "EVAL_CHUNK", 2)
    accuracy, loss = evaluate(model, torch.tensor(X_EVAL, dtype=torch.float32), torch.tensor(Y_EVAL))
    assert calls == [2, 2, 1]
    hand_accuracy, hand_loss = _hand_accuracy_and_loss()
    assert accuracy == hand_accuracy
    assert loss == pytest.approx(hand_loss, rel=1e-6)
    assert model.training


# --- divergence ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["huge_lr", "inf_train_input", "nan_eval_input"])
def test_divergence_gives_zero_accuracy_and_infinite_loss(case: str) -> None:
    model = _tiny_net()
    x, y = _tiny_data()
    x_eval = x.clone()
    config = TrainConfig(steps=3, batch_size=4, optimizer="sgd", lr=0.1, momentum=0.0, cosine=False)
    if case == "huge_lr":
        model = nn.Sequential(nn.Linear(3, 4), nn.Identity(), nn.Linear(4, 2))  # products of two ~1e30 weights overflow float32
        config = TrainConfig(steps=3, batch_size=4, optimizer="sgd", lr=1e30, momentum=0.0, cosine=False)
    elif case == "inf_train_input":
        x = x.clone()
        x[:, 0] = math.inf
    else:
        x_eval[0, 0] = math.nan
    trainer = _trainer(model, x, y)
    result = trainer.run(_state(model), _hand_masks(), config, seed=0, x_eval=x_eval, y_eval=y)
    assert result.diverged is True
    assert result.accuracy == 0.0
    assert result.loss == math.inf


def test_finite_training_is_not_diverged() -> None:
    model = _tiny_net()
    x, y = _tiny_data()
    config = TrainConfig(steps=3, batch_size=4, optimizer="sgd", lr=0.1, momentum=0.0, cosine=False)
    result = _trainer(model, x, y).run(_state(model), _hand_masks(), config, seed=0, x_eval=x, y_eval=y)
    assert result.diverged is False
    assert math.isfinite(result.loss) and 0.0 <= result.accuracy <= 1.0


def test_a_result_is_diverged_when_the_training_or_the_evaluation_loss_is_not_finite() -> None:
    """``compute.train_result``, by hand: the one rule of both trainers (0 accuracy and inf loss on both splits)."""
    kept = train_result(True, (0.5, 1.25), (0.25, 1.5), 2.0, 0.5, (0.125,))
    assert kept == TrainResult(0.5, 1.25, False, 2.0, 0.5, (0.125,), 0.25, 1.5)
    for finite, evaluation in ((False, (0.5, 1.25)), (True, (0.5, math.nan)), (True, (0.5, math.inf))):
        lost = train_result(finite, evaluation, (0.25, 1.5), 2.0, 0.5)
        assert (lost.accuracy, lost.loss, lost.diverged, lost.second_accuracy, lost.second_loss) == (
            0.0, math.inf, True, 0.0, math.inf)
    alone = train_result(False, (0.5, 1.25), None, 2.0, 0.5)
    assert alone.diverged and math.isnan(alone.second_accuracy) and math.isnan(alone.second_loss)


# --- TrainConfig validation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("steps", 0),
        ("steps", -3),
        ("batch_size", 0),
        ("optimizer", "rmsprop"),
        ("lr", 0.0),
        ("lr", -1e-3),
        ("lr", math.nan),
        ("decay_every", -1),
    ],
)
def test_train_config_rejects_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


@pytest.mark.parametrize(("config", "expected"), [
    (TrainConfig(steps=60, lr=0.1, optimizer="sgd", cosine=False, decay_every=25), [0.1] * 25 + [0.01] * 25 + [0.001] * 10),
    (TrainConfig(steps=4, lr=0.1, optimizer="sgd", cosine=False), [0.1] * 4),
    (TrainConfig(steps=4, lr=0.1, optimizer="sgd"), [0.1 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(4)]),
])
def test_learning_rate_schedules(config: TrainConfig, expected: list[float]) -> None:
    optimizer = training.make_optimizer([torch.zeros(1, requires_grad=True)], config)
    scheduler = training.make_scheduler(optimizer, config)
    rates = []
    for _ in range(config.steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    assert rates == pytest.approx(expected)


# --- one optimizer step by hand -----------------------------------------------------------------------------------
W_STEP = np.array([[0.2, -0.4], [0.3, 0.1], [-0.5, 0.6]])
B_STEP = np.array([0.05, -0.1, 0.0])
X_STEP = np.array([1.5, -2.0])
Y_STEP = 1
MASK_STEP = np.array([[True, False], [True, True], [False, True]])


def _hand_gradient() -> tuple[np.ndarray, np.ndarray]:
    """d CE / d (W, b) of one sample for the masked weights: (softmax(z) - onehot(y)) x^T and (softmax(z) - onehot)."""
    weights = W_STEP * MASK_STEP
    logits = weights @ X_STEP + B_STEP
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    delta = probs - np.eye(3)[Y_STEP]
    return np.outer(delta, X_STEP), delta


def _one_step(config: TrainConfig) -> nn.Linear:
    model = nn.Sequential(nn.Linear(2, 3))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(W_STEP))
        model[0].bias.copy_(torch.tensor(B_STEP))
    x = torch.tensor(X_STEP, dtype=torch.float32).view(1, 2)
    y = torch.tensor([Y_STEP])
    trainer = _trainer(model, x, y)
    trainer.run(_state(model), {"0": torch.tensor(MASK_STEP)}, config, seed=0, x_eval=x, y_eval=y)
    return model[0]


def test_one_sgd_step_moves_each_kept_weight_by_minus_lr_times_grad() -> None:
    lr = 0.1
    layer = _one_step(TrainConfig(steps=1, batch_size=1, optimizer="sgd", lr=lr, momentum=0.0, cosine=False))
    grad_w, grad_b = _hand_gradient()
    expected_w = (W_STEP * MASK_STEP - lr * grad_w) * MASK_STEP
    assert np.allclose(layer.weight.detach().numpy(), expected_w, atol=1e-6, rtol=0)
    assert np.allclose(layer.bias.detach().numpy(), B_STEP - lr * grad_b, atol=1e-6, rtol=0)
    assert (layer.weight.detach().numpy()[~MASK_STEP] == 0).all()
    # the pruned weights have a nonzero gradient: without re-masking they would have moved
    assert (np.abs(grad_w[~MASK_STEP]) > 1e-3).all()


def test_one_adam_step_moves_each_kept_weight_by_lr_against_the_gradient_sign() -> None:
    # Adam's first step: m_hat = g, v_hat = g^2, so the update is -lr * g / (|g| + eps) = -lr * sign(g)
    lr = 0.01
    layer = _one_step(TrainConfig(steps=1, batch_size=1, optimizer="adam", lr=lr, cosine=False))
    grad_w, grad_b = _hand_gradient()
    expected_w = (W_STEP * MASK_STEP - lr * grad_w / (np.abs(grad_w) + 1e-8)) * MASK_STEP
    assert np.allclose(layer.weight.detach().numpy(), expected_w, atol=1e-6, rtol=0)
    assert np.allclose(layer.bias.detach().numpy(), B_STEP - lr * np.sign(grad_b), atol=1e-6, rtol=0)
    assert (layer.weight.detach().numpy()[~MASK_STEP] == 0).all()
