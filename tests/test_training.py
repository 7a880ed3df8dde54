"""Losses (stable, correct against naive formulas) and the Lightning training core."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imbalance.training.fit import TensorBatches, fit, new_model, to_tensors
from imbalance.training.losses import LossSpec, binary_loss, effective_number_weights


def naive(logits, y, spec: LossSpec):
    p = torch.sigmoid(logits.double())
    pt = torch.where(y > 0.5, p, 1 - p)
    loss = -torch.log(pt)
    if spec.focal_gamma is not None:
        alpha_t = torch.where(y > 0.5, spec.focal_alpha, 1 - spec.focal_alpha)
        loss = alpha_t * (1 - pt) ** spec.focal_gamma * loss
    if spec.class_weights is not None:
        loss = loss * torch.where(y > 0.5, spec.class_weights[1], spec.class_weights[0])
    return loss.mean()


LOGITS = torch.tensor([-4.0, -1.0, -0.2, 0.0, 0.3, 2.0, 5.0])
TARGETS = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0])


def test_cross_entropy_equals_torch_bce():
    expected = F.binary_cross_entropy_with_logits(LOGITS, TARGETS)
    assert binary_loss(LOGITS, TARGETS, LossSpec()).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize(
    "spec",
    [
        LossSpec(class_weights=(0.3, 1.7)),
        LossSpec(focal_alpha=0.25, focal_gamma=2.0),
        LossSpec(focal_alpha=0.9, focal_gamma=0.5),
        LossSpec(class_weights=(0.2, 1.8), focal_alpha=0.5, focal_gamma=3.0),
    ],
    ids=["weighted_ce", "focal", "focal_alpha_high", "class_balanced_focal"],
)
def test_each_loss_matches_its_textbook_formula(spec):
    assert binary_loss(LOGITS, TARGETS, spec).item() == pytest.approx(naive(LOGITS, TARGETS, spec).item(), rel=1e-5)


def test_focal_with_gamma_zero_is_alpha_weighted_cross_entropy():
    focal = binary_loss(LOGITS, TARGETS, LossSpec(focal_alpha=0.5, focal_gamma=0.0))
    ce = binary_loss(LOGITS, TARGETS, LossSpec())
    assert focal.item() == pytest.approx(0.5 * ce.item(), rel=1e-6)


@pytest.mark.parametrize("spec", [LossSpec(), LossSpec(class_weights=(0.01, 1.99)), LossSpec(focal_alpha=0.25, focal_gamma=5.0)])
def test_losses_stay_finite_with_extreme_logits(spec):
    logits = torch.tensor([-1e4, -200.0, 200.0, 1e4], requires_grad=True)
    y = torch.tensor([1.0, 1.0, 0.0, 0.0])  # every one confidently wrong
    loss = binary_loss(logits, y, spec)
    loss.backward()
    assert math.isfinite(loss.item()) and loss.item() > 0
    assert torch.isfinite(logits.grad).all()
    right = binary_loss(torch.tensor([1e4, -1e4]), torch.tensor([1.0, 0.0]), spec)
    assert right.item() == pytest.approx(0.0, abs=1e-12)


def test_effective_number_weights():
    assert effective_number_weights((990, 10), 0.0) == pytest.approx((1.0, 1.0))
    w_neg, w_pos = effective_number_weights((990, 10), 1.0)  # the limit: inverse frequency
    assert w_pos / w_neg == pytest.approx(99.0) and w_neg + w_pos == pytest.approx(2.0)
    beta = 0.999
    expected = [(1 - beta) / (1 - beta**n) for n in (990, 10)]
    w = effective_number_weights((990, 10), beta)
    assert w[1] / w[0] == pytest.approx(expected[1] / expected[0], rel=1e-9)
    # beta extremely close to 1 has no cancellation trouble and approaches inverse frequency
    w = effective_number_weights((990, 10), 1 - 1e-12)
    assert w[1] / w[0] == pytest.approx(99.0, rel=1e-6)


def test_tensor_batches_cover_every_row_once_per_epoch_in_whole_batches():
    X = torch.arange(10, dtype=torch.float32)[:, None]
    y = torch.zeros(10)
    batches = TensorBatches(X, y, 2, torch.Generator().manual_seed(0), batches_per_chunk=2)
    assert len(batches) == 3
    seen = torch.cat([xb[:, 0] for xb, _ in batches])
    assert sorted(seen.tolist()) == list(range(10))
    assert [len(xb) for xb, _ in batches] == [4, 4, 2]  # chunks of two 2-row batches
    assert torch.cat([xb[:, 0] for xb, _ in batches]).tolist() != seen.tolist()  # new order each epoch


@pytest.mark.parametrize("hidden, rows", [((), 1000), ((8,), 2100)], ids=["logreg", "mlp-ragged-last-chunk"])
def test_lightning_core_makes_exactly_the_updates_of_a_plain_loop(hidden, rows):
    """Chunked manual optimisation = one Adam step per mini-batch over the same shuffled rows."""
    from imbalance.training.losses import LossSpec, binary_loss

    X, y = _data(n=rows)
    lightning = new_model(5, hidden, 0.01, 0.0, seed=3)
    fit(lightning, X, y, epochs=2, batch_size=64, seed=9)
    plain = new_model(5, hidden, 0.01, 0.0, seed=3)
    optimizer = torch.optim.Adam(plain.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(9)
    for _ in range(2):
        order = torch.randperm(rows, generator=generator)
        Xs, ys = X[order], y[order]
        for start in range(0, rows, 64):
            optimizer.zero_grad()
            binary_loss(plain(Xs[start : start + 64]), ys[start : start + 64], LossSpec()).backward()
            optimizer.step()
    for a, b in zip(lightning.parameters(), plain.parameters()):
        assert torch.allclose(a, b, atol=1e-6), (a, b)


def _data(seed=0, n=3000, shift=1.5):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(np.float32)
    X = rng.normal(size=(n, 5)).astype(np.float32) + shift * y[:, None]
    return to_tensors(X, y)


@pytest.mark.parametrize("hidden", [(), (16, 8)], ids=["logreg", "mlp"])
def test_training_is_deterministic_for_a_seed_and_learns(hidden, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = _data()
    runs = []
    for init_seed, shuffle_seed in [(1, 2), (1, 2), (1, 3)]:
        model = new_model(5, hidden, 0.01, 0.0, init_seed)
        fit(model, X, y, epochs=3, batch_size=128, seed=shuffle_seed)
        runs.append(model.predict_proba(X))
    assert torch.equal(runs[0], runs[1])  # to the last bit
    assert not torch.equal(runs[0], runs[2])
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y.numpy(), runs[0].numpy()) > 0.95
    # quiet: no lightning_logs, no checkpoints left in the working directory
    assert list(Path(tmp_path).iterdir()) == []


def test_weighted_training_raises_positive_scores():
    X, y = _data(shift=0.6)
    plain, weighted = new_model(5, (), 0.05, 0.0, 0), new_model(5, (), 0.05, 0.0, 0)
    weighted.loss_spec = LossSpec(class_weights=effective_number_weights((2700, 300), 0.9999))
    fit(plain, X, y, epochs=3, batch_size=256, seed=0)
    fit(weighted, X, y, epochs=3, batch_size=256, seed=0)
    positives = y.numpy() == 1
    recall_plain = (plain.predict_proba(X).numpy()[positives] >= 0.5).mean()
    recall_weighted = (weighted.predict_proba(X).numpy()[positives] >= 0.5).mean()
    assert recall_weighted > recall_plain + 0.15, (recall_plain, recall_weighted)


@pytest.mark.parametrize("hidden", [(), (16, 8)], ids=["logreg", "mlp"])
def test_training_continues_across_fits(hidden):
    """N epochs in one fit = the same N epochs split over two fits (same shuffling stream):
    the second fit continues Adam's moments and step count instead of starting a new Adam."""
    X, y = _data(n=1500)
    whole = new_model(5, hidden, 0.01, 0.0, seed=4)
    fit(whole, X, y, epochs=4, batch_size=64, generator=torch.Generator().manual_seed(7))
    split = new_model(5, hidden, 0.01, 0.0, seed=4)
    stream = torch.Generator().manual_seed(7)
    fit(split, X, y, epochs=1, batch_size=64, generator=stream)
    fit(split, X, y, epochs=3, batch_size=64, generator=stream)
    assert split.optimizer_steps == whole.optimizer_steps == 4 * math.ceil(1500 / 64)
    for a, b in zip(whole.parameters(), split.parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=0), (a - b).abs().max()
    # what a fresh optimizer per fit (the old behaviour) would have done instead: not the same
    restarted = new_model(5, hidden, 0.01, 0.0, seed=4)
    stream = torch.Generator().manual_seed(7)
    fit(restarted, X, y, epochs=1, batch_size=64, generator=stream)
    restarted.reset_optimizer()
    fit(restarted, X, y, epochs=3, batch_size=64, generator=stream)
    assert restarted.optimizer_steps == 3 * math.ceil(1500 / 64)
    assert not all(torch.allclose(a, b, atol=1e-4) for a, b in zip(whole.parameters(), restarted.parameters()))


def test_a_fits_learning_rate_applies_to_that_fit_only():
    """train(epochs, lr) changes the step size of its own call; the moments carry on."""
    X, y = _data(n=1000)
    model = new_model(5, (8,), 0.01, 0.0, seed=1)
    fit(model, X, y, epochs=1, batch_size=100, seed=0)
    optimizer = model._optimizer
    model.lr = 0.001
    fit(model, X, y, epochs=1, batch_size=100, seed=1)
    assert model._optimizer is optimizer and optimizer.param_groups[0]["lr"] == 0.001
    assert model.optimizer_steps == 20
    model.lr = 0.01
    fit(model, X, y, epochs=1, batch_size=100, seed=2)
    assert optimizer.param_groups[0]["lr"] == 0.01 and model.optimizer_steps == 30


def test_fit_takes_exactly_one_shuffling_source():
    X, y = _data(n=100)
    model = new_model(5, (), 0.01, 0.0, seed=0)
    with pytest.raises(ValueError):
        fit(model, X, y, epochs=1, batch_size=10)
    with pytest.raises(ValueError):
        fit(model, X, y, epochs=1, batch_size=10, seed=1, generator=torch.Generator())
