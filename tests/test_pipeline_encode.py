"""encode_items / build_features with tiny test encoders: cache hits, resume, corruption, padding,
bad inputs, shards, worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline_toys import (
    CONSTRUCTED,
    InjectedFailure,
    ToyAudioEncoder,
    count,
    pids,
    register_toys,
    unregister_toys,
    write_tone,
)
from scorecast.cache.store import CacheCorruptionWarning, EmbeddingCache
from scorecast.config import EncoderSpec
from scorecast.data.items import Item
from scorecast.encoders.base import ENCODERS
from scorecast.encoders.pipeline import build_features, build_features_with_report, encode_items, parse_shard
from scorecast.errors import AudioError, ConfigError, DataError

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def toys():
    register_toys()
    yield
    unregister_toys()


@pytest.fixture
def audio_items(tmp_path) -> list[Item]:
    folder = tmp_path / "audio"
    folder.mkdir()
    return [
        Item(
            id=f"a{i}",
            audio=write_tone(folder / f"a{i}.wav", 150 + 40 * i, seconds=0.2 + 0.07 * i),
            texts={"t": f"clip number {i}"},
        )
        for i in range(12)
    ]


def audio_spec(counter: Path | None = None, **params) -> EncoderSpec:
    if counter is not None:
        params["counter"] = str(counter)
    return EncoderSpec(name="toy-audio", input="audio", sequence=True, params=params)


def text_spec(counter: Path | None = None, **params) -> EncoderSpec:
    if counter is not None:
        params["counter"] = str(counter)
    return EncoderSpec(name="toy-text", input="text.t", params=params)


def test_cache_hit_equals_fresh_encode_bit_for_bit(tmp_path, audio_items):
    counter = tmp_path / "calls"
    cache = EmbeddingCache(tmp_path / "cache")
    cold = encode_items(audio_items, audio_spec(counter), cache, batch_size=5, progress=False)
    assert (cold.encoded, cold.cached, count(counter)) == (12, 0, 12)
    warm = encode_items(audio_items, audio_spec(counter), EmbeddingCache(tmp_path / "cache"), progress=False)
    assert (warm.encoded, warm.cached, count(counter)) == (0, 12, 12)
    np.testing.assert_array_equal(warm.pooled, cold.pooled)
    for a, b in zip(warm.sequences, cold.sequences):
        np.testing.assert_array_equal(a, b)
    direct = ToyAudioEncoder().encode_batch([sf.read(it.audio, dtype="float32")[0] for it in audio_items])
    np.testing.assert_array_equal(cold.pooled, np.stack([d.pooled for d in direct]))
    assert cold.ids == [it.id for it in audio_items] and warm.identity == ToyAudioEncoder().identity()
    pooled, sequences = warm  # unpacks like the (pooled, sequences) pair
    assert pooled is warm.pooled and sequences is warm.sequences


def test_same_content_under_two_ids_is_encoded_once(tmp_path):
    counter = tmp_path / "calls"
    items = [Item(id=f"x{i}", texts={"t": "same text"}) for i in range(4)] + [Item(id="y", texts={"t": "other"})]
    res = encode_items(items, text_spec(counter), EmbeddingCache(tmp_path / "c"), progress=False)
    assert count(counter) == 2 and res.pooled.shape == (5, 32)
    np.testing.assert_array_equal(res.pooled[0], res.pooled[3])


def test_fully_cached_run_never_builds_an_encoder_that_knows_its_identity(tmp_path, audio_items):
    cache = EmbeddingCache(tmp_path / "c")
    encode_items(audio_items, text_spec(), cache, progress=False)
    before = CONSTRUCTED["toy-text"]
    res = encode_items(audio_items, text_spec(), cache, progress=False)
    assert CONSTRUCTED["toy-text"] == before and res.cached == 12
    cache.pack(res.identity_hash)
    res2 = encode_items(audio_items, text_spec(), EmbeddingCache(tmp_path / "c"), progress=False)
    assert CONSTRUCTED["toy-text"] == before
    np.testing.assert_array_equal(res.pooled, res2.pooled)


def test_identity_for_that_disagrees_with_the_built_encoder_is_an_error(tmp_path, audio_items, monkeypatch):
    from pipeline_toys import ToyTextEncoder

    monkeypatch.setattr(ToyTextEncoder, "identity_for", classmethod(lambda cls, **p: {"name": "toy-text", "dim": 99}))
    with pytest.raises(ConfigError, match="identity_for.*must agree"):
        encode_items(audio_items, text_spec(), EmbeddingCache(tmp_path / "c"), progress=False)


def test_failure_after_k_items_resumes_without_recomputing(tmp_path, audio_items):
    counter = tmp_path / "calls"
    cache = EmbeddingCache(tmp_path / "c")
    import pipeline_toys

    pipeline_toys._ENCODED_IN_PROCESS["n"] = 0
    with pytest.raises(InjectedFailure):
        encode_items(audio_items, audio_spec(counter, fail_after=8), cache, batch_size=4, workers=0, progress=False)
    assert count(counter) == 8  # two batches finished and were written before the failure
    res = encode_items(audio_items, audio_spec(counter), cache, batch_size=4, workers=0, progress=False)
    assert (res.cached, res.encoded, count(counter)) == (8, 4, 12)
    fresh = encode_items(audio_items, audio_spec(), EmbeddingCache(tmp_path / "fresh"), progress=False)
    np.testing.assert_array_equal(res.pooled, fresh.pooled)


KILLED_RUN = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from pipeline_toys import register_toys
    register_toys()
    from scorecast.cache.store import EmbeddingCache
    from scorecast.config import EncoderSpec
    from scorecast.data.items import Item
    from scorecast.encoders.pipeline import encode_items
    items = [Item(id=str(i), texts={"t": f"sentence {i}"}) for i in range(200)]
    spec = EncoderSpec(name="toy-text", input="text.t", params={"counter": sys.argv[3], "sleep": 0.05})
    encode_items(items, spec, EmbeddingCache(sys.argv[2]), batch_size=2, progress=False)
    """
)


