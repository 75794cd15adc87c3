"""SimCSE adaptation of a tiny sentence-transformers model: a new folder, new embeddings, own identity."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scorecast.errors import ConfigError, DataError
from tiny_models import make_tiny_bert, make_tiny_sentence_transformer

WORDS = "the quick brown fox jumps over lazy dog good bad great poor grammar speech music sound".split()


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, 4 + i % 5)) for i in range(n)]


@pytest.fixture(scope="module")
def st_model(tmp_path_factory):
    return make_tiny_sentence_transformer(tmp_path_factory.mktemp("st") / "tiny-st")


@pytest.fixture(scope="module")
def adapted(st_model, tmp_path_factory):
    from scorecast.adapt.simcse import SimCSEConfig, adapt_simcse

    texts = _texts(48) + [None, "", _texts(1)[0]]  # blanks and a duplicate are dropped
    out = tmp_path_factory.mktemp("adapted") / "st-simcse"
    cfg = SimCSEConfig(epochs=3, batch_size=16, lr=2e-3, dropout=0.1, seed=1)
    return adapt_simcse(st_model, texts, out, cfg, field="text.response"), texts, cfg


def test_adapted_folder_loads_and_embeds_differently(st_model, adapted):
    from scorecast.encoders.sentence import SentenceEncoder

    folder, texts, _cfg = adapted
    probe = _texts(6, seed=9)
    before = np.stack([e.pooled for e in SentenceEncoder(str(st_model)).encode_batch(probe)])
    after_enc = SentenceEncoder(str(folder))
    after = np.stack([e.pooled for e in after_enc.encode_batch(probe)])
    assert after.shape == before.shape and np.isfinite(after).all()
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, rtol=1e-5)  # still normalised
    # the sentence encoder built on the adapted folder has another cache identity
    assert after_enc.identity_hash != SentenceEncoder(str(st_model)).identity_hash


def test_adaptation_record_names_source_settings_and_data(st_model, adapted):
    from scorecast.adapt.common import ADAPTATION_FILE, hash_json, hash_texts, read_adaptation
    from scorecast.adapt.simcse import collect_texts

    folder, texts, cfg = adapted
    record = read_adaptation(folder)
    assert record == json.loads((folder / ADAPTATION_FILE).read_text())
    assert record["method"] == "simcse" and record["field"] == "text.response"
    assert record["source"] == str(st_model.resolve())
    assert record["config"] == cfg.model_dump(mode="json")
    unique = collect_texts(texts)
    assert len(unique) == 48 and record["num_texts"] == 48
    assert record["data_hash"] == hash_texts(unique)
    assert record["steps"] == 3 * 3  # 48 texts / 16 per batch, 3 epochs
    first, last = record["loss_first_last"]
    assert last < first  # the contrastive objective went down
    body = {k: v for k, v in record.items() if k != "adaptation_hash"}
    assert record["adaptation_hash"] == hash_json(body)[:16]
    assert read_adaptation(st_model) is None


def test_other_data_gives_another_identity(st_model, adapted, tmp_path):
    from scorecast.adapt.common import read_adaptation
    from scorecast.adapt.simcse import adapt_simcse

    folder, _texts_used, cfg = adapted
    other = adapt_simcse(st_model, _texts(20, seed=3), tmp_path / "other", cfg.model_copy(update={"epochs": 1}))
    assert read_adaptation(other)["adaptation_hash"] != read_adaptation(folder)["adaptation_hash"]
    assert read_adaptation(other)["data_hash"] != read_adaptation(folder)["data_hash"]


def test_simcse_errors_and_warnings(st_model, tmp_path):
    from scorecast.adapt.simcse import SimCSEConfig, adapt_simcse, simcse_config

    with pytest.raises(DataError, match="at least 2 distinct non-empty texts in text.a, got 1"):
        adapt_simcse(st_model, ["same", "same ", None], tmp_path / "x", field="text.a")
    bert = make_tiny_bert(tmp_path / "bert")
    with pytest.raises(ConfigError, match="expected a sentence-transformers folder"):
        adapt_simcse(bert, _texts(4), tmp_path / "y")
    with pytest.raises(ConfigError, match="expected a new folder, got the source model's folder"):
        adapt_simcse(st_model, _texts(4), st_model)
    with pytest.raises(ConfigError, match=r"SimCSE settings: batch_size: .*greater than or equal to 2.*\(got 1\)"):
        simcse_config(batch_size=1)
    # the tiny model has no dropout: both views coincide, which is worth a warning
    with pytest.warns(UserWarning, match="no active dropout"):
        adapt_simcse(st_model, _texts(4), tmp_path / "z", SimCSEConfig(max_steps=1, batch_size=4))
