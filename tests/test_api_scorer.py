"""The Python API: fit in-process, predict from every input form, save/load round trip, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import scorecast
from scorecast.api import NotFittedError, PredictionResult, Scorer
from scorecast.errors import BundleError, ConfigError, DataError
from test_predict_support import AUDIO_RECIPE, audio_bundle, text_items, text_scorer, tone

CAPTIONS = ["a cat sat on the mat", "the dog sang", "red bird under a green tree", "loud"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    return text_scorer(tmp_path_factory)


def test_fit_then_save_then_load_predicts_identically(fitted, tmp_path):
    before = fitted.predict(text=CAPTIONS)
    assert isinstance(before, PredictionResult) and before.mean.shape == (4, 2) and before.std.shape == (4, 2)
    saved = fitted.save(tmp_path / "scorer")
    after = scorecast.load(saved, cache=False).predict(text=CAPTIONS)
    np.testing.assert_array_equal(before.mean, after.mean)
    np.testing.assert_array_equal(before.std, after.std)
    assert after.ids == ["0", "1", "2", "3"]


def test_every_text_form_gives_the_same_scores(fitted):
    as_list = fitted.predict(text=CAPTIONS, ids=list("abcd"))
    as_dicts = fitted.predict(text=[{"caption": c} for c in CAPTIONS])
    as_columns = fitted.predict(text={"caption": CAPTIONS})
    as_items = fitted.predict([it for it in text_items(4, seed=9)])
    np.testing.assert_array_equal(as_list.mean, as_dicts.mean)
    np.testing.assert_array_equal(as_list.mean, as_columns.mean)
    assert as_list.ids == list("abcd") and as_items.ids == [f"t{i:03d}" for i in range(4)]


def test_an_item_alone_scores_as_inside_a_batch(fitted):
    together = fitted.predict(text=CAPTIONS)
    alone = np.concatenate([fitted.predict(text=[c]).mean for c in CAPTIONS])
    np.testing.assert_allclose(alone, together.mean, atol=1e-5)


def test_scores_are_clipped_to_each_target_range(fitted, monkeypatch):
    texts = ["a " * 200, "", "zzzz zzzz zzzz"]
    # push the members' raw scores far outside both ranges (MI 1-5, TA 0-10): only clipping brings them back
    for member in fitted.bundle_.members:
        original = member.predict

        def shifted(features, *a, _orig=original, **k):
            out = _orig(features, *a, **k)
            out.mean = out.mean + np.array([[-50.0, 50.0]]) * np.sign(np.arange(len(out.mean)) - 0.5)[:, None]
            return out

        monkeypatch.setattr(member, "predict", shifted)
    r = fitted.predict(text=texts)
    np.testing.assert_array_equal(r["MI"], [5.0, 1.0, 1.0])
    np.testing.assert_array_equal(r["TA"], [0.0, 10.0, 10.0])


def test_result_helpers(fitted):
    r = fitted.predict(text=CAPTIONS[:2], ids=["x", "y"])
    frame = r.to_frame()
    assert list(frame.columns) == ["id", "MI", "TA", "std.MI", "std.TA", "flags"]
    np.testing.assert_array_equal(frame["TA"].to_numpy(), r.scores["TA"])
    np.testing.assert_array_equal(r.spreads["MI"], r.std[:, 0])
    assert r.to_records()[1]["id"] == "y" and set(r.to_records()[1]["std"]) == {"MI", "TA"}
    with pytest.raises(KeyError, match="unknown target 'nope'"):
        r["nope"]


def test_bad_inputs_are_refused_with_what_was_expected(fitted):
    with pytest.raises(ConfigError, match="got a single string; wrap it in"):
        fitted.predict(text="a cat")
    with pytest.raises(
        DataError,
        match="item '0': expected text 'caption'; got no text field\\(s\\) caption; unknown text field\\(s\\) title",
    ):
        fitted.predict(text=[{"title": "x"}])
    with pytest.raises(DataError, match=r"expected text 'caption'; got audio, which this scorer does not use"):
        fitted.predict(text=["x"], audio=[(np.zeros(160, np.float32), 16000)])
    with pytest.raises(DataError, match="expected 2 ids"):
        fitted.predict(text=["a", "b"], ids=["only-one"])
    with pytest.raises(ConfigError, match="expected inputs \\(text 'caption'\\), got none"):
        fitted.predict()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        Scorer(AUDIO_RECIPE).predict(audio=["x.wav"])


def test_save_refuses_to_overwrite_unless_asked(fitted, tmp_path):
    target = tmp_path / "s"
    fitted.save(target)
    with pytest.raises(ConfigError, match="exists; expected a new folder"):
        fitted.save(target)
    fitted.save(target, overwrite=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a bundle; refusing"):
        fitted.save(tmp_path / "other", overwrite=True)


def test_altered_or_truncated_weights_are_refused(fitted, tmp_path):
    saved = fitted.save(tmp_path / "s")
    weights = saved / "members" / "00.safetensors"
    weights.write_bytes(weights.read_bytes()[:-16])
    with pytest.raises(BundleError, match="members/00.safetensors was altered or truncated"):
        scorecast.load(saved)


def test_audio_paths_arrays_and_pairs_score_the_same(tmp_path_factory, tmp_path):
    scorer = scorecast.load(audio_bundle(tmp_path_factory), cache_dir=tmp_path / "cache")
    wave = tone(1.2, 260, seed=5)
    path = tmp_path / "clip.wav"
    sf.write(path, wave, 16000, subtype="FLOAT")
    r = scorer.predict(audio=[str(path), (wave, 16000), wave, (np.stack([wave, wave]), 16000)], sample_rate=16000)
    np.testing.assert_allclose(r.mean[:, 0], np.full(4, r.mean[0, 0]), atol=1e-5)
    assert r.std is None
    entries = sorted(tmp_path.joinpath("cache").rglob("*.emb"))
    scorer.predict(audio=[(wave, 16000)])  # an array already seen: a cache hit, nothing new written
    assert sorted(tmp_path.joinpath("cache").rglob("*.emb")) == entries
    assert len(entries) == 3  # file bytes, the mono array, the stereo array
    with pytest.raises(ConfigError, match="a bare array needs its rate"):
        scorer.predict(audio=[wave])
    with pytest.raises(ConfigError, match="expected a list"):
        scorer.predict(audio=str(path))


def test_missing_local_encoder_folder_is_named_and_can_be_pointed_elsewhere(fitted, tmp_path):
    from scorecast.encoders.sentence import SentenceEncoder, default_model_dir

    moved = tmp_path / "now" / "minilm"
    moved.parent.mkdir()
    moved.symlink_to(default_model_dir(), target_is_directory=True)
    old = str(tmp_path / "then" / "minilm")
    saved = fitted.save(tmp_path / "s")
    manifest = json.loads((saved / "scorecast.json").read_text())
    spec = {"name": "sentence", "input": "text.caption", "alias": "toy-caption:text.caption", "params": {"model": old}}
    manifest["recipe"]["encoders"] = [spec]
    identity = SentenceEncoder(model=str(moved)).identity()
    manifest["encoders"][0]["identity"] = {**identity, "model": old}
    (saved / "scorecast.json").write_text(json.dumps(manifest))
    with pytest.raises(
        BundleError,
        match=f"expects the local model folder {old} \\(params.model\\), which does not exist here; .*--encoder-path",
    ):
        scorecast.load(saved)
    from scorecast.inference.bundle import load_bundle
    from scorecast.inference.predictor import Predictor

    predictor = Predictor(load_bundle(saved), encoder_paths={str(tmp_path / "then"): str(tmp_path / "now")})
    assert predictor.specs[0].params["model"] == str(moved)
    manifest["encoders"][0]["identity"]["normalize"] = False
    (saved / "scorecast.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="normalize: bundle has False, got True"):
        Predictor(load_bundle(saved), encoder_paths={str(tmp_path / "then"): str(tmp_path / "now")})


def test_sklearn_params(fitted):
    params = fitted.get_params()
    assert params["recipe"] is fitted.recipe and params["cache"] is True
    clone = Scorer(**params)
    assert "not fitted" in repr(clone)
    with pytest.raises(ConfigError, match="unknown parameter 'epochs'"):
        clone.set_params(epochs=3)
