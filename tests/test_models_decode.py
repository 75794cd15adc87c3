"""Heads decode to the right score on hand-built inputs; the bin helpers; pad_sequences; the
heteroscedastic head learns where the noise is."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scorecast.config import TargetSpec
from scorecast.data.items import Ratings
from scorecast.models import HEADS, BinLayout, bin_edges, pad_sequences, rating_histograms
from scorecast.models.bins import PAD_LOGIT

T15 = TargetSpec(name="mos", low=1, high=5, step=1)  # levels 1..5
T010 = TargetSpec(name="align", low=0, high=10, step=2)  # levels 0,2,...,10


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def set_bias_only(linear: torch.nn.Linear, bias) -> None:
    """Make a Linear ignore its input and output ``bias``: the hand-built logits."""
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.copy_(torch.as_tensor(bias, dtype=torch.float32).reshape(-1))


@pytest.mark.parametrize("name", ["expected-class", "distribution"])
def test_softmax_heads_decode_concentrated_and_uniform(name):
    head = HEADS.build(name, in_dim=4, targets=[T15, T010]).eval()
    k = 6
    logits = torch.full((2, k), -30.0)
    logits[0, 3] = 30.0  # mos: all mass on level index 3 -> score 4
    logits[1, :] = 0.0  # align: uniform over its 6 levels -> mean 5, var of {0,2,..,10}
    set_bias_only(head.out, logits)
    out = head(torch.randn(3, 4))
    torch.testing.assert_close(out["mean"][:, 0], torch.full((3,), 4.0))
    assert out["std"][:, 0].max() < 1e-3
    levels = np.arange(0, 11, 2.0)
    torch.testing.assert_close(out["mean"][:, 1], torch.full((3,), 5.0))
    torch.testing.assert_close(out["std"][:, 1], torch.full((3,), float(levels.std())))


def test_expected_class_mean_is_probability_weighted_levels():
    head = HEADS.build("expected-class", in_dim=4, targets=[T15]).eval()
    raw = [0.3, -1.2, 2.0, 0.7, -0.4]
    set_bias_only(head.out, raw)
    p = np.exp(raw) / np.exp(raw).sum()
    expected = float((p * np.arange(1, 6)).sum())
    spread = math.sqrt(float((p * (np.arange(1, 6) - expected) ** 2).sum()))
    out = head(torch.zeros(1, 4))
    assert out["mean"].item() == pytest.approx(expected, abs=1e-5)
    assert out["std"].item() == pytest.approx(spread, abs=1e-5)


def test_ordinal_head_decodes_cumulative_logits():
    head = HEADS.build("ordinal", in_dim=4, targets=[T15]).eval()
    # cum_logits = [r0, r0 - sp(r1), r0 - sp(r1) - sp(r2), ...]: r0=30, gaps ~0, ~0, then 60 -> [30, 30, 30, -30]
    set_bias_only(head.out, [30.0, -50.0, -50.0, 60.0])
    out = head(torch.randn(2, 4))
    torch.testing.assert_close(out["mean"], torch.full((2, 1), 4.0))  # P(y>0..2) = 1, P(y>3) = 0
    torch.testing.assert_close(out["probs"][0, 0], torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0]), atol=1e-6, rtol=0)
    # a soft case against the formula written out by hand
    raw = [0.8, -0.3, 1.1, 0.2]
    set_bias_only(head.out, raw)
    sp = [math.log1p(math.exp(r)) for r in raw[1:]]
    cum = [raw[0], raw[0] - sp[0], raw[0] - sp[0] - sp[1], raw[0] - sp[0] - sp[1] - sp[2]]
    exceed = [sigmoid(c) for c in cum]
    out = head(torch.randn(1, 4))
    torch.testing.assert_close(out["cum_logits"][0, 0], torch.tensor(cum))
    assert out["mean"].item() == pytest.approx(1 + sum(exceed), abs=1e-5)
    probs = [1 - exceed[0]] + [exceed[i] - exceed[i + 1] for i in range(3)] + [exceed[3]]
    torch.testing.assert_close(out["probs"][0, 0], torch.tensor(probs))


def test_coral_head_known_biases_and_weights():
    head = HEADS.build("coral", in_dim=3, targets=[T010]).eval()
    biases = [2.0, 0.5, -1.0, -3.0, -4.0]
    w = [0.5, -1.0, 2.0]
    h = [1.0, 0.25, -0.5]
    with torch.no_grad():
        head.biases.copy_(torch.tensor([biases]))
        head.weight.weight.copy_(torch.tensor([w]))
    score = sum(a * b for a, b in zip(w, h))
    expected = 0 + 2 * sum(sigmoid(score + b) for b in biases)
    out = head(torch.tensor([h]))
    assert out["mean"].item() == pytest.approx(expected, abs=1e-5)
    torch.testing.assert_close(out["cum_logits"][0, 0], torch.tensor([score + b for b in biases]))


def test_cumulative_heads_start_mid_range():
    for name in ("ordinal", "coral"):
        head = HEADS.build(name, in_dim=4, targets=[T15, T010]).eval()
        with torch.no_grad():
            for p in head.parameters():
                if p.ndim == 2 and p.shape[1] == 4:
                    p.zero_()
        out = head(torch.randn(2, 4))
        torch.testing.assert_close(out["mean"], torch.tensor([[3.0, 5.0], [3.0, 5.0]]), atol=1e-5, rtol=0)


def test_regression_head_bounded_and_centred():
    bounded = HEADS.build("regression", in_dim=2, targets=[T15, T010], bounded=True).eval()
    set_bias_only(bounded.out, [100.0, -100.0])
    torch.testing.assert_close(bounded(torch.zeros(1, 2))["mean"], torch.tensor([[5.0, 0.0]]))
    free = HEADS.build("regression", in_dim=2, targets=[T15, T010]).eval()
    set_bias_only(free.out, [0.0, 1.0])
    torch.testing.assert_close(free(torch.zeros(1, 2))["mean"], torch.tensor([[3.0, 10.0]]))


# ------------------------------------------------------------------------------------ bins


def test_bin_layout_index_roundtrip_and_padding():
    bins = BinLayout([T15, T010])
    assert bins.num_bins == 6 and bins.counts.tolist() == [5, 6]
    values = torch.tensor([[1.0, 0.0], [3.4, 4.9], [7.0, 11.0], [-2.0, float("nan")]])
    idx = bins.to_index(values)
    assert idx.tolist() == [[0, 0], [2, 2], [4, 5], [0, 0]]  # rounded to nearest, clamped to the range
    torch.testing.assert_close(bins.from_index(idx)[:3], torch.tensor([[1.0, 0.0], [3.0, 4.0], [5.0, 10.0]]))
    assert bins.valid[0].tolist() == [True] * 5 + [False]
    logits = bins.mask_logits(torch.zeros(1, 2, 6))
    assert logits[0, 0, 5].item() == PAD_LOGIT
    levels = bins.exceed_levels(torch.tensor([[3.0, 6.0]]))
    assert levels[0, 0].tolist() == [1, 1, 0, 0, 0] and levels[0, 1].tolist() == [1, 1, 1, 0, 0]


def test_gaussian_target_distribution():
    bins = BinLayout([T15])
    q = bins.gaussian(torch.tensor([[2.0], [3.5]]), sigma=0.7)
    torch.testing.assert_close(q.sum(-1), torch.ones(2, 1))
    levels = np.arange(1, 6.0)
    ref = np.exp(-((levels - 3.5) ** 2) / (2 * 0.7**2))
    torch.testing.assert_close(q[1, 0], torch.tensor(ref / ref.sum(), dtype=torch.float32))
    assert int(q[0, 0].argmax()) == 1


def test_bin_edges_give_ratings_histograms_over_levels():
    edges = bin_edges(T15)
    np.testing.assert_allclose(edges, [0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
    hist = Ratings(np.array([1, 2, 2, 5, 5, 5])).histogram(edges)
    np.testing.assert_allclose(hist, [1 / 6, 2 / 6, 0, 0, 3 / 6])


def test_rating_histograms_feed_the_kl_loss():
    from scorecast.losses import LOSSES

    ratings = [{"mos": Ratings(np.array([1.0, 2.0, 2.0])), "align": Ratings(np.array([10.0]))}, {}]
    dist = rating_histograms(ratings, [T15, T010])
    assert dist.shape == (2, 2, 6)
    np.testing.assert_allclose(dist[0, 0], [1 / 3, 2 / 3, 0, 0, 0, 0])
    np.testing.assert_allclose(dist[0, 1], [0, 0, 0, 0, 0, 1])
    assert dist[1].sum() == 0  # no ratings: the loss falls back to the Gaussian
    kl = LOSSES.build("kl", targets=[T15, T010])
    logits = torch.log(torch.tensor(dist[0]) + 1e-9).unsqueeze(0)  # predicting the histogram exactly
    out = {"mean": torch.zeros(1, 2), "logits": logits}
    assert kl(out, torch.tensor([[1.7, 10.0]]), extra={"target_dist": torch.tensor(dist[:1])}).item() < 1e-6


def test_pad_sequences():
    seqs = [np.ones((2, 3)), np.full((4, 3), 2.0), np.zeros((1, 3))]
    x, mask = pad_sequences(seqs)
    assert x.shape == (3, 4, 3) and x.dtype == torch.float32
    assert mask.tolist() == [[True, True, False, False], [True] * 4, [True, False, False, False]]
    assert x[0, 2:].abs().sum() == 0 and x[1].sum() == 24


# ------------------------------------------------------------------------------------ uncertainty


def test_heteroscedastic_std_grows_with_noise():
    """Noise 0.05 for x < 0 and 0.8 for x > 0: after training, the predicted std is larger on x > 0."""
    torch.manual_seed(0)
    from scorecast.losses import LOSSES

    x = torch.rand(512, 1) * 2 - 1
    noise = torch.where(x > 0, 0.8, 0.05)
    y = 3.0 + x + noise * torch.randn_like(x)
    head = HEADS.build("heteroscedastic", in_dim=1, targets=[T15], hidden=[16])
    loss_fn = LOSSES.build("gaussian-nll", targets=[T15])
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        loss_fn(head(x), y).backward()
        opt.step()
    head.eval()
    with torch.no_grad():
        quiet = head(torch.linspace(-0.9, -0.1, 20).unsqueeze(1))["std"].mean().item()
        noisy = head(torch.linspace(0.1, 0.9, 20).unsqueeze(1))["std"].mean().item()
    assert noisy > 3 * quiet, (quiet, noisy)
    assert noisy == pytest.approx(0.8, rel=0.35) and quiet < 0.3
