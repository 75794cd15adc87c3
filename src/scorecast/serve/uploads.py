"""Audio uploads: refused from their header before decoding, then decoded in blocks.

:func:`audio_header` sniffs the bytes (415 for what is not WAV/FLAC/Ogg/MP3) and reads the header (422
when unreadable), refusing (413) audio longer than ``max_duration_s`` or decoding to more than
``max_decoded_mb`` (frames x channels x 4 bytes), so a tiny FLAC of 8-channel 192 kHz silence costs
nothing. :func:`decode_blocks` decodes :data:`BLOCK_FRAMES` at a time, mixing each block down to mono
and resampling it with a streaming soxr resampler where the upload's rate is above the encoders', so
memory stays near the mono result at the encoders' rate (:func:`decoded_bytes` is what the server
reserves for it in its memory budget).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from fastapi import HTTPException

from scorecast.serve.limits import Limits

READABLE_AUDIO = ("wav", "flac", "ogg", "mp3")


@dataclass
class AudioHeader:
    """What an upload's header declares: container, frames, channels, rate."""

    kind: str
    frames: int
    channels: int
    samplerate: int

    @property
    def seconds(self) -> float:
        return self.frames / self.samplerate if self.samplerate > 0 else 0.0


#: frames decoded at a time: with 8 channels, 64 k frames are 2 MiB of float32
BLOCK_FRAMES = 1 << 16


def audio_header(data: bytes, where: str, limits: Limits) -> AudioHeader:
    """Sniff and read an upload's header; refuse it before decoding: 415 not audio, 422 unreadable,
    413 longer than ``max_duration_s`` or more decoded samples (frames x channels) than ``max_decoded_mb``."""
    import soundfile as sf

    from scorecast.data.audio import sniff_audio_format

    kind = sniff_audio_format(data[:16])
    if kind not in READABLE_AUDIO:
        got = f"{kind.upper()} audio, which is not supported" if kind else "bytes that are not audio"
        raise HTTPException(415, f"{where}: expected WAV, FLAC, Ogg or MP3 audio, got {got}")
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise HTTPException(422, f"{where}: looks like {kind.upper()} but cannot be decoded ({exc})") from None
    header = AudioHeader(kind, max(int(info.frames), 0), max(int(info.channels), 1), int(info.samplerate))
    if header.samplerate <= 0:
        raise HTTPException(422, f"{where}: the header declares a sample rate of {header.samplerate}; expected > 0")
    if header.seconds > limits.max_duration_s:
        raise HTTPException(
            413, f"{where}: {header.seconds:.1f} s of audio exceeds the limit of {limits.max_duration_s:g} s"
        )
    decoded = header.frames * header.channels * 4
    if decoded > limits.max_decoded_bytes:
        raise HTTPException(
            413,
            f"{where}: decodes to {decoded / 2**20:.1f} MiB ({header.frames} frames x {header.channels} channels "
            f"at {header.samplerate} Hz), more than the limit of {limits.max_decoded_mb:g} MiB; "
            "send mono audio at a lower rate",
        )
    return header


def decoded_bytes(header: AudioHeader, target_rate: int | None) -> int:
    """The memory decoding holds: the mono result at the output rate plus one block of all channels."""
    rate = min(header.samplerate, target_rate) if target_rate else header.samplerate
    out_frames = int(header.seconds * rate) + 1
    block = min(header.frames, BLOCK_FRAMES) * header.channels * 4
    return out_frames * 4 + 2 * block


def decode_blocks(
    data: bytes, header: AudioHeader, where: str, limits: Limits, target_rate: int | None = None
) -> tuple[np.ndarray, int, list[str]]:
    """Decode in blocks of :data:`BLOCK_FRAMES`, mixing each down to mono and (where the upload's rate is
    above ``target_rate``) resampling it with a streaming soxr resampler -> ((1, T) float32, rate, flags).

    The duration is checked again while decoding (headers of some formats under-report); a file that
    holds fewer frames than its header declares is decoded as far as it goes and flagged ``truncated``.
    """
    import soundfile as sf
    import soxr

    from scorecast.data.audio import wav_declared_frames

    rate = header.samplerate
    resampler = None
    if target_rate and target_rate < rate:
        resampler = soxr.ResampleStream(rate, target_rate, 1, dtype="float32", quality="HQ")
    parts, total = [], 0
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            for block in f.blocks(blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
                total += block.shape[0]
                if total / rate > limits.max_duration_s:
                    raise HTTPException(
                        413, f"{where}: more than {limits.max_duration_s:g} s of audio (the header under-reports)"
                    )
                mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
                parts.append(resampler.resample_chunk(mono) if resampler is not None else np.array(mono))
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise HTTPException(422, f"{where}: looks like {header.kind.upper()} but cannot be decoded ({exc})") from None
    if total == 0:
        raise HTTPException(422, f"{where}: holds zero samples; expected audio")
    if resampler is not None:
        parts.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    wave = np.concatenate(parts).astype(np.float32, copy=False)
    flags = []
    declared = wav_declared_frames(data[: 1 << 16]) if header.kind == "wav" else header.frames
    slack = 0 if header.kind == "wav" else max(0.1 * rate, 0.01 * declared)  # Ogg/MP3 lengths are estimates
    if declared and declared - total > slack:
        flags.append(f"truncated: the header declares {declared} samples, the upload holds {total}")
    return wave[None, :], (target_rate if resampler is not None else rate), flags


def decode_audio(data: bytes, where: str, max_duration_s: float, max_decoded_mb: float = 64.0):
    """Uploaded bytes -> (waveform (1, T) float32 mono, sample rate): :func:`audio_header`'s checks, then
    :func:`decode_blocks` at the file's rate."""
    limits = Limits(max_duration_s=max_duration_s, max_decoded_mb=max_decoded_mb)
    header = audio_header(data, where, limits)
    wave, sr, _ = decode_blocks(data, header, where, limits)
    return wave, sr
