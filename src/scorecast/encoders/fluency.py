"""``fluency``: speech rate and pauses from the word timing that a timed ASR backend writes
(``faster-whisper`` with ``word_timestamps``: the text field ``<field>_timing``, see
encoders/asr_faster_whisper.py). Spoken grammar scores follow fluency, and a transcript alone
hides it. Input: ``text.transcript_timing``.

Features, in :data:`FEATURES` order (a pause is a gap of at least ``min_pause_s`` between words):

======================  ======================================================================
``duration_s``          clip length
``speech_span_s``       first word start to last word end
``words``               number of words
``speech_rate``         words per second of the clip
``articulation_rate``   words per second of speech (span minus pauses)
``word_duration``       mean word length in seconds
``pauses_per_min``      pauses per minute of speech span
``long_pauses_per_min`` pauses of ``long_pause_s`` or more per minute
``pause_ratio``         pause time / speech span
``pause_mean_s``        mean pause length (0 with no pause)
``pause_max_s``         longest pause
``lead_silence_s``      before the first word
``tail_silence_s``      after the last word
======================  ======================================================================

No words (silence) gives zeros except ``duration_s``: a defined output.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from scorecast.encoders._hf_common import check_positive
from scorecast.encoders.base import ENCODERS, Encoded, Encoder
from scorecast.errors import DataError

VERSION = 1
FEATURES = (
    "duration_s",
    "speech_span_s",
    "words",
    "speech_rate",
    "articulation_rate",
    "word_duration",
    "pauses_per_min",
    "long_pauses_per_min",
    "pause_ratio",
    "pause_mean_s",
    "pause_max_s",
    "lead_silence_s",
    "tail_silence_s",
)


def parse_timing(text: str, where: str) -> tuple[float, np.ndarray]:
    """A ``<field>_timing`` JSON text -> (duration, (N, 2) word start/end seconds, sorted)."""
    try:
        data = json.loads(text)
        duration = float(data["duration"])
        spans = np.array([[float(w[0]), float(w[1])] for w in data["words"]], dtype=np.float64).reshape(-1, 2)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise DataError(
            f"fluency: {where}: expected a timing JSON text like "
            f'{{"duration": 12.5, "words": [[0.0, 0.4, "hello"], ...]}}, got {text[:60]!r} ({exc})'
        ) from None
    if not np.isfinite(spans).all() or duration < 0 or (spans[:, 1] < spans[:, 0]).any():
        raise DataError(f"fluency: {where}: word times must be finite with end >= start, and duration >= 0")
    return duration, spans[np.argsort(spans[:, 0], kind="stable")]


def fluency_features(duration: float, spans: np.ndarray, min_pause_s: float, long_pause_s: float) -> np.ndarray:
    values = dict.fromkeys(FEATURES, 0.0)
    values["duration_s"] = duration
    if len(spans):
        span = max(float(spans[-1, 1] - spans[0, 0]), 1e-3)
        gaps = np.maximum(spans[1:, 0] - spans[:-1, 1], 0.0)
        pauses = gaps[gaps >= min_pause_s]
        minutes = span / 60.0
        values |= {
            "speech_span_s": span,
            "words": float(len(spans)),
            "speech_rate": len(spans) / duration if duration > 0 else 0.0,
            "articulation_rate": len(spans) / max(span - float(pauses.sum()), 1e-3),
            "word_duration": float((spans[:, 1] - spans[:, 0]).mean()),
            "pauses_per_min": len(pauses) / minutes,
            "long_pauses_per_min": float((pauses >= long_pause_s).sum()) / minutes,
            "pause_ratio": float(pauses.sum()) / span,
            "pause_mean_s": float(pauses.mean()) if len(pauses) else 0.0,
            "pause_max_s": float(pauses.max()) if len(pauses) else 0.0,
            "lead_silence_s": float(spans[0, 0]),
            "tail_silence_s": max(duration - float(spans[-1, 1]), 0.0),
        }
    return np.array([values[f] for f in FEATURES], dtype=np.float32)


@ENCODERS.register("fluency")
class FluencyEncoder(Encoder):
    """Speech rate and pause statistics of a timing text (see the module docstring)."""

    modality = "text"

    def __init__(self, min_pause_s: float = 0.25, long_pause_s: float = 1.0) -> None:
        check_positive("min_pause_s", min_pause_s, allow_none=False)
        check_positive("long_pause_s", long_pause_s, allow_none=False)
        self.min_pause_s, self.long_pause_s = float(min_pause_s), float(long_pause_s)

    def identity(self) -> dict[str, Any]:
        return {
            "name": "fluency",
            "version": VERSION,
            "features": list(FEATURES),
            "min_pause_s": self.min_pause_s,
            "long_pause_s": self.long_pause_s,
        }

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        out = []
        for i, text in enumerate(inputs):
            if not isinstance(text, str):
                raise DataError(
                    f"fluency: expected a timing text for input {i} of the batch, got {type(text).__name__}"
                )
            duration, spans = parse_timing(text, f"input {i} of the batch")
            out.append(Encoded(fluency_features(duration, spans, self.min_pause_s, self.long_pause_s)))
        return out
