"""Contract tests over every registered loss with every head that gives what it needs; CombinedLoss
and build_loss; each error with its message."""

from __future__ import annotations

import pytest
import torch

from scorecast.config import LossTerm, TargetSpec
from scorecast.errors import ConfigError
from scorecast.losses import LOSSES, CombinedLoss, build_loss
from scorecast.models import HEADS

TARGETS = [TargetSpec(name="mos", low=1, high=5, step=1), TargetSpec(name="align", low=0, high=10, step=1)]


def compatible_heads(loss_name: str) -> list[str]:
    needs = set(LOSSES.get(loss_name).requires)
    return [h for h in HEADS.names() if needs <= set(HEADS.get(h).provides)]


PAIRS = [(loss, head) for loss in LOSSES.names() for head in compatible_heads(loss)]
MISMATCHED = [(loss, head) for loss in LOSSES.names() for head in HEADS.names() if head not in compatible_heads(loss)]


def build_head(name: str, in_dim: int, targets: list[TargetSpec]):
    """A head; one that starts as a fixed function of nothing learnt (``prior``: its correction starts at
    zero, so no gradient reaches the features yet) gets seeded noise on its weights first."""
    head = HEADS.build(name, in_dim=in_dim, targets=targets)
    if name == "prior":
        g = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for p in head.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return head


def targets_with_gaps(b: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    y = torch.stack([1 + 4 * torch.rand(b, generator=g), 10 * torch.rand(b, generator=g)], dim=1)
    y[0, 0] = float("nan")
    y[3, 1] = float("nan")
    return y


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_has_a_head(name):
    assert compatible_heads(name), f"no registered head gives {LOSSES.get(name).requires}"


@pytest.mark.parametrize("loss_name, head_name", PAIRS)
def test_loss_is_finite_and_gradients_reach_the_features(loss_name, head_name):
    torch.manual_seed(0)
    head = build_head(head_name, 8, TARGETS)
    loss = LOSSES.build(loss_name, targets=TARGETS)
    h = torch.randn(12, 8, requires_grad=True)
    value = loss(head(h), targets_with_gaps(12), torch.rand(12) + 0.5)
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    assert h.grad is not None and torch.isfinite(h.grad).all() and h.grad.abs().sum() > 0


@pytest.mark.parametrize("loss_name, head_name", PAIRS)
def test_nan_targets_are_masked(loss_name, head_name):
    """A missing target changes nothing: the loss equals the loss on the items that have it, and a
    batch with no target at all gives 0 with a usable graph."""
    torch.manual_seed(0)
    head = build_head(head_name, 8, TARGETS[:1])
    loss = LOSSES.build(loss_name, targets=TARGETS[:1])
    h = torch.randn(10, 8, requires_grad=True)
    out = head(h)
    y = targets_with_gaps(10)[:, :1].clone()
    y[5, 0] = float("nan")
    keep = ~torch.isnan(y[:, 0])
    torch.testing.assert_close(loss(out, y), loss({k: v[keep] for k, v in out.items()}, y[keep]))
    empty = loss(out, torch.full_like(y, float("nan")))
    assert empty.item() == 0.0
    empty.backward()
    assert torch.isfinite(h.grad).all()


@pytest.mark.parametrize("loss_name, head_name", PAIRS)
def test_training_reduces_the_loss(loss_name, head_name):
    torch.manual_seed(0)
    h = torch.randn(64, 6)
    y = torch.stack([3 + h[:, 0] + 0.3 * h[:, 1], 5 + 2 * h[:, 2]], dim=1).clamp(TARGETS[0].low, None)
    y[:, 0] = y[:, 0].clamp(1, 5)
    y[:, 1] = y[:, 1].clamp(0, 10)
    head = build_head(head_name, 6, TARGETS)
    loss = LOSSES.build(loss_name, targets=TARGETS)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    start = loss(head(h), y).item()
    for _ in range(60):
        opt.zero_grad()
        loss(head(h), y).backward()
        opt.step()
    assert loss(head(h), y).item() < start


@pytest.mark.parametrize("loss_name, head_name", MISMATCHED)
def test_missing_head_outputs_name_the_loss_and_the_keys(loss_name, head_name):
    head = HEADS.build(head_name, in_dim=4, targets=TARGETS)
    loss = LOSSES.build(loss_name, targets=TARGETS)
    out = head(torch.randn(3, 4))
    with pytest.raises(ConfigError, match=rf"loss '{loss_name}' needs head output\(s\) .* but the head gives only \["):
        loss(out, torch.ones(3, 2))


def test_cross_entropy_with_regression_head_says_what_is_missing():
    out = HEADS.build("regression", in_dim=4, targets=TARGETS)(torch.randn(3, 4))
    loss = LOSSES.build("cross-entropy", targets=TARGETS)
    with pytest.raises(
        ConfigError,
        match=r"loss 'cross-entropy' needs head output\(s\) \['logits'\], but the head gives only \['mean'\]; "
        r"use a head that gives \['logits'\]: distribution, expected-class",
    ):
        loss(out, torch.ones(3, 2))


def test_unknown_loss_lists_known_ones():
    with pytest.raises(
        ConfigError, match=r"unknown loss 'listnet'; expected one of: coral, correction-l2, correlation, cosent"
    ):
        build_loss([LossTerm(name="listnet")], TARGETS)


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("huber", {"delta": 0}, r"loss 'huber': expected 'delta' > 0.0, got 0"),
        ("gaussian-nll", {"mae_weight": 2}, r"loss 'gaussian-nll': expected 'mae_weight' in \[0, 1\], got 2"),
        ("cross-entropy", {"label_smoothing": 1.0}, r"expected 'label_smoothing' in \[0, 1\), got 1.0"),
        ("coral", {"importance": [1, 2]}, r"loss 'coral': expected 'importance' to list 10 weights"),
        ("spearman", {"temperature": "low"}, r"expected 'temperature' to be a number, got 'low'"),
        ("mse", {"delta": 1}, r"cannot build loss 'mse' with \['delta', 'targets'\]"),
        ("kl", {}, None),
    ],
)
def test_bad_loss_params(name, params, match):
    if match is None:
        with pytest.raises(ConfigError, match=r"loss 'kl': expected a non-empty list of TargetSpec"):
            LOSSES.build(name, targets=[])
        return
    with pytest.raises(ConfigError, match=match):
        LOSSES.build(name, targets=TARGETS, **params)