def test_run_killed_with_sigkill_resumes_without_recomputing(tmp_path):
    counter, root = tmp_path / "calls", tmp_path / "c"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(TESTS), str(root), str(counter)])
    deadline = time.time() + 60
    while count(counter) < 20 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    cache = EmbeddingCache(root)
    assert cache.verify(remove=False).corrupt == []
    (ih,) = cache.identities()
    finished = sum(1 for _ in cache.iter_keys(ih))
    assert 0 < finished < 200 and finished <= count(counter)  # the last batch may be counted, not yet written
    before = count(counter)
    items = [Item(id=str(i), texts={"t": f"sentence {i}"}) for i in range(200)]
    res = encode_items(items, text_spec(counter), cache, batch_size=50, progress=False)
    assert res.cached == finished and res.encoded == 200 - finished
    assert count(counter) - before == 200 - finished
    fresh = encode_items(items, text_spec(), EmbeddingCache(tmp_path / "fresh"), progress=False)
    np.testing.assert_array_equal(res.pooled, fresh.pooled)


def test_corrupt_entry_is_recomputed_with_a_warning(tmp_path, audio_items):
    counter = tmp_path / "calls"
    cache = EmbeddingCache(tmp_path / "c")
    first = encode_items(audio_items, audio_spec(counter), cache, progress=False)
    victim = next(cache.iter_keys(first.identity_hash))
    path = cache.entry_path(first.identity_hash, victim)
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.warns(CacheCorruptionWarning, match="corrupt entry"):
        again = encode_items(audio_items, audio_spec(counter), cache, progress=False)
    assert (again.encoded, again.cached, count(counter)) == (1, 11, 13)
    np.testing.assert_array_equal(again.pooled, first.pooled)
    assert cache.verify().corrupt == []


def test_item_alone_equals_item_in_a_padded_batch(tmp_path, audio_items):
    one = encode_items(audio_items, audio_spec(), EmbeddingCache(tmp_path / "one"), batch_size=1, progress=False)
    many = encode_items(audio_items, audio_spec(), EmbeddingCache(tmp_path / "many"), batch_size=12, progress=False)
    np.testing.assert_array_equal(one.pooled, many.pooled)
    for a, b in zip(one.sequences, many.sequences):
        np.testing.assert_array_equal(a, b)
    enc = ToyAudioEncoder()
    short = np.sin(np.arange(3000) / 7).astype(np.float32)
    long = np.cos(np.arange(9000) / 3).astype(np.float32)
    alone = enc.encode_batch([short])[0].pooled
    padded = enc.encode_batch([long, short, long[:5000]])[1].pooled
    np.testing.assert_array_equal(alone, padded)


