"""``training.calibrate_head``: the head's mean layer starts at the least-squares fit of the initial
fused features to the training targets, so a small set never starts from an inverted head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scorecast.config import TargetSpec
from scorecast.models.base import HEADS


@pytest.mark.parametrize("name, bounded", [("regression", False), ("regression", True), ("heteroscedastic", True)])
def test_calibrated_head_starts_at_the_least_squares_line(name, bounded):
    torch.manual_seed(0)
    target = TargetSpec(name="score", low=0.0, high=5.0, step=1.0)
    head = HEADS.build(name, in_dim=1, targets=[target], bounded=bounded)
    layer = head.mean_layer()
    with torch.no_grad():
        layer.weight.fill_(-1.0)  # an inverted start
    x = torch.linspace(0.1, 0.9, 50)[:, None]
    y = 0.5 + 4.0 * x  # inside (0, 5): its logit is a smooth function of x
    assert head.calibrate(x, y.double())
    pred = head(x)["mean"].detach()
    assert layer.weight.detach().item() > 0
    if not bounded:  # the least-squares line (up to the small ridge)
        np.testing.assert_allclose(pred.numpy(), y.numpy(), atol=5e-3)
    else:  # the least-squares line in logit space: monotone and close
        assert np.all(np.diff(pred[:, 0].numpy()) > 0) and float((pred - y).abs().max()) < 0.3


def test_a_head_without_a_mean_layer_is_left_alone_and_missing_targets_are_skipped():
    target = TargetSpec(name="score", low=1.0, high=5.0, step=1.0)
    coral = HEADS.build("coral", in_dim=3, targets=[target])
    assert not hasattr(coral, "calibrate") or coral.calibrate(torch.zeros(4, 3), torch.zeros(4, 1)) is False
    head = HEADS.build("regression", in_dim=3, targets=[target])
    before = head.mean_layer().weight.clone()
    assert head.calibrate(torch.randn(4, 3), torch.full((4, 1), float("nan"), dtype=torch.float64)) is False
    assert torch.equal(before, head.mean_layer().weight)


def test_fit_member_with_calibrate_head_starts_at_the_calibrated_score(tmp_path):
    from ddp_script import base_recipe
    from scorecast.config import load_recipe
    from scorecast.data.features import FeatureSet
    from scorecast.training.trainer import fit_member

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 1)).astype(np.float32)
    y = (1.5 + 0.8 * x[:, 0])[:, None]
    d = base_recipe(max_epochs=1, lr=1e-9)  # training barely moves it: what is left is the start
    d["model"] = {
        "fusion": {"name": "concat", "params": {"hidden": [], "dropout": 0.0}},
        "head": {"name": "regression"},
    }
    d["training"].update(calibrate_head=True, standardize_features=False, early_stopping=None)
    member = fit_member(
        load_recipe(d), FeatureSet([f"i{i}" for i in range(60)], {"x": x}), y, np.arange(60), [], log_dir=tmp_path
    )
    pred = member.predict(FeatureSet([f"i{i}" for i in range(60)], {"x": x})).mean
    np.testing.assert_allclose(pred, y, atol=1e-2)
