"""The ``siamese`` fusion (one identity-initialised adapter on both sides of a pair, scored by cosine)
and ``training.lr_multipliers``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scorecast.config import load_recipe
from scorecast.data.features import FeatureSet
from scorecast.errors import ConfigError
from scorecast.models import FUSIONS, FeatureShape
from scorecast.training.module import parameter_groups
from scorecast.training.trainer import fit_member

PAIR = {"s1": FeatureShape(16), "s2": FeatureShape(16)}


def numpy_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("adapter", ["linear", "low-rank", "mlp", "none"])
def test_starts_as_the_encoders_own_cosine(adapter):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 16)), rng.normal(size=(5, 16))
    fusion = FUSIONS.build("siamese", inputs=PAIR, adapter=adapter, rank=4, hidden=8)
    out = fusion({"s1": torch.tensor(a, dtype=torch.float32), "s2": torch.tensor(b, dtype=torch.float32)})
    assert out.shape == (5, 1)
    np.testing.assert_allclose(out[:, 0].detach().numpy(), numpy_cosine(a, b), rtol=1e-5, atol=1e-6)


def test_outputs_product_and_difference_are_of_the_unit_vectors():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 16)), rng.normal(size=(3, 16))
    fusion = FUSIONS.build("siamese", inputs=PAIR, adapter="none", outputs=["product", "difference", "cosine"])
    out = fusion({"s1": torch.tensor(a, dtype=torch.float32), "s2": torch.tensor(b, dtype=torch.float32)}).numpy()
    ua, ub = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    np.testing.assert_allclose(
        out, np.hstack([ua * ub, np.abs(ua - ub), numpy_cosine(a, b)[:, None]]), rtol=1e-5, atol=1e-6
    )
    assert fusion.out_dim == 33


def test_one_adapter_serves_both_sides():
    fusion = FUSIONS.build("siamese", inputs=PAIR, adapter="linear")
    assert [n for n, _ in fusion.named_parameters()] == ["adapter.delta.weight"]
    with torch.no_grad():
        fusion.adapter.delta.weight.normal_()
    x = torch.randn(4, 16)
    # the same vector on both sides stays at cosine 1 whatever the adapter learned
    torch.testing.assert_close(fusion({"s1": x, "s2": x})[:, 0], torch.ones(4))


@pytest.mark.parametrize(
    "inputs, params, match",
    [
        (
            {"s1": FeatureShape(16), "s2": FeatureShape(8)},
            {},
            r"expected the two sides of a pair of the same size .* got 's1' 16 and 's2' 8",
        ),
        ({**PAIR, "meta": FeatureShape(4)}, {}, r"reads no others; got extra inputs meta \(name them in 'extra'"),
        ({**PAIR, "c": FeatureShape(4)}, {"more_pairs": [["c"]]}, r"expected 'more_pairs' as \[\[left, right\], ...\]"),
        ({**PAIR, "c": FeatureShape(4)}, {"more_pairs": [["c", "zz"]]}, r"'more_pairs' input 'zz' is not a feature"),
        ({**PAIR, "c": FeatureShape(4)}, {"more_pairs": [["c", "s1"]]}, r"expected each feature in one place"),
        ({**PAIR, "c": FeatureShape(4), "d": FeatureShape(5)}, {"more_pairs": [["c", "d"]]}, r"got 'c' 4 and 'd' 5"),
        ({**PAIR, "m": FeatureShape(2)}, {"extra": [3]}, r"expected feature names, got \[3\]"),
        ({"s1": FeatureShape(16)}, {}, r"expected at least two input features, got 1: s1"),
        (PAIR, {"adapter": "conv"}, r"unknown adapter 'conv'; expected one of: linear, low-rank, mlp, none"),
        (
            PAIR,
            {"outputs": ["cosine", "angle"]},
            r"expected 'outputs' to be distinct names from cosine, product, difference",
        ),
        (PAIR, {"outputs": []}, r"expected 'outputs' to be distinct names"),
        (PAIR, {"left": "s2", "right": "s2"}, r"got 's2' twice"),
        (PAIR, {"rank": 0}, r"expected 'rank' to be a positive integer, got 0"),
    ],
)
def test_errors(inputs, params, match):
    with pytest.raises(ConfigError, match=match):
        FUSIONS.build("siamese", inputs=inputs, **params)


def _pairs(n: int, seed: int):
    """Pairs whose true similarity is the cosine in a space the raw vectors distort: the scores
    depend on the first 4 dimensions only, the other 12 are nuisance of larger variance."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 16))
    other = base + rng.normal(scale=1.0, size=(n, 16))
    base[:, 4:] *= 3.0
    other[:, 4:] = rng.normal(scale=3.0, size=(n, 12))
    score = 2.5 + 2.5 * numpy_cosine(base[:, :4], other[:, :4])
    return FeatureSet(
        [f"p{i}" for i in range(n)], {"s1": base.astype(np.float32), "s2": other.astype(np.float32)}
    ), score


