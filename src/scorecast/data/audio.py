"""Audio I/O: read, mix down, resample and normalise audio, with errors that name the file.

``soundfile`` reads WAV, FLAC, Ogg Vorbis/Opus and MP3; ``soxr`` resamples. An audio input is a path
or an in-memory ``(array, sample_rate)`` pair (:data:`AudioInput`); :func:`prepare_audio` turns
either into a mono float32 waveform at the rate an encoder wants.

The crop/pad and windowing policies are deterministic: the same waveform always gives the same
crops and windows, whatever else is in the batch.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from scorecast.errors import AudioError

AudioInput = str | os.PathLike | tuple[np.ndarray, int]
"""A path to an audio file, or ``(waveform, sample_rate)`` with waveform (T,), (C, T) or (T, C)."""

SUPPORTED_FORMATS = ("wav", "flac", "ogg", "mp3")
"""Container formats :func:`load_audio` reads (as named by :func:`sniff_audio_format`)."""

_FFMPEG_HINT = "convert it first, e.g. `ffmpeg -i {name} -ac 1 -ar 16000 {stem}.wav`"


# --------------------------------------------------------------------------------------------
# format sniffing


def sniff_audio_format(first_bytes: bytes) -> str | None:
    """Name the container of a file from its first bytes (16 are enough), or None if unknown.

    Returns ``wav`` (RIFF/RF64/W64 WAVE), ``flac``, ``ogg``, ``mp3`` (ID3 tag or MPEG audio frame
    sync), ``aiff``, or the unsupported ``mp4`` (ISO base media: M4A/MP4/AAC in MP4) and ``aac``
    (raw ADTS). Only the names in :data:`SUPPORTED_FORMATS` can be read by :func:`load_audio`.
    """
    b = bytes(first_bytes[:16])
    if len(b) >= 12 and b[:4] in (b"RIFF", b"RF64") and b[8:12] == b"WAVE":
        return "wav"
    if b[:4] == b"riff" and len(b) >= 16:  # Sony Wave64 GUID begins with 'riff'
        return "wav"
    if b[:4] == b"fLaC":
        return "flac"
    if b[:4] == b"OggS":
        return "ogg"
    if b[:3] == b"ID3":
        return "mp3"
    if len(b) >= 12 and b[4:8] == b"ftyp":
        return "mp4"
    if len(b) >= 12 and b[:4] == b"FORM" and b[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if len(b) >= 2 and b[0] == 0xFF and (b[1] & 0xE0) == 0xE0:
        layer = (b[1] >> 1) & 0x03
        if layer == 0 and (b[1] & 0xF0) == 0xF0:
            return "aac"  # ADTS: 12-bit sync, layer bits 00
        if layer != 0:
            return "mp3"
    return None


# --------------------------------------------------------------------------------------------
# content hashing

_HASH_MEMO: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


def audio_bytes_hash(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's bytes, memoised per process by (absolute path, size, mtime)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise AudioError("audio file not found", file=p) from None
    if not p.is_file():
        raise AudioError("expected an audio file, got a directory or special file", file=p)
    memo_key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    with _HASH_LOCK:
        cached = _HASH_MEMO.get(memo_key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    with _HASH_LOCK:
        _HASH_MEMO[memo_key] = value
    return value


def audio_input_hash(x: AudioInput) -> str:
    """sha256 (hex) of an audio input: the file's bytes for a path, the samples and rate for an array."""
    if isinstance(x, tuple):
        wave, sr = _check_pair(x)
        digest = hashlib.sha256(b"array\0")
        digest.update(f"{sr}:{wave.dtype.str}:{wave.shape}".encode())
        digest.update(np.ascontiguousarray(wave).tobytes())
        return digest.hexdigest()
    return audio_bytes_hash(x)


# --------------------------------------------------------------------------------------------
# loading


def load_audio(
    path: str | os.PathLike,
    sample_rate: int | None = 16000,
    mono: bool = True,
    normalize_loudness: float | None = None,
) -> np.ndarray:
    """Read an audio file as float32 in [-1, 1].

    Returns (T,) when ``mono`` (channels averaged), else (C, T). ``sample_rate=None`` keeps the
    file's rate; otherwise the audio is resampled with soxr (HQ). ``normalize_loudness`` is a target
    RMS level in dBFS (e.g. -23.0); silent audio is left as is.

    Raises :class:`AudioError` naming the file for a missing or empty file, bytes that are not
    audio, an unsupported container (MP4/AAC), zero samples, or non-finite samples.
    """
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise AudioError(
            "audio file not found" if not p.exists() else "expected an audio file, got a directory", file=p
        )
    size = p.stat().st_size
    if size == 0:
        raise AudioError("empty file (0 bytes); expected WAV, FLAC, Ogg or MP3 audio", file=p)
    with open(p, "rb") as fh:
        head = fh.read(16)
    kind = sniff_audio_format(head)
    if kind in ("mp4", "aac"):
        raise AudioError(
            f"unsupported container ({kind.upper()}/AAC); scorecast reads WAV, FLAC, Ogg and MP3: "
            + _FFMPEG_HINT.format(name=p.name, stem=p.stem),
            file=p,
        )
    try:
        data, file_rate = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        what = f"looks like {kind.upper()} but cannot be decoded" if kind else "not a readable audio file"
        raise AudioError(f"{what} (expected WAV, FLAC, Ogg or MP3; libsndfile says: {exc})", file=p) from exc
    missing = truncated_frames(p, kind, data.shape[0], file_rate)
    if missing:
        warnings.warn(
            f"{p}: truncated audio: the header declares {missing[0]} samples, the file holds {missing[1]} "
            f"({missing[1] / max(file_rate, 1):.2f} s); scoring the part that is present",
            TruncatedAudioWarning,
            stacklevel=2,
        )
    return _finish(data.T, int(file_rate), sample_rate, mono, normalize_loudness, source=p)


