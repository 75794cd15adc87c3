"""``asr``: speech -> text. Its output is a transcript, not vectors: it fills an item text field
(``transcript`` by default) that any text encoder then reads.

Backends::

    whisper       transformers WhisperForConditionalGeneration + WhisperProcessor from a local
                  folder (or the local HF cache); greedy decoding; audio in 30 s chunks whose
                  transcripts are joined with a space. Params: model, language (null: detect),
                  task (transcribe), max_new_tokens (128), batch_size (8), device.
    pocketsphinx  the English model pocketsphinx 5 ships: needs nothing else, poor on unusual
                  speech (and on synthetic audio).
    faster-whisper  CTranslate2 Whisper (packaged whisper-base / whisper-tiny.en or a local
                  folder); beam search, VAD, word timestamps (asr_faster_whisper.py).

``backend`` defaults to whisper when ``model`` is given, else pocketsphinx.

:func:`transcribe_items` transcribes items and caches each transcript in a JSON-lines store under
``<cache root>/transcripts/<identity hash>.jsonl`` keyed by the sha256 of the audio file's bytes:
appends are single writes (safe with several processes), a truncated last line (a killed run) is
ignored and that item transcribed again.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from scorecast.encoders._hf_common import (
    check_positive,
    model_fingerprint,
    package_version,
    resolve_device,
    resolve_model_dir,
)
from scorecast.encoders.base import ENCODERS, Encoded, Encoder
from scorecast.errors import ConfigError, DataError
from scorecast.registry import Registry

SR = 16000
CHUNK_S = 30.0


class ASRBackend:
    timed = False  # True: transcribe_timed also gives each word's timing (a JSON text)

    def identity(self) -> dict[str, Any]:
        raise NotImplementedError

    def transcribe(self, waves: list[np.ndarray]) -> list[str]:
        raise NotImplementedError

    def transcribe_timed(self, waves: list[np.ndarray]) -> list[tuple[str, str | None]]:
        return [(text, None) for text in self.transcribe(waves)]


ASR_BACKENDS: Registry[type[ASRBackend]] = Registry("asr backend")


@ASR_BACKENDS.register("whisper")
class WhisperASR(ASRBackend):
    def __init__(
        self,
        model: str | None = None,
        language: str | None = None,
        task: str = "transcribe",
        max_new_tokens: int = 128,
        batch_size: int = 8,
        device: str = "cpu",
    ) -> None:
        if model is None:
            raise ConfigError("asr: backend 'whisper' needs params.model (a folder with a Whisper checkpoint)")
        if task not in ("transcribe", "translate"):
            raise ConfigError(f"asr task: expected 'transcribe' or 'translate', got {task!r}")
        check_positive("max_new_tokens", max_new_tokens, allow_none=False)
        check_positive("batch_size", batch_size, allow_none=False)
        self.model_name, self.model_dir = str(model), resolve_model_dir(model)
        self.language, self.task = language, task
        self.max_new_tokens, self.batch_size = int(max_new_tokens), int(batch_size)
        self.device = resolve_device(device)
        self._fp = model_fingerprint(self.model_dir)
        self._loaded = None

    def identity(self) -> dict[str, Any]:
        return {
            "backend": "whisper",
            "model": self.model_name,
            **self._fp,
            "language": self.language,
            "task": self.task,
            "max_new_tokens": self.max_new_tokens,
            "chunk_s": CHUNK_S,
            "decoding": "greedy",
        }

    def _load(self):
        if self._loaded is None:
            from transformers import WhisperForConditionalGeneration, WhisperProcessor

            processor = WhisperProcessor.from_pretrained(self.model_dir, local_files_only=True)
            model = WhisperForConditionalGeneration.from_pretrained(self.model_dir, local_files_only=True)
            self._loaded = (processor, model.to(self.device).eval())
        return self._loaded

    def transcribe(self, waves: list[np.ndarray]) -> list[str]:
        import torch

        processor, model = self._load()
        step = int(CHUNK_S * SR)
        chunks = [(i, w[s : s + step]) for i, w in enumerate(waves) for s in range(0, max(len(w), 1), step)]
        texts: list[str] = []
        for s in range(0, len(chunks), self.batch_size):
            part = [c for _, c in chunks[s : s + self.batch_size]]
            feats = processor.feature_extractor(part, sampling_rate=SR, return_tensors="pt").input_features
            kwargs: dict[str, Any] = {
                "task": self.task,
                "max_new_tokens": self.max_new_tokens,
                "num_beams": 1,
                "do_sample": False,
            }
            if self.language is not None:
                kwargs["language"] = self.language
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ids = model.generate(feats.to(self.device), **kwargs)
            texts += [t.strip() for t in processor.batch_decode(ids, skip_special_tokens=True)]
        joined: list[list[str]] = [[] for _ in waves]
        for (i, _), text in zip(chunks, texts):
            if text:
                joined[i].append(text)
        return [" ".join(parts) for parts in joined]


@ASR_BACKENDS.register("pocketsphinx")
class PocketsphinxASR(ASRBackend):
    def __init__(self) -> None:
        self._decoder = None

    def identity(self) -> dict[str, Any]:
        return {
            "backend": "pocketsphinx",
            "package": f"pocketsphinx=={package_version('pocketsphinx')}",
            "model": "en-us (packaged)",
        }

    def transcribe(self, waves: list[np.ndarray]) -> list[str]:
        if self._decoder is None:
            from pocketsphinx import Decoder

            self._decoder = Decoder(samprate=SR, loglevel="FATAL")
        out = []
        for w in waves:
            pcm = (np.clip(w, -1.0, 1.0) * 32767).astype("<i2").tobytes()
            self._decoder.start_utt()
            self._decoder.process_raw(pcm, full_utt=True)
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
            out.append(hyp.hypstr.strip() if hyp is not None else "")
        return out


@ENCODERS.register("asr")
class ASREncoder(Encoder):
    """Transcribes 16 kHz speech; use :meth:`transcribe_batch` (or :func:`transcribe_items`)."""

    modality = "audio"
    sample_rate = SR
    produces = "text"

    def __init__(self, backend: str | None = None, **params: Any) -> None:
        name = backend or ("whisper" if params.get("model") else "pocketsphinx")
        cls = ASR_BACKENDS.get(name)
        try:
            self.backend = cls(**params)
        except TypeError as exc:
            raise ConfigError(f"asr backend '{name}': bad params {sorted(params)}: {exc}") from None
        self.backend_name = name

    def identity(self) -> dict[str, Any]:
        return {"name": "asr", "sample_rate": SR, **self.backend.identity()}

    def transcribe_batch(self, waves: list[Any]) -> list[str]:
        return self.backend.transcribe(self._checked(waves))

    def transcribe_batch_timed(self, waves: list[Any]) -> list[tuple[str, str | None]]:
        """(transcript, timing JSON or None) per waveform; timing where the backend is ``timed``."""
        return self.backend.transcribe_timed(self._checked(waves))

    @staticmethod
    def _checked(waves: list[Any]) -> list[np.ndarray]:
        checked = []
        for i, w in enumerate(waves):
            arr = np.asarray(w, dtype=np.float32)
            if arr.ndim != 1 or arr.size == 0:
                raise DataError(f"asr: expected a non-empty mono waveform for input {i}, got shape {arr.shape}")
            checked.append(arr)
        return checked

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        raise ConfigError(
            "encoder 'asr' produces text, not vectors: run it as a transcription step "
            "(scorecast.encoders.asr.transcribe_items) and encode the transcript field with a text encoder"
        )


class TranscriptStore:
    """Append-only JSON-lines transcripts of one ASR identity: {"audio": sha256, "text": ...,
    "timing": ... (timed backends)}."""

    def __init__(self, root: str | os.PathLike, identity: dict[str, Any], identity_hash: str) -> None:
        self.folder = Path(root).expanduser() / "transcripts"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"{identity_hash}.jsonl"
        meta = self.folder / f"{identity_hash}.identity.json"
        if not meta.exists():
            tmp = meta.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(identity, sort_keys=True, default=str))
            os.replace(tmp, meta)

    def load(self) -> dict[str, str]:
        return {key: text for key, (text, _) in self.load_timed().items()}

    def load_timed(self) -> dict[str, tuple[str, str | None]]:
        out: dict[str, tuple[str, str | None]] = {}
        if not self.path.exists():
            return out
        with self.path.open("rb") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                    timing = rec.get("timing")
                    out[str(rec["audio"])] = (str(rec["text"]), None if timing is None else str(timing))
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue  # a line cut short by a killed run: that audio is transcribed again
        return out

    def append(self, audio_hash: str, text: str, timing: str | None = None) -> None:
        rec = {"audio": audio_hash, "text": text} | ({"timing": timing} if timing is not None else {})
        line = (json.dumps(rec, ensure_ascii=False) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def transcribe_items(
    items, spec_params: dict[str, Any] | None = None, cache: Any = None, batch_size: int = 8
) -> dict[str, str]:
    """Transcribe every item's audio into ``item.texts[as_field]`` (``as_field`` is a param,
    default ``transcript``; a timed backend also fills ``<as_field>_timing``); returns {item id: transcript}. ``cache`` is a cache root folder or an
    object with a ``root`` (the EmbeddingCache); transcripts found there are not recomputed."""
    from scorecast.data.audio import audio_input_hash, prepare_audio

    params = dict(spec_params or {})
    as_field = params.pop("as_field", "transcript")
    if not isinstance(as_field, str) or not as_field:
        raise ConfigError(f"asr as_field: expected a text field name, got {as_field!r}")
    asr = ENCODERS.build("asr", **params)
    items = list(items)
    for item in items:
        if item.audio is None:
            raise DataError(f"item '{item.id}' has no audio to transcribe", field="audio")
    root = cache if cache is None or isinstance(cache, (str, os.PathLike)) else getattr(cache, "root", None)
    if cache is not None and root is None:
        raise ConfigError(f"transcribe_items cache: expected a folder or an EmbeddingCache, got {type(cache).__name__}")
    store = TranscriptStore(root, asr.identity(), asr.identity_hash) if root is not None else None
    known = store.load_timed() if store else {}
    hashes = {item.id: audio_input_hash(item.audio) for item in items}
    todo = list({hashes[item.id]: item for item in items if hashes[item.id] not in known}.values())  # each audio once
    for s in range(0, len(todo), batch_size):
        part = todo[s : s + batch_size]
        waves = [prepare_audio(item.audio, sample_rate=SR) for item in part]
        for item, (text, timing) in zip(part, asr.transcribe_batch_timed(waves)):
            known[hashes[item.id]] = (text, timing)
            if store:
                store.append(hashes[item.id], text, timing)
    result = {}
    for item in items:
        text, timing = known[hashes[item.id]]
        item.texts[as_field] = text
        if timing is not None:
            item.texts[f"{as_field}_timing"] = timing
        result[item.id] = text
    return result


def transcribe_if_needed(recipe: Any, items: Any, cache: Any = None) -> int:
    """Run the recipe's ASR step (if any) on the items lacking its text field (or its word timing,
    where an encoder reads ``text.<field>_timing``); returns how many were transcribed. Transcripts are cached by audio content, so reruns transcribe nothing."""
    if recipe.asr is None:
        return 0
    asr = recipe.asr
    needs_timing = any(spec.input == f"text.{asr.field}_timing" for spec in recipe.encoders)

    def missing(item) -> bool:
        if not str(item.texts.get(asr.field) or "").strip():
            return True
        return needs_timing and f"{asr.field}_timing" not in item.texts

    todo = [item for item in items if asr.overwrite or missing(item)]
    if not todo:
        return 0
    params = dict(asr.params)
    if asr.backend is not None:
        params["backend"] = asr.backend
    params["as_field"] = asr.field
    transcribe_items(todo, params, cache=cache)
    return len(todo)