def test_training_learns_past_the_raw_cosine(tmp_path):
    """On pairs where the raw cosine is distorted, the trained siamese head ranks test pairs better."""
    from scipy.stats import spearmanr

    recipe = load_recipe(
        {
            "targets": [{"name": "score", "low": 0, "high": 5}],
            "model": {
                "fusion": {"name": "siamese", "params": {"left": "s1", "right": "s2"}},
                "head": {"name": "regression", "params": {"bounded": True}},
            },
            "training": {
                "max_epochs": 25,
                "batch_size": 32,
                "lr": 0.03,
                "lr_multipliers": {"head": 10},
                "weight_decay": 0.0,
                "standardize_features": False,
                "early_stopping": {"monitor": "val_srcc", "patience": 25},
            },
        }
    )
    fs, y = _pairs(600, 0)
    test_fs, test_y = _pairs(300, 1)
    member = fit_member(recipe, fs, y[:, None], np.arange(500), np.arange(500, 600), seed=0, log_dir=tmp_path)
    trained = spearmanr(member.predict(test_fs).mean[:, 0], test_y)[0]
    raw = spearmanr(numpy_cosine(test_fs.pooled["s1"], test_fs.pooled["s2"]), test_y)[0]
    assert raw < 0.3 and trained > 0.8, (trained, raw)


def test_lr_multipliers_make_parameter_groups():
    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = torch.nn.ModuleDict({"fusion": torch.nn.Linear(2, 2), "head": torch.nn.Linear(2, 1)})
            self.extra = torch.nn.Linear(1, 1)

    w = Wrapper()
    w.model["fusion"].bias.requires_grad_(False)
    groups = parameter_groups(w, 0.01, {"head": 100.0})
    by_lr = {round(g["lr"], 9): {id(p) for p in g["params"]} for g in groups}
    assert by_lr[1.0] == {id(p) for p in w.model["head"].parameters()}
    assert by_lr[0.01] == {id(w.model["fusion"].weight), id(w.extra.weight), id(w.extra.bias)}
    # without multipliers: one group holding every trainable parameter
    (only,) = parameter_groups(w, 0.01, {})
    assert len(only["params"]) == 5 and only["lr"] == 0.01


@pytest.mark.parametrize(
    "value, match", [({"head": 0}, "expected positive numbers"), ({"trunk": 2}, "'fusion' or 'head'")]
)
def test_lr_multipliers_are_checked(value, match):
    with pytest.raises(ConfigError, match=match):
        load_recipe({"training": {"lr_multipliers": value}})


def test_standardize_together_shares_one_set_of_statistics():
    from scorecast.models.datasets import FeatureScaler

    rng = np.random.default_rng(4)
    a, b, c = rng.normal(3, 2, (20, 4)), rng.normal(-1, 0.5, (20, 4)), rng.normal(5, 3, (20, 2))
    fs = FeatureSet([f"i{k}" for k in range(20)], {"a": a, "b": b, "c": c})
    scaler = FeatureScaler.fit(fs, [["a", "b"]])
    stacked = np.vstack([a, b])
    for name in ("a", "b"):
        np.testing.assert_allclose(scaler.mean[name], stacked.mean(0), rtol=1e-5)
        np.testing.assert_allclose(scaler.std[name], stacked.std(0), rtol=1e-5)
    np.testing.assert_allclose(scaler.mean["c"], c.mean(0), rtol=1e-5)  # outside any group: its own
    np.testing.assert_allclose(scaler.std["c"], c.std(0), rtol=1e-5)
    with pytest.raises(ConfigError, match="not among the pooled features"):
        FeatureScaler.fit(fs, [["a", "zz"]])
    with pytest.raises(ConfigError, match="of one size"):
        FeatureScaler.fit(fs, [["a", "c"]])


