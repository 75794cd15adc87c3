"""Encoders: frozen models that turn one input of an item into vectors (or, for ``asr``, text).

Importing this package registers every encoder family in ``ENCODERS``; each module keeps its heavy
imports (torch, transformers, sentence-transformers, opensmile, essentia, onnxruntime) inside
methods, so this import stays light.
"""

from scorecast.encoders import (  # noqa: F401  (imported for registration)
    asr,
    asr_faster_whisper,
    distillmos_encoder,
    dnsmos,
    fluency,
    fullref,
    hf_audio,
    hf_text,
    linguistic,
    lookup,
    music,
    opensmile_features,
    sentence,
    speaker,
    text_stats,
    whisper_encoder,
)
from scorecast.encoders.base import ENCODERS, Encoded, Encoder

__all__ = ["ENCODERS", "Encoded", "Encoder"]