def test_shape_errors():
    out = HEADS.build("expected-class", in_dim=4, targets=TARGETS)(torch.randn(3, 4))
    mse = LOSSES.build("mse", targets=TARGETS)
    with pytest.raises(ConfigError, match=r"loss 'mse': expected target of shape \(B, T\) = \(3, 2\), got \(3,\)"):
        mse(out, torch.ones(3))
    with pytest.raises(
        ConfigError, match=r"loss 'mse': expected sample weights of shape \(B,\) = \(3,\), got \(3, 1\)"
    ):
        mse(out, torch.ones(3, 2), torch.ones(3, 1))
    with pytest.raises(ConfigError, match=r"loss 'mse': built for 1 target\(s\), but the head gives 2"):
        LOSSES.build("mse", targets=TARGETS[:1])(out, torch.ones(3, 2))
    other = [TargetSpec(name="mos"), TargetSpec(name="align", low=0, high=10, step=0.5)]
    with pytest.raises(ConfigError, match=r"loss 'cross-entropy': expected head output 'logits' of shape \(B, 2, 21\)"):
        LOSSES.build("cross-entropy", targets=other)(out, torch.ones(3, 2))
    kl = LOSSES.build("kl", targets=TARGETS)
    with pytest.raises(
        ConfigError, match=r"loss 'kl': expected extra\['target_dist'\] of shape \(B, T, K\) = \(3, 2, 11\)"
    ):
        kl(out, torch.ones(3, 2), extra={"target_dist": torch.ones(3, 2, 5)})


# ------------------------------------------------------------------------------------ combined


def test_combined_loss_is_the_weighted_sum_with_parts():
    torch.manual_seed(0)
    terms = [
        LossTerm(name="mse", weight=0.5),
        LossTerm(name="huber", weight=0.3, params={"delta": 0.5}),
        LossTerm(name="cumulative-bce", weight=0.2),
        LossTerm(name="mse", weight=1.0),
    ]
    combined = build_loss(terms, TARGETS)
    assert isinstance(combined, CombinedLoss)
    assert combined.names == ["mse", "huber", "cumulative-bce", "mse.2"]
    assert combined.requires == ("mean", "cum_logits")
    head = HEADS.build("ordinal", in_dim=8, targets=TARGETS)
    h = torch.randn(6, 8, requires_grad=True)
    out, y, w = head(h), targets_with_gaps(6), torch.rand(6)
    total, parts = combined(out, y, w)
    singles = {
        "mse": LOSSES.build("mse", targets=TARGETS)(out, y, w),
        "huber": LOSSES.build("huber", targets=TARGETS, delta=0.5)(out, y, w),
        "cumulative-bce": LOSSES.build("cumulative-bce", targets=TARGETS)(out, y, w),
    }
    torch.testing.assert_close(total, 1.5 * singles["mse"] + 0.3 * singles["huber"] + 0.2 * singles["cumulative-bce"])
    for name in ("mse", "huber", "cumulative-bce"):
        torch.testing.assert_close(parts[name], singles[name].detach())
    assert all(not p.requires_grad for p in parts.values())
    total.backward()
    assert torch.isfinite(h.grad).all() and h.grad.abs().sum() > 0


def test_combined_loss_errors():
    with pytest.raises(ConfigError, match=r"expected at least one loss term"):
        build_loss([], TARGETS)
    mse = LOSSES.build("mse", targets=TARGETS)
    with pytest.raises(ConfigError, match=r"losses\[0\]: expected a non-negative weight, got -1"):
        CombinedLoss([(-1, mse)])
    combined = build_loss([LossTerm(name="mse"), LossTerm(name="kl")], TARGETS)
    with pytest.raises(
        ConfigError, match=r"loss 'kl' needs head output\(s\) \['logits'\], but head 'coral' gives only"
    ):
        combined.check_head(HEADS.get("coral").provides, "coral")
    combined.check_head(HEADS.get("distribution").provides, "distribution")