class TruncatedAudioWarning(UserWarning):
    """An audio file holds fewer samples than its header declares (a cut-off download or copy)."""


def truncated_frames(path: Path, kind: str | None, decoded: int, rate: int) -> tuple[int, int] | None:
    """(declared, present) sample frames when the file holds fewer than its header says, else None.

    WAV: the ``data`` chunk's declared size against the bytes that follow it; other formats: the
    header's frame count (FLAC STREAMINFO; an estimate in Ogg and MP3) against the frames decoded, when
    more than 0.1 s or 1 % are missing.
    """
    import soundfile as sf

    if kind == "wav":
        with open(path, "rb") as fh:
            declared = wav_declared_frames(fh.read(1 << 16))
        if declared is not None and decoded < declared:
            return declared, decoded
        return None
    try:
        declared = int(sf.info(str(path)).frames)
    except (sf.LibsndfileError, RuntimeError, ValueError):
        return None
    # Ogg and MP3 headers estimate their length (Ogg Vorbis clips read a few samples short of it)
    slack = max(0.1 * rate, 0.01 * declared)
    if 0 < declared < (1 << 62) and declared - decoded > slack:
        return declared, decoded
    return None


def wav_declared_frames(head: bytes) -> int | None:
    """Sample frames a RIFF/WAVE header (the first bytes of the file) declares in its ``data`` chunk
    (None if it cannot tell)."""
    import struct

    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, block = 12, None
    while pos + 8 <= len(head):
        cid, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if cid == b"fmt " and pos + 8 + 14 <= len(head):
            block = struct.unpack("<H", head[pos + 8 + 12 : pos + 8 + 14])[0]
        if cid == b"data":
            if not block or size in (0, 0xFFFFFFFF):
                return None
            return size // block
        pos += 8 + size + (size & 1)
    return None


def prepare_audio(
    x: AudioInput,
    sample_rate: int | None = 16000,
    mono: bool = True,
    normalize_loudness: float | None = None,
    name: str | None = None,
) -> np.ndarray:
    """A path or an in-memory ``(waveform, sample_rate)`` pair -> float32 waveform (see :func:`load_audio`).

    In-memory 2-D waveforms are (C, T) when the first dimension is the smaller one, else (T, C).
    ``name`` is used in error messages for arrays (e.g. an upload's file name).
    """
    if not isinstance(x, tuple):
        return load_audio(x, sample_rate, mono, normalize_loudness)
    wave, sr = _check_pair(x, name)
    wave = wave.astype(np.float32, copy=False)
    if wave.ndim == 1:
        wave = wave[None, :]
    elif wave.shape[0] > wave.shape[1]:
        wave = wave.T
    return _finish(wave, sr, sample_rate, mono, normalize_loudness, source=name or "<array>")


def _check_pair(x: tuple, name: str | None = None) -> tuple[np.ndarray, int]:
    where = name or "<array>"
    if len(x) != 2:
        raise AudioError(f"expected (waveform, sample_rate), got a tuple of {len(x)}", file=where)
    wave, sr = x
    wave = np.asarray(wave)
    if not isinstance(sr, (int, np.integer)) or int(sr) <= 0:
        raise AudioError(f"expected a positive integer sample rate, got {sr!r}", file=where)
    if wave.ndim not in (1, 2) or not np.issubdtype(wave.dtype, np.number):
        raise AudioError(
            f"expected a numeric waveform of shape (T,), (C, T) or (T, C), got {wave.dtype} {wave.shape}", file=where
        )
    if np.issubdtype(wave.dtype, np.integer):
        scale = float(np.iinfo(wave.dtype).max) + 1.0
        wave = wave.astype(np.float32) / scale
    return wave, int(sr)


