"""asr (tiny Whisper, pocketsphinx, the transcript store) and lookup (pass-through, tables)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
import tiny_models  # noqa: E402
from scorecast.data.items import Item  # noqa: E402
from scorecast.demo.synth import make_voices, synth_speech  # noqa: E402
from scorecast.encoders import ENCODERS  # noqa: E402
from scorecast.encoders.asr import TranscriptStore, transcribe_items  # noqa: E402
from scorecast.errors import ConfigError, DataError  # noqa: E402


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory) -> Path:
    return tiny_models.make_tiny_whisper(tmp_path_factory.mktemp("tiny") / "whisper")


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return synth_speech(make_voices(1, seed=0)[0], duration_s=2.0, seed=0)


# ------------------------------------------------------------------------------------------ asr


def test_whisper_asr_returns_text_and_is_batch_independent(whisper_dir, clip):
    asr = ENCODERS.build("asr", model=str(whisper_dir), language="en", max_new_tokens=8)
    assert asr.backend_name == "whisper" and asr.identity()["backend"] == "whisper"
    long = np.concatenate([clip] * 16)  # 32 s: two 30 s chunks joined
    texts = asr.transcribe_batch([clip, long])
    assert all(isinstance(t, str) and t for t in texts)
    assert texts[0] == asr.transcribe_batch([clip])[0]
    assert len(texts[1].split()) > len(texts[0].split())
    other = ENCODERS.build("asr", model=str(whisper_dir), language="de", max_new_tokens=8)
    assert other.identity_hash != asr.identity_hash
    with pytest.raises(ConfigError, match="produces text, not vectors"):
        asr.encode_batch([clip])
    with pytest.raises(ConfigError, match="needs params.model"):
        ENCODERS.build("asr", backend="whisper")


def test_pocketsphinx_asr_returns_a_string(clip):
    asr = ENCODERS.build("asr")
    assert asr.backend_name == "pocketsphinx"
    (text,) = asr.transcribe_batch([clip])
    assert isinstance(text, str)  # synthetic speech mostly decodes to nothing or noise words
    assert asr.identity()["package"].startswith("pocketsphinx==")
    with pytest.raises(DataError, match="expected a non-empty mono waveform for input 0"):
        asr.transcribe_batch([np.zeros(0, np.float32)])


def test_transcribe_items_fills_texts_and_caches(whisper_dir, clip, tmp_path, monkeypatch):
    paths = []
    for i, x in enumerate([clip, clip[:16000], clip]):  # the third has the same bytes as the first
        p = tmp_path / f"a{i}.wav"
        sf.write(p, x, 16000)
        paths.append(str(p))
    items = [Item(id=f"i{i}", audio=p) for i, p in enumerate(paths)]
    params = {"model": str(whisper_dir), "language": "en", "max_new_tokens": 6, "as_field": "asr_text"}
    got = transcribe_items(items, params, cache=tmp_path / "cache")
    assert set(got) == {"i0", "i1", "i2"} and got["i0"] == got["i2"]
    assert all(item.texts["asr_text"] == got[item.id] for item in items)
    store = next((tmp_path / "cache" / "transcripts").glob("*.jsonl"))
    assert len(store.read_text().splitlines()) == 2  # the same audio bytes transcribed once

    # a second run reads the store and never calls the model
    from scorecast.encoders import asr as asr_module

    def boom(self, waves):
        raise AssertionError("transcribed again")

    monkeypatch.setattr(asr_module.WhisperASR, "transcribe", boom)
    fresh = [Item(id=f"j{i}", audio=p) for i, p in enumerate(paths)]
    assert transcribe_items(fresh, params, cache=tmp_path / "cache") == {f"j{i}": got[f"i{i}"] for i in range(3)}
    monkeypatch.undo()

    # a truncated last line (a killed writer) is ignored and that audio transcribed again
    lines = store.read_text().splitlines()
    store.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    again = transcribe_items([Item(id="k", audio=paths[1])], params, cache=tmp_path / "cache")
    assert again == {"k": got["i1"]}
    with pytest.raises(DataError, match="item 'x' has no audio"):
        transcribe_items([Item(id="x")], params)


def test_transcript_store_appends_are_whole_lines(tmp_path):
    store = TranscriptStore(tmp_path, {"name": "asr"}, "abc")
    store.append("h1", "hello")
    store.append("h2", 'quote " and\nnewline')
    assert store.load() == {"h1": "hello", "h2": 'quote " and\nnewline'}
    assert json.loads((tmp_path / "transcripts" / "abc.identity.json").read_text()) == {"name": "asr"}


# --------------------------------------------------------------------------------------- lookup


def test_lookup_passes_vectors_through():
    enc = ENCODERS.build("lookup", dim=3)
    assert enc.modality == "vector"
    out = enc.encode_batch([np.array([1, 2, 3]), [0.5, 0.0, -1.0]])
    np.testing.assert_array_equal(out[1].pooled, np.array([0.5, 0.0, -1.0], np.float32))
    assert out[0].pooled.dtype == np.float32
    with pytest.raises(DataError, match="expected a vector of length 3 for input 0, got 2"):
        enc.encode_batch([[1.0, 2.0]])
    with pytest.raises(DataError, match="input 0 holds non-finite values"):
        enc.encode_batch([[1.0, np.nan, 2.0]])


def test_lookup_da5401_metric_embeddings(shared_data):
    from conftest import require_data

    folder = require_data(shared_data, "da5401-partial")
    table, names = folder / "metric_name_embeddings.npy", folder / "metric_names.json"
    enc = ENCODERS.build("lookup", table=str(table), names=str(names))
    keys = json.loads(names.read_text())
    matrix = np.load(table)
    out = enc.encode_batch([keys[7], " " + keys[0] + " "])
    np.testing.assert_array_equal(out[0].pooled, matrix[7])
    np.testing.assert_array_equal(out[1].pooled, matrix[0])
    assert enc.identity()["dim"] == 768 and enc.modality == "text"
    with pytest.raises(
        DataError, match=r"unknown key 'inclusivity/gender_inclusiveness'.*closest: 'inclusivity/gender_inclusivity'"
    ):
        enc.encode_batch(["inclusivity/gender_inclusiveness"])


def test_lookup_csv_table_and_errors(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("name,a,b\nAlpha,1,2\nbeta,3,4\n")
    enc = ENCODERS.build("lookup", table=str(csv), lowercase=True)
    np.testing.assert_array_equal(enc.encode_batch(["ALPHA"])[0].pooled, [1.0, 2.0])
    with pytest.raises(DataError, match=r"unknown key 'gamma' \(2 keys, e.g. 'alpha', 'beta'\)"):
        enc.encode_batch(["gamma"])
    ident = enc.identity()
    csv.write_text("name,a,b\nAlpha,1,2\nbeta,3,5\n")
    assert ENCODERS.build("lookup", table=str(csv), lowercase=True).identity() != ident  # content hashed
    dup = tmp_path / "dup.csv"
    dup.write_text("k,a\nx,1\nx,2\n")
    with pytest.raises(DataError, match="key 'x' appears twice"):
        ENCODERS.build("lookup", table=str(dup))
    npy = tmp_path / "m.npy"
    np.save(npy, np.zeros((3, 2), np.float32))
    with pytest.raises(ConfigError, match="expected params.names"):
        ENCODERS.build("lookup", table=str(npy))
    names = tmp_path / "n.json"
    names.write_text(json.dumps(["a", "b"]))
    with pytest.raises(DataError, match=r"expected a \(2, D\) matrix"):
        ENCODERS.build("lookup", table=str(npy), names=str(names))
    text = tmp_path / "t.txt"
    text.write_text("x")
    with pytest.raises(ConfigError, match="expected a .npy"):
        ENCODERS.build("lookup", table=str(text))
