"""The encoder family: frozen models that turn one input of an item into vectors."""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar, Literal

from scorecast.data.features import Encoded  # noqa: F401  (re-exported: encoders import it from here)
from scorecast.registry import Registry


class Encoder:
    """Base class. Subclasses set ``modality`` and implement ``identity`` and ``encode_batch``.

    Audio encoders receive mono float32 waveforms at ``self.sample_rate``; text encoders receive
    strings; vector encoders receive 1-D arrays (or lookup keys). The same input must give the same
    output whatever batch it is in.
    """

    modality: ClassVar[Literal["audio", "text", "vector"]] = "audio"
    sample_rate: int = 16000
    registry_name: ClassVar[str] = ""
    #: how two features of this encoder (same params) on two inputs of an item score the pair zero-shot
    #: ("cosine": the cosine similarity of the pooled vectors, as sentence encoders score pairs); None: no pair score
    pair_score: ClassVar[str | None] = None
    #: the constructor param that names a second audio field the encoder reads beside ``spec.input``
    #: (a full-reference measure compares a stimulus with its reference); None: one input. With it set,
    #: ``encode_batch`` receives ``(stimulus, reference)`` waveform pairs and the cache key covers both clips
    reference_param: ClassVar[str | None] = None

    def identity(self) -> dict[str, Any]:
        """A stable JSON-able description: name, model path/package version, revision, layer, pooling,
        sample rate, window settings. Goes into cache keys and saved scorers."""
        raise NotImplementedError

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        raise NotImplementedError

    @property
    def identity_hash(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


ENCODERS: Registry[type[Encoder]] = Registry("encoder")

FINETUNE_KEYS = ("finetune_top_k", "finetune_lr", "layer_decay", "finetune_share", "finetune_cache_frozen")
"""Encoder params that ask for end-to-end fine-tuning (``scorecast adapt --method finetune``);
they are not encoder constructor arguments and never reach an encoder class."""


def encoder_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` without the fine-tuning keys."""
    return {k: v for k, v in params.items() if k not in FINETUNE_KEYS}