def _finish(
    wave: np.ndarray,
    file_rate: int,
    sample_rate: int | None,
    mono: bool,
    normalize_loudness: float | None,
    source: str | os.PathLike,
) -> np.ndarray:
    """(C, T) float32 -> checked, mixed down, resampled, normalised waveform."""
    if wave.shape[-1] == 0:
        raise AudioError("holds zero samples; expected at least one", file=source)
    finite = np.isfinite(wave)
    if not finite.all():
        bad = int(wave.size - finite.sum())
        what = "all samples are" if bad == wave.size else f"{bad} of {wave.size} samples are"
        raise AudioError(f"{what} NaN or infinite; expected finite audio samples", file=source)
    if mono:
        wave = wave.mean(axis=0)
    if sample_rate is not None and int(sample_rate) != file_rate:
        wave = resample(wave, file_rate, int(sample_rate))
    if normalize_loudness is not None:
        wave = normalize_rms(wave, normalize_loudness)
    return np.ascontiguousarray(wave, dtype=np.float32)


def resample(wave: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample (T,) or (C, T) float32 audio with soxr (HQ); output length round(T * to / from)."""
    import soxr

    if from_rate == to_rate:
        return wave
    if wave.ndim == 1:
        return soxr.resample(wave, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)
    return np.ascontiguousarray(soxr.resample(wave.T, from_rate, to_rate, quality="HQ").T, dtype=np.float32)


def normalize_rms(wave: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Scale audio so its RMS level is ``target_dbfs`` dB relative to full scale; silence is returned as is."""
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))
    if rms <= 1e-10:
        return wave
    gain = 10.0 ** ((target_dbfs - 20.0 * np.log10(rms)) / 20.0)
    return (wave * gain).astype(np.float32)


# --------------------------------------------------------------------------------------------
# crop / pad and windows: deterministic policies


CropMode = Literal["start", "center", "end"]


def crop_or_pad(
    wave: np.ndarray, length: int, mode: CropMode = "start", pad: Literal["zeros", "repeat"] = "zeros"
) -> np.ndarray:
    """Cut or extend the last axis of ``wave`` to exactly ``length`` samples, deterministically.

    ``mode`` says which part is kept when cropping and where padding goes: ``start`` keeps the
    beginning and pads at the end, ``end`` keeps the end and pads at the start, ``center`` keeps the
    middle and pads both sides (the extra sample goes at the end). ``pad="repeat"`` tiles the audio
    instead of adding zeros.
    """
    if length <= 0:
        raise ValueError(f"crop_or_pad: expected length > 0, got {length}")
    if mode not in ("start", "center", "end"):
        raise ValueError(f"crop_or_pad: expected mode 'start', 'center' or 'end', got {mode!r}")
    n = wave.shape[-1]
    if n == length:
        return wave
    if n > length:
        start = {"start": 0, "end": n - length, "center": (n - length) // 2}[mode]
        return wave[..., start : start + length]
    missing = length - n
    if pad == "repeat" and n > 0:
        reps = -(-length // n)
        tiled = np.concatenate([wave] * reps, axis=-1)
        return tiled[..., :length] if mode != "end" else tiled[..., -length:]
    if pad not in ("zeros", "repeat"):
        raise ValueError(f"crop_or_pad: expected pad 'zeros' or 'repeat', got {pad!r}")
    before = {"start": 0, "end": missing, "center": missing // 2}[mode]
    widths = [(0, 0)] * (wave.ndim - 1) + [(before, missing - before)]
    return np.pad(wave, widths)


def window_spans(n: int, win: int, hop: int) -> list[tuple[int, int]]:
    """(start, end) spans covering ``n`` samples with windows of ``win`` every ``hop``.

    A signal no longer than ``win`` is one span (0, n). Otherwise windows start at 0, hop, 2*hop...
    while they fit, and one last window ends exactly at ``n`` if the regular ones stop short, so
    every window but a lone short one has length ``win`` and no padding is needed.
    """
    if win <= 0 or hop <= 0:
        raise ValueError(f"window_spans: expected win > 0 and hop > 0, got win={win}, hop={hop}")
    if n <= win:
        return [(0, n)]
    spans = [(s, s + win) for s in range(0, n - win + 1, hop)]
    if spans[-1][1] < n:
        spans.append((n - win, n))
    return spans


def windows(wave: np.ndarray, win: int, hop: int) -> list[np.ndarray]:
    """Views of ``wave`` (last axis) cut by :func:`window_spans`."""
    return [wave[..., s:e] for s, e in window_spans(wave.shape[-1], win, hop)]


def pad_batch(waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack 1-D waveforms into a zero-padded (B, T_max) float32 batch and a (B, T_max) bool mask
    (True on real samples). Encoders must use the mask so padding never changes an item's result."""
    if not waves:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), bool)
    t_max = max(int(w.shape[-1]) for w in waves)
    batch = np.zeros((len(waves), t_max), np.float32)
    mask = np.zeros((len(waves), t_max), bool)
    for i, w in enumerate(waves):
        batch[i, : w.shape[-1]] = w
        mask[i, : w.shape[-1]] = True
    return batch, mask
