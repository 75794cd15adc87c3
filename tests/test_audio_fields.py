"""More than one audio input per item: named audio fields (``audio.generated``, ``audio.reference``)
through the readers (table, yourtts, mushra's reference), the encoder pipeline and its cache, the
siamese and bilinear fusions, and the predictor's input check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline_toys import register_toys, unregister_toys
from scorecast.cache.store import EmbeddingCache
from scorecast.config import EncoderSpec
from scorecast.data.items import Item, ItemSet
from scorecast.data.readers import READERS
from scorecast.encoders.pipeline import build_features
from scorecast.errors import ConfigError, DataError

SR = 16000


@pytest.fixture(autouse=True)
def toys():
    register_toys()
    yield
    unregister_toys()


def write_tone(path: Path, freq: float, noise: float, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    t = np.arange(SR // 2) / SR
    wave = 0.3 * np.sin(2 * np.pi * freq * t) + noise * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave.astype(np.float32), SR)
    return str(path)


def pair_items(folder: Path, n: int = 24) -> ItemSet:
    """Pairs of (generated, reference) tones: the score falls with the frequency gap between them."""
    items = []
    for i in range(n):
        f_ref = 150 + 20 * (i % 6)
        gap = 15 * (i % 5)
        ref = write_tone(folder / f"ref{i % 6}.wav", f_ref, 0.01)
        gen = write_tone(folder / f"gen{i:02d}.wav", f_ref + gap, 0.01 + 0.002 * i, seed=100 + i)
        score = float(np.clip(5 - gap / 15, 1, 5))
        items.append(Item(id=f"p{i:02d}", audios={"generated": gen, "reference": ref}, targets={"score": score}))
    return ItemSet(items, "pairs", ["score"])


def test_table_reader_named_audio_fields_in_long_format(tmp_path):
    a = write_tone(tmp_path / "a.wav", 200, 0.01)
    b = write_tone(tmp_path / "b.wav", 300, 0.01)
    (tmp_path / "t.csv").write_text("id,gen,ref,score,who\nx,a.wav,b.wav,4,L1\nx,a.wav,b.wav,2,L2\n")
    reader = READERS.build("table", audio={"generated": "gen", "reference": "ref"}, targets="score", rater="who")
    items = reader.read(tmp_path / "t.csv")
    assert items[0].audio is None
    assert items[0].audios == {"generated": a, "reference": b}
    assert items[0].targets["score"] == 3.0 and items[0].ratings["score"].raters == ["L1", "L2"]
    (tmp_path / "bad.csv").write_text("id,gen,ref,score\nx,a.wav,missing.wav,4\n")
    with pytest.raises(DataError, match=r"row 2.*audio file does not exist: .*missing.wav \(audio field 'reference'\)"):
        READERS.build("table", audio={"generated": "gen", "reference": "ref"}, targets="score").read(
            tmp_path / "bad.csv"
        )


def yourtts_folder(root: Path) -> Path:
    """A miniature of the YourTTS layout: ratings/ beside audio/, .wav named, .flac on disk."""
    for rel in ("Exp.2/model/S/11995_25", "GT/MLS-PT/11995/11995_1_2", "reference/11995_ref"):
        p = root / "audio" / f"{rel}.flac"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, np.zeros(1600, np.float32), SR, format="FLAC")
    (root / "ratings").mkdir()
    (root / "ratings" / "nat.csv").write_text(
        "audio_path,score,evaluator_id\n"
        "Exp.2/model/S/11995_25.wav,2.0,7\n"
        "Exp.2/model/S/11995_25.wav,4.0,8\n"
        "GT/MLS-PT/11995/11995_1_2.wav,5.0,7\n"
        "Exp.2/model/S/12000_1.wav,3.0,7\n"
    )
    (root / "ratings" / "sim.csv").write_text(
        'audio_path,score,evaluator_id\n"Exp.2/model/S/11995_25.wav, reference/11995_ref.wav",3.0,9\n'
    )
    return root


def test_yourtts_reader_clips_and_pairs(tmp_path):
    root = yourtts_folder(tmp_path)
    with pytest.warns(UserWarning, match=r"left out 1 row"):
        nat = READERS.build("yourtts").read(root / "ratings" / "nat.csv")
    assert nat.ids == ["Exp.2/model/S/11995_25.wav", "GT/MLS-PT/11995/11995_1_2.wav"]
    first, gt = nat[0], nat[1]
    assert first.audio.endswith("audio/Exp.2/model/S/11995_25.flac")
    assert first.targets["score"] == 3.0 and first.ratings["score"].raters == ["7", "8"]
    assert first.group == "Exp.2/model/S" and gt.group == "GT/MLS-PT"
    assert first.meta["speaker"] == gt.meta["speaker"] == "11995"
    assert "12000_1.wav" in nat.skipped[0]
    sim = READERS.build("yourtts").read(root / "ratings" / "sim.csv")
    assert sim[0].audio is None and sorted(sim[0].audios) == ["generated", "reference"]
    assert sim[0].audios["reference"].endswith("reference/11995_ref.flac")
    with pytest.raises(DataError, match=r"nat.csv.*row 5.*audio file does not exist: .*12000_1.wav"):
        READERS.build("yourtts", require_audio=True).read(root / "ratings" / "nat.csv")


def test_mushra_reference_field(tmp_path):
    write_tone(tmp_path / "audio" / "stim_01" / "x.wav", 200, 0.01)
    write_tone(tmp_path / "audio" / "stim_01" / "ref.wav", 200, 0.0)
    (tmp_path / "r.csv").write_text(
        'signal,condition,ratings,participant_ids,file\ns1,codec,"[40, 60]","[1, 2]",stim_01/x.wav\n'
    )
    items = READERS.build("mushra", reference="ref.flac").read(tmp_path / "r.csv")
    assert items[0].audios == {"reference": str(tmp_path / "audio" / "stim_01" / "ref.wav")}
    with pytest.raises(DataError, match=r"row 2.*reference 'orig.wav' not found beside"):
        READERS.build("mushra", reference="orig.wav").read(tmp_path / "r.csv")


def test_pipeline_encodes_named_audio_fields_through_the_cache(tmp_path):
    items = pair_items(tmp_path / "clips", 8)
    counter = tmp_path / "count.txt"
    specs = [
        EncoderSpec(name="toy-audio", input="audio.generated", alias="gen", params={"counter": str(counter)}),
        EncoderSpec(name="toy-audio", input="audio.reference", alias="ref", params={"counter": str(counter)}),
    ]
    cache = EmbeddingCache(tmp_path / "cache")
    fs = build_features(items, specs, cache, progress=False)
    assert fs.dims() == {"gen": 8, "ref": 8}
    # 8 generated clips + 6 distinct reference files: the cache keys by content, so repeats are hits
    assert len(counter.read_text().splitlines()) == 8 + 6
    again = build_features(items, specs, cache, progress=False)
    assert len(counter.read_text().splitlines()) == 14
    np.testing.assert_array_equal(again.pooled["ref"], fs.pooled["ref"])
    assert not np.allclose(fs.pooled["gen"], fs.pooled["ref"])
    lacking = [Item(id="solo", audios={"generated": items[0].audios["generated"]})]
    with pytest.raises(DataError, match=r"item 'solo' has no audio field 'reference' \(it has: generated\)"):
        build_features(lacking, specs[1:], cache, progress=False)


def test_encoder_input_names_the_audio_fields():
    assert EncoderSpec(name="x", input="audio.reference").reads_audio
    with pytest.raises(
        Exception, match=r"expected 'audio', 'audio.<field>', 'text.<field>' or 'vector.<field>', got 'audio.'"
    ):
        EncoderSpec(name="x", input="audio.")


@pytest.mark.parametrize("fusion", ["siamese", "bilinear"])
def test_pair_fusions_train_on_two_audio_inputs_and_predict(tmp_path, fusion):
    from scorecast.api import Scorer

    items = pair_items(tmp_path / "clips", 24)
    params = {"left": "gen", "right": "ref"}
    if fusion == "bilinear":
        params.update(dim=8, hidden=[8])
    recipe = {
        "targets": [{"name": "score", "low": 1, "high": 5}],
        "encoders": [
            {"name": "toy-audio", "input": "audio.generated", "alias": "gen"},
            {"name": "toy-audio", "input": "audio.reference", "alias": "ref"},
        ],
        "model": {"fusion": {"name": fusion, "params": params}, "head": {"name": "regression"}},
        "training": {"max_epochs": 3, "batch_size": 8, "early_stopping": None, "val_fraction": 0.0},
        "cv": {"folds": 2, "seeds": [0]},
        "evaluate": {"bootstrap": 10},
    }
    scorer = Scorer(recipe, cache_dir=tmp_path / "cache").fit(items, out_dir=tmp_path / "run")
    pred = scorer.predict(items.items[:3])
    assert pred.mean.shape == (3, 1) and np.isfinite(pred.mean).all()
    assert scorer.inputs.audios == ("generated", "reference") and not scorer.inputs.audio
    half = [Item(id="half", audios={"generated": items[0].audios["generated"]})]
    with pytest.raises((DataError, ConfigError), match=r"no audio field\(s\) reference"):
        scorer.predict(half)