def bad_audio(folder: Path) -> dict[str, tuple[str, str]]:
    """id -> (path, expected message) for four kinds of bad audio."""
    folder.mkdir(exist_ok=True)
    (folder / "empty.wav").write_bytes(b"")
    sf.write(folder / "zero.wav", np.zeros(0, np.float32), 16000)
    (folder / "text.wav").write_text("not audio at all " * 20)
    (folder / "movie.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 100)
    return {
        "empty": (str(folder / "empty.wav"), r"empty\.wav.*empty file"),
        "zero": (str(folder / "zero.wav"), r"zero\.wav.*zero samples"),
        "text": (str(folder / "text.wav"), r"text\.wav.*not a readable audio file"),
        "movie": (str(folder / "movie.mp4"), r"movie\.mp4.*unsupported container.*ffmpeg"),
    }


@pytest.mark.parametrize("kind", ["empty", "zero", "text", "movie"])
def test_bad_audio_raises_an_error_naming_the_file(tmp_path, audio_items, kind):
    path, message = bad_audio(tmp_path / "bad")[kind]
    items = audio_items[:3] + [Item(id=kind, audio=path)]
    with pytest.raises(AudioError, match=message):
        encode_items(items, audio_spec(), EmbeddingCache(tmp_path / "c"), progress=False)


def test_bad_audio_is_skipped_and_reported_with_on_error_skip(tmp_path, audio_items):
    bad = bad_audio(tmp_path / "bad")
    missing = Item(id="missing", audio=str(tmp_path / "nope.wav"))
    items = audio_items[:3] + [Item(id=k, audio=p) for k, (p, _) in bad.items()] + [missing, audio_items[3]]
    res = encode_items(items, audio_spec(), EmbeddingCache(tmp_path / "c"), on_error="skip", progress=False)
    assert res.ids == ["a0", "a1", "a2", "a3"] and res.indices.tolist() == [0, 1, 2, 8]
    assert set(res.skipped) == {"empty", "zero", "text", "movie", "missing"}
    for kind, (_, message) in bad.items():
        assert pytest.importorskip("re").search(message, res.skipped[kind]), res.skipped[kind]
    assert "nope.wav" in res.skipped["missing"]
    ok = encode_items(audio_items[:4], audio_spec(), EmbeddingCache(tmp_path / "c2"), progress=False)
    np.testing.assert_array_equal(res.pooled, ok.pooled)


def test_encoder_rejecting_one_input_skips_only_that_item(tmp_path, audio_items):
    tiny = Item(id="tiny", audio=(np.ones(5, np.float32), 16000))  # an in-memory clip the toy refuses
    items = audio_items[:3] + [tiny]
    with pytest.raises(DataError, match="at least 10 samples"):
        encode_items(items, audio_spec(), EmbeddingCache(tmp_path / "c"), progress=False)
    res = encode_items(items, audio_spec(), EmbeddingCache(tmp_path / "c"), on_error="skip", progress=False)
    assert res.ids == ["a0", "a1", "a2"] and "at least 10 samples" in res.skipped["tiny"]


def test_missing_input_field_names_item_and_field(tmp_path):
    items = [Item(id="row-1", texts={"t": "fine"}), Item(id="row-2", texts={"other": "x"})]
    with pytest.raises(DataError, match=r"field 'text\.t'.*item 'row-2' has no text field 't' \(it has: other\)"):
        encode_items(items, text_spec(), EmbeddingCache(tmp_path / "c"), progress=False)
    with pytest.raises(DataError, match="item 'row-1' has no audio"):
        encode_items(items, audio_spec(), EmbeddingCache(tmp_path / "c"), progress=False)
    vec = EncoderSpec(name="toy-text", input="vector.v")
    with pytest.raises(DataError, match="item 'row-1' has no vector field 'v'"):
        encode_items(items, vec, EmbeddingCache(tmp_path / "c"), progress=False)
    res = encode_items(items, text_spec(), EmbeddingCache(tmp_path / "c"), on_error="skip", progress=False)
    assert res.ids == ["row-1"] and list(res.skipped) == ["row-2"]


def test_shards_partition_the_items_and_fill_one_cache(tmp_path):
    counter = tmp_path / "calls"
    items = [Item(id=str(i), texts={"t": f"text {i}"}) for i in range(60)]
    cache = EmbeddingCache(tmp_path / "c")
    seen: list[str] = []
    for i in range(3):
        res = encode_items(items, text_spec(counter), cache, shard=(i, 3), progress=False)
        assert 0 < len(res.ids) < 60
        seen += res.ids
    assert sorted(seen, key=int) == [str(i) for i in range(60)] and count(counter) == 60
    full = encode_items(items, text_spec(counter), cache, progress=False)
    assert full.cached == 60 and count(counter) == 60
    assert parse_shard("2/3") == (2, 3)
    with pytest.raises(ConfigError, match="expected I/N with 0 <= I < N, got 3/3"):
        parse_shard("3/3")
    with pytest.raises(ConfigError, match="expected I/N"):
        parse_shard("half")


def test_worker_processes_give_the_same_vectors(tmp_path, audio_items):
    counter = tmp_path / "calls"
    pooled = encode_items(
        audio_items, audio_spec(counter), EmbeddingCache(tmp_path / "p"), workers=2, batch_size=3, progress=False
    )
    assert count(counter) == 12
    assert os.getpid() not in pids(counter) and len(pids(counter)) >= 1  # encoded in the workers
    serial = encode_items(audio_items, audio_spec(), EmbeddingCache(tmp_path / "s"), progress=False)
    np.testing.assert_array_equal(pooled.pooled, serial.pooled)
    with pytest.warns(UserWarning, match="not marked parallel_safe"):
        encode_items(audio_items, text_spec(), EmbeddingCache(tmp_path / "t"), workers=2, progress=False)


def test_float16_cache_through_the_pipeline(tmp_path, audio_items):
    half = encode_items(audio_items, audio_spec(), EmbeddingCache(tmp_path / "h", dtype="float16"), progress=False)
    again = encode_items(audio_items, audio_spec(), EmbeddingCache(tmp_path / "h", dtype="float16"), progress=False)
    full = encode_items(audio_items, audio_spec(), EmbeddingCache(tmp_path / "f"), progress=False)
    assert again.cached == 12
    np.testing.assert_allclose(again.pooled, full.pooled, rtol=2e-3, atol=1e-3)
    np.testing.assert_array_equal(half.pooled, full.pooled)  # the run that encoded returns full precision


def test_build_features_aligns_encoders_and_drops_items_any_encoder_skipped(tmp_path, audio_items):
    items = audio_items[:4] + [Item(id="no-audio", texts={"t": "text only"})]
    specs = [audio_spec(), text_spec()]
    with pytest.warns(UserWarning, match="left out 1 item"):
        fs, report = build_features_with_report(
            items, specs, EmbeddingCache(tmp_path / "c"), on_error="skip", progress=False
        )
    assert fs.ids == ["a0", "a1", "a2", "a3"]
    assert fs.dims() == {"toy-audio:audio": 8, "toy-text:text.t": 32}
    assert len(fs.sequences["toy-audio:audio"]) == 4 and "toy-text:text.t" not in fs.sequences
    assert "no-audio" in report["toy-audio:audio"].skipped
    np.testing.assert_array_equal(fs.pooled["toy-text:text.t"], report["toy-text:text.t"].pooled[:4])
    with pytest.raises(ConfigError, match="feature names must differ"):
        build_features(items, [text_spec(), text_spec()], EmbeddingCache(tmp_path / "c"), progress=False)


def test_device_is_passed_to_encoders_that_take_one(tmp_path):
    seen = {}

    class DeviceToy(ToyAudioEncoder):
        def __init__(self, device: str = "cpu", **kw):
            super().__init__(**kw)
            seen["device"] = device

    ENCODERS.register("toy-device")(DeviceToy)
    try:
        items = [Item(id="x", audio=(np.ones(100, np.float32), 16000))]
        encode_items(
            items, EncoderSpec(name="toy-device"), EmbeddingCache(tmp_path / "c"), device="meta", progress=False
        )
        assert seen["device"] == "meta"
    finally:
        ENCODERS._entries.pop("toy-device", None)


def test_bad_arguments(tmp_path, audio_items):
    cache = EmbeddingCache(tmp_path / "c")
    with pytest.raises(ConfigError, match="on_error: expected 'raise' or 'skip', got 'ignore'"):
        encode_items(audio_items, audio_spec(), cache, on_error="ignore")
    with pytest.raises(ConfigError, match="batch_size: expected >= 1, got 0"):
        encode_items(audio_items, audio_spec(), cache, batch_size=0)
    with pytest.raises(ConfigError, match="unknown encoder 'no-such'"):
        encode_items(audio_items, EncoderSpec(name="no-such"), cache)
