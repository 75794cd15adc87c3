"""The ``prior`` head: at initialisation it predicts exactly the calibrated zero-shot score; trained, it
keeps the calibration and learns a correction; its calibration travels with the weights; errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scorecast.config import Component, ModelConfig, TargetSpec, load_recipe
from scorecast.data.features import FeatureSet
from scorecast.errors import ConfigError
from scorecast.models import FeatureShape, build_model
from scorecast.models.datasets import FeatureScaler
from scorecast.training.trainer import fit_member

TARGET = TargetSpec(name="score", low=1, high=5, step=1)


def generated(n: int = 160, seed: int = 0):
    """A zero-shot score ``zs`` (column 0 of a 2-d feature) that explains most of the target, and a
    second feature ``x`` holding what the prior misses."""
    rng = np.random.default_rng(seed)
    zs = rng.uniform(1.5, 4.5, size=(n, 2)).astype(np.float32)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = 0.6 * zs[:, 0] + 1.0 + 0.5 * x[:, 0] + 0.05 * rng.normal(size=n)
    ids = [f"i{i}" for i in range(n)]
    return FeatureSet(ids, {"zs": zs, "x": x}), y[:, None]


def test_prior_head_equals_the_calibrated_prior_at_initialisation():
    fs, y = generated()
    config = ModelConfig(
        fusion=Component(name="concat", params={"hidden": [16]}), head=Component(name="prior", params={"feature": "zs"})
    )
    model = build_model(config, {"zs": FeatureShape(2), "x": FeatureShape(3)}, [TARGET])
    model.head.calibrate_prior(fs.pooled, y)
    # the hand calibration: least squares of the target on the prior column
    slope, intercept = np.polyfit(fs.pooled["zs"][:, 0].astype(np.float64), y[:, 0], 1)
    with torch.no_grad():
        out = model({k: torch.as_tensor(v) for k, v in fs.pooled.items()})
    expected = slope * fs.pooled["zs"][:, 0] + intercept
    np.testing.assert_allclose(out["mean"][:, 0].numpy(), expected, rtol=1e-5, atol=1e-5)
    assert float(out["correction"].abs().max()) == 0.0
    # the calibration is saved with the weights
    state = model.state_dict()
    assert float(state["head.slope"][0]) == pytest.approx(slope, rel=1e-5)
    assert float(state["head.intercept"][0]) == pytest.approx(intercept, rel=1e-5)


def test_constant_prior_starts_at_the_training_mean():
    fs, y = generated(40)
    model = build_model(
        ModelConfig(head=Component(name="prior")), {"zs": FeatureShape(2), "x": FeatureShape(3)}, [TARGET]
    )
    model.head.calibrate_prior(fs.pooled, y)
    with torch.no_grad():
        out = model({k: torch.as_tensor(v) for k, v in fs.pooled.items()})
    np.testing.assert_allclose(out["mean"].numpy(), np.full((40, 1), y.mean()), rtol=1e-5)


def test_fit_member_calibrates_on_the_training_fold_and_learns_the_correction(tmp_path):
    torch.set_num_threads(1)
    fs, y = generated(200)
    recipe = load_recipe(
        {
            "targets": [TARGET.model_dump()],
            "model": {"fusion": {"name": "concat"}, "head": {"name": "prior", "params": {"feature": "zs"}}},
            "losses": [{"name": "mse"}, {"name": "correction-l2", "weight": 0.01}],
            "training": {"max_epochs": 40, "lr": 0.01, "batch_size": 32, "scheduler": "none", "early_stopping": None},
        }
    )
    train, test = np.arange(150), np.arange(150, 200)
    member = fit_member(recipe, fs, y, train, [], seed=0, log_dir=tmp_path)
    scaled = FeatureScaler.fit(fs.subset(train)).transform(fs.subset(train))
    slope, intercept = np.polyfit(scaled.pooled["zs"][:, 0].astype(np.float64), y[train, 0], 1)
    head = member.model.head
    assert float(head.slope[0]) == pytest.approx(slope, rel=1e-4)
    assert float(head.intercept[0]) == pytest.approx(intercept, rel=1e-4)
    pred = member.predict(fs.subset(test)).mean[:, 0]
    prior_only = 0.6 * fs.pooled["zs"][test, 0] + 1.0
    # the correction captured x, which the prior cannot see
    assert np.mean((pred - y[test, 0]) ** 2) < 0.5 * np.mean((prior_only - y[test, 0]) ** 2)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"feature": "dnsmos"}, r"head 'prior': the prior feature 'dnsmos' is not an input; the inputs are: zs, x"),
        ({"feature": "zs", "index": 2}, r"head 'prior': 'index' 2 is out of range for feature 'zs' of size 2"),
        ({"feature": "zs", "index": -1}, r"head 'prior': expected 'index' to be a whole number >= 0, got -1"),
    ],
)
def test_prior_head_config_errors(params, match):
    with pytest.raises(ConfigError, match=match):
        build_model(
            ModelConfig(head=Component(name="prior", params=params)),
            {"zs": FeatureShape(2), "x": FeatureShape(3)},
            [TARGET],
        )


def test_constant_prior_column_is_refused():
    model = build_model(
        ModelConfig(head=Component(name="prior", params={"feature": "zs"})), {"zs": FeatureShape(2)}, [TARGET]
    )
    with pytest.raises(
        ConfigError, match=r"the prior column 0 of 'zs' is constant or not finite on the training items"
    ):
        model.head.calibrate_prior({"zs": np.ones((10, 2), np.float32)}, np.arange(10.0)[:, None])
