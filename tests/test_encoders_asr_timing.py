"""The ASR step's word timing: stored beside the transcript, filled into ``<field>_timing``, and the
step re-runs for items that have a transcript but lack the timing an encoder reads."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import soundfile as sf

from scorecast.config import ASRConfig, EncoderSpec
from scorecast.data.items import Item
from scorecast.encoders.asr import ASR_BACKENDS, ASRBackend, TranscriptStore, transcribe_if_needed
from scorecast.encoders.asr_faster_whisper import timing_text


@ASR_BACKENDS.register("test-timed-echo")
class TimedEcho(ASRBackend):
    """Says how many samples it heard, as one word from 0 to 0.1 s."""

    timed = True
    calls = 0

    def identity(self):
        return {"backend": "test-timed-echo"}

    def transcribe_timed(self, waves):
        TimedEcho.calls += len(waves)
        return [(f"n{len(w)}", timing_text(len(w) / 16000, [(0.0, 0.1, f"n{len(w)}")])) for w in waves]

    def transcribe(self, waves):
        return [text for text, _ in self.transcribe_timed(waves)]


def recipe(*inputs: str):
    return SimpleNamespace(
        asr=ASRConfig(backend="test-timed-echo"), encoders=[EncoderSpec(name="fluency", input=i) for i in inputs]
    )


def clip(tmp_path, name: str, seconds: float) -> str:
    path = tmp_path / f"{name}.wav"
    sf.write(path, np.zeros(int(16000 * seconds), dtype=np.float32), 16000)
    return str(path)


def test_timing_is_filled_stored_and_asked_for_where_an_encoder_reads_it(tmp_path):
    given = Item(id="a", audio=clip(tmp_path, "a", 0.5), texts={"transcript": "given words"})
    fresh = Item(id="b", audio=clip(tmp_path, "b", 0.25))
    TimedEcho.calls = 0
    # no encoder reads the timing: the given transcript is kept, only the fresh item is transcribed
    assert transcribe_if_needed(recipe("text.transcript"), [given, fresh], tmp_path / "cache") == 1
    assert given.texts == {"transcript": "given words"} and fresh.texts["transcript"] == "n4000"
    assert json.loads(fresh.texts["transcript_timing"]) == {"duration": 0.25, "words": [[0.0, 0.1, "n4000"]]}
    # fluency reads the timing: the item without it is transcribed (its transcript is the ASR's now)
    assert transcribe_if_needed(recipe("text.transcript_timing"), [given, fresh], tmp_path / "cache") == 1
    assert given.texts["transcript"] == "n8000" and "transcript_timing" in given.texts
    assert TimedEcho.calls == 2  # b came from the store the second time
    (store,) = (tmp_path / "cache" / "transcripts").glob("*.jsonl")
    records = [json.loads(line) for line in store.read_text().splitlines()]
    assert all("timing" in r for r in records) and len(records) == 2


def test_store_reads_records_without_timing_and_skips_a_cut_line(tmp_path):
    store = TranscriptStore(tmp_path, {"backend": "x"}, "abc")
    store.append("h1", "plain")
    store.append("h2", "timed", '{"duration": 1.0, "words": []}')
    with store.path.open("a") as fh:
        fh.write('{"audio": "h3", "te')
    assert store.load_timed() == {"h1": ("plain", None), "h2": ("timed", '{"duration": 1.0, "words": []}')}
    assert store.load() == {"h1": "plain", "h2": "timed"}
