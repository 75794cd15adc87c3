"""The scorer bundle: identical predictions after a round trip, checksums, versions, encoder
identities, and no pickle anywhere on the loading path."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from ddp_script import base_recipe, make_dataset
from scorecast.config import load_recipe
from scorecast.errors import BundleError, DataError
from scorecast.inference.bundle import check_encoder_identity, load_bundle, save_bundle
from scorecast.inference.ensemble import Stacker
from scorecast.training.trainer import fit_member

IDENTITIES = {"a": {"name": "gen", "model": "/models/a", "layer": 6}, "b": {"name": "gen", "model": "/models/b"}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    items, fs = make_dataset(90)
    y = items.target_matrix(["score"])
    logs = tmp_path_factory.mktemp("logs")
    d = base_recipe(max_epochs=2)
    d["model"]["head"] = {"name": "heteroscedastic"}
    d["losses"] = [{"name": "gaussian-nll", "weight": 0.7}, {"name": "mse", "weight": 0.3}]
    neural = load_recipe(d)
    members = [fit_member(neural, fs, y, np.arange(60), np.arange(60, 90), seed=s, log_dir=logs) for s in (0, 1)]
    for head, params in (("ridge", {"alpha": 2.0}), ("svr", {}), ("lightgbm", {"num_boost_round": 20})):
        d2 = base_recipe()
        d2["model"]["head"] = {"name": head, "params": params}
        members.append(fit_member(load_recipe(d2), fs, y, np.arange(60), np.arange(0), log_dir=logs))
    return neural, fs, members


def _save(tmp_path, trained, **kw):
    recipe, fs, members = trained
    weights = np.array([0.3, 0.2, 0.2, 0.2, 0.1])
    metrics = {"targets": {"score": {"utterance": {"lcc": {"value": 0.9, "low": 0.85, "high": 0.93}}}}}
    path = save_bundle(tmp_path / "bundle", recipe, members, weights, IDENTITIES, fs.dims(), metrics=metrics, **kw)
    return path, weights


def test_round_trip_gives_identical_predictions(tmp_path, trained):
    recipe, fs, members = trained
    path, weights = _save(tmp_path, trained)
    bundle = load_bundle(path)
    for before, after in zip(members, bundle.members):
        p0, p1 = before.predict(fs), after.predict(fs)
        np.testing.assert_array_equal(p0.mean, p1.mean)
        if p0.std is not None:
            np.testing.assert_array_equal(p0.std, p1.std)
    assert bundle.members[0].predict(fs).std is not None  # the heteroscedastic head's spread survives
    pred = bundle.predict_features(fs)
    means = np.stack([m.predict(fs).mean for m in members])
    np.testing.assert_allclose(pred.mean, np.clip(np.tensordot(weights, means, axes=1), -3, 6))
    assert pred.std.shape == (90, 1) and np.isfinite(pred.std).all()
    assert bundle.target_names == ["score"] and bundle.recipe == recipe
    assert bundle.encoder_identities == IDENTITIES and bundle.feature_dims == {"a": 4, "b": 3}
    assert "| score | utterance | lcc | 0.9000 | [0.850, 0.930] |" in bundle.model_card
    manifest = json.loads((path / "scorecast.json").read_text())
    assert [m["kind"] for m in manifest["members"]] == ["neural", "neural", "estimator", "estimator", "estimator"]
    assert set(manifest["files"]) == {f"members/{i:02d}.safetensors" for i in range(5)} | {"MODEL_CARD.md"}


def test_stacker_round_trip(tmp_path, trained):
    _, fs, members = trained
    cols = np.stack([members[0].predict(fs).mean, members[2].predict(fs).mean], axis=1)
    stacker = Stacker.fit([[0, 1], [2, 3, 4]], cols, np.ones((90, 1)) + cols[:, 0])
    path, _ = _save(tmp_path, trained, stacker=stacker)
    bundle = load_bundle(path)
    expected = stacker.predict([m.predict(fs) for m in members]).mean
    np.testing.assert_allclose(bundle.predict_features(fs, clip=False).mean, expected)


def test_loading_never_unpickles(tmp_path, trained, monkeypatch):
    path, _ = _save(tmp_path, trained)

    def refuse(*args, **kwargs):
        raise AssertionError("loading a bundle must not unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    assert np.isfinite(load_bundle(path).predict_features(trained[1]).mean).all()


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_altered_weights_are_refused(tmp_path, trained, damage):
    path, _ = _save(tmp_path, trained)
    target = path / "members" / "01.safetensors"
    data = bytearray(target.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    target.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"members/01\.safetensors was altered or truncated"):
        load_bundle(path)


def test_missing_file_and_not_a_bundle(tmp_path, trained):
    path, _ = _save(tmp_path, trained)
    (path / "members" / "03.safetensors").unlink()
    with pytest.raises(BundleError, match=r"members/03\.safetensors is missing"):
        load_bundle(path)
    with pytest.raises(BundleError, match="expected scorecast.json"):
        load_bundle(tmp_path)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("format_version", 99, "format_version 99 is not supported"),
        ("scorecast_version", "7.0.0", "major versions must match"),
    ],
)
def test_version_checks(tmp_path, trained, key, value, message):
    path, _ = _save(tmp_path, trained)
    manifest = json.loads((path / "scorecast.json").read_text())
    manifest[key] = value
    (path / "scorecast.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=message):
        load_bundle(path)


def test_feature_mismatch_is_refused(tmp_path, trained):
    path, _ = _save(tmp_path, trained)
    bundle = load_bundle(path)
    _, fs, _ = trained
    with pytest.raises(DataError, match="scorer needs feature 'b'"):
        bundle.predict_features(type(fs)(fs.ids, {"a": fs.pooled["a"]}))


def test_check_encoder_identity_lists_what_differs():
    check_encoder_identity(IDENTITIES["a"], dict(IDENTITIES["a"]))
    actual = {"name": "gen", "model": "/elsewhere/a", "pooling": "mean"}
    with pytest.raises(BundleError) as info:
        check_encoder_identity(IDENTITIES["a"], actual)
    text = str(info.value)
    assert "model: bundle has '/models/a', got '/elsewhere/a'" in text
    assert (
        "layer: bundle has 6, got '(absent)'" in text
        and "pooling" in text
        and "name" not in text.split("differences:")[1]
    )


def test_rewriting_a_bundle_drops_old_members(tmp_path, trained):
    recipe, fs, members = trained
    path, _ = _save(tmp_path, trained)
    save_bundle(path, recipe, members[:2], [0.5, 0.5], IDENTITIES, fs.dims())
    assert sorted(p.name for p in (path / "members").iterdir()) == ["00.safetensors", "01.safetensors"]
    assert len(load_bundle(path).members) == 2