def test_standardize_skip_leaves_those_features_raw():
    """training.standardize_skip: no statistics for the named features, so they pass through unchanged
    (an L2-normalised embedding's raw cosine stays the measure); the others are standardised as before."""
    from scorecast.models.datasets import FeatureScaler

    rng = np.random.default_rng(6)
    a, b, c = rng.normal(3, 2, (20, 4)), rng.normal(-1, 0.5, (20, 4)), rng.normal(5, 3, (20, 2))
    fs = FeatureSet([f"i{k}" for k in range(20)], {"a": a, "b": b, "c": c})
    scaler = FeatureScaler.fit(fs, [], skip=["a", "b"])
    assert set(scaler.mean) == {"c"}
    out = scaler.transform(fs)
    np.testing.assert_allclose(out.pooled["a"], a.astype(np.float32))
    np.testing.assert_allclose(out.pooled["b"], b.astype(np.float32))
    np.testing.assert_allclose(out.pooled["c"], (c - c.mean(0)) / c.std(0), rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match="standardize_skip: feature\\(s\\) zz are not among"):
        FeatureScaler.fit(fs, [], skip=["zz"])
    with pytest.raises(ConfigError, match="standardize_skip: expected features not also in standardize_together"):
        load_recipe(
            {
                "targets": [{"name": "score"}],
                "training": {"standardize_together": [["a", "b"]], "standardize_skip": ["a"]},
            }
        )


@pytest.mark.parametrize("groups", [[["a"]], [["a", "b"], ["b", "c"]]])
def test_standardize_together_groups_are_checked(groups):
    with pytest.raises(ConfigError, match="standardize_together"):
        load_recipe({"targets": [{"name": "score"}], "training": {"standardize_together": groups}})


def test_siamese_on_jointly_standardised_pairs_ranks_as_their_joint_z_cosine(tmp_path):
    """adapter none + standardize_together: the member's scores are an increasing affine map of the cosine of
    the two sides z-scored with the training items' pooled statistics (a numpy computation)."""
    rng = np.random.default_rng(5)
    n = 120
    a = rng.normal(2, 1.5, (n, 6))
    b = 0.6 * a + rng.normal(1, 1, (n, 6))  # the second side is shifted: own-statistics scaling would hide it
    fs = FeatureSet([f"p{k}" for k in range(n)], {"a": a.astype(np.float32), "b": b.astype(np.float32)})
    both = np.vstack([a[:100], b[:100]])
    mu, sd = both.mean(0), both.std(0)
    ref = numpy_cosine((a - mu) / sd, (b - mu) / sd)
    y = 1 + 4 * (ref - ref.min()) / (ref.max() - ref.min())
    recipe = load_recipe(
        {
            "targets": [{"name": "score", "low": 1, "high": 5}],
            "model": {"fusion": {"name": "siamese", "params": {"adapter": "none"}}, "head": {"name": "regression"}},
            "training": {
                "max_epochs": 2,
                "batch_size": 32,
                "calibrate_head": True,
                "standardize_together": [["a", "b"]],
                "early_stopping": None,
            },
        }
    )
    member = fit_member(recipe, fs, y[:, None], np.arange(100), np.arange(100, n), seed=0, log_dir=tmp_path)
    pred = member.predict(fs).mean[:, 0]
    slope = np.polyfit(ref, pred, 1)[0]
    assert slope > 0 and np.corrcoef(ref, pred)[0, 1] > 0.9999


def test_more_pairs_and_extra_give_each_pairs_cosine_then_the_extra_features():
    rng = np.random.default_rng(3)
    x = {"s1": rng.normal(size=(6, 16)), "s2": rng.normal(size=(6, 16)), "w1": rng.normal(size=(6, 5))}
    x["w2"], x["mos"] = rng.normal(size=(6, 5)), rng.normal(size=(6, 2))
    shapes = {k: FeatureShape(v.shape[1]) for k, v in x.items()}
    fusion = FUSIONS.build(
        "siamese", inputs=shapes, adapter="low-rank", rank=2, more_pairs=[["w1", "w2"]], extra=["mos"]
    )
    assert fusion.out_dim == 1 + 1 + 2 and len(fusion.more_adapters) == 1
    out = fusion({k: torch.tensor(v, dtype=torch.float32) for k, v in x.items()}).detach().numpy()
    np.testing.assert_allclose(out[:, 0], numpy_cosine(x["s1"], x["s2"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[:, 1], numpy_cosine(x["w1"], x["w2"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[:, 2:], x["mos"], rtol=1e-6)
    # a single pair keeps its old parameter names: bundles saved before more_pairs still load
    single = FUSIONS.build("siamese", inputs={"s1": shapes["s1"], "s2": shapes["s2"]}, adapter="linear")
    assert set(single.state_dict()) == {"adapter.delta.weight"}
