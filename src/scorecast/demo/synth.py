"""Speech-like audio made on the spot (no download needed).

A clip is a source-filter synthesis: a glottal pulse train whose f0 follows a prosodic contour
(declination, accents on stressed syllables, slow drift, jitter) is shaped by a spectral tilt and a
cascade of four time-varying formant resonators moving between vowel targets; fricative noise and
plosive bursts sit between the vowels, and pauses between the words. Every random choice comes from
one ``numpy.random.Generator``, so a seed gives the same samples every time.

Controlled impairments of these clips, and their STOI-based labels, are in :mod:`scorecast.demo.impairments`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import signal

from scorecast.errors import ConfigError

SAMPLE_RATE = 16000

# Vowel formant targets (F1, F2, F3) in Hz for an adult male voice (Peterson & Barney style).
VOWELS: dict[str, tuple[float, float, float]] = {
    "a": (730.0, 1090.0, 2440.0),
    "ae": (660.0, 1720.0, 2410.0),
    "e": (530.0, 1840.0, 2480.0),
    "i": (270.0, 2290.0, 3010.0),
    "o": (570.0, 840.0, 2410.0),
    "u": (300.0, 870.0, 2240.0),
    "er": (490.0, 1350.0, 1690.0),
}
F4_HZ = 3500.0
BANDWIDTHS_HZ = (70.0, 100.0, 140.0, 200.0)
FRAME, HOP = 512, 128  # formant filtering frames: 32 ms, hop 8 ms at 16 kHz


@dataclass(frozen=True)
class Voice:
    """A synthetic speaker: mean f0 (Hz) and a vocal-tract scale applied to every formant."""

    id: str
    f0_hz: float
    formant_scale: float


def make_voices(n: int, seed: int = 0) -> list[Voice]:
    """``n`` voices spread over low (male-like) to high (child-like) pitch and tract length."""
    if n < 1:
        raise ConfigError(f"make_voices: expected n >= 1 voices, got {n}")
    rng = np.random.default_rng([seed, 7919])
    pos = (np.arange(n) + rng.uniform(0.2, 0.8, n)) / n  # stratified over [0, 1)
    f0 = 85.0 * (260.0 / 85.0) ** pos
    scale = 0.95 + 0.3 * pos + rng.normal(0.0, 0.03, n)
    return [Voice(f"v{i:02d}", float(f0[i]), float(scale[i])) for i in range(n)]


@dataclass
class _Tracks:
    """Per-sample control tracks of one utterance."""

    n: int
    voicing: np.ndarray = field(init=False)  # amplitude of the voiced source
    frication: np.ndarray = field(init=False)  # amplitude of the frication noise
    fric_centre: np.ndarray = field(init=False)  # centre frequency (Hz) of the frication noise
    formants: np.ndarray = field(init=False)  # (n, 4) Hz
    accent: np.ndarray = field(init=False)  # f0 accent curve (relative)

    def __post_init__(self) -> None:
        self.voicing = np.zeros(self.n)
        self.frication = np.zeros(self.n)
        self.fric_centre = np.full(self.n, 4500.0)
        self.formants = np.zeros((self.n, 4))
        self.accent = np.zeros(self.n)


def _ramp(length: int, attack: int, release: int) -> np.ndarray:
    env = np.ones(length)
    a, r = min(attack, length // 2), min(release, length // 2)
    if a > 0:
        env[:a] = 0.5 - 0.5 * np.cos(np.pi * np.arange(a) / a)
    if r > 0:
        env[length - r :] = 0.5 + 0.5 * np.cos(np.pi * np.arange(1, r + 1) / r)
    return env


def _plan(duration_s: float, voice: Voice, rng: np.random.Generator, sr: int) -> _Tracks:
    """Lay out words of syllables (onset consonant + vowel) and pauses over ``duration_s``."""
    n = int(round(duration_s * sr))
    tr = _Tracks(n)
    names = list(VOWELS)
    pos = int(rng.uniform(0.05, 0.15) * sr)  # leading silence
    prev_formants = np.array([*VOWELS[names[rng.integers(len(names))]], F4_HZ]) * voice.formant_scale
    tr.formants[:pos] = prev_formants
    end = n - int(0.12 * sr)
    while pos < end:
        for syllable in range(int(rng.integers(1, 4))):  # syllables in this word
            if pos >= end:
                break
            onset = rng.choice(["fricative", "plosive", "none"], p=[0.4, 0.3, 0.3])
            if onset == "fricative":
                length = int(rng.uniform(0.05, 0.12) * sr)
                seg = slice(pos, min(pos + length, n))
                tr.frication[seg] = rng.uniform(0.15, 0.45) * _ramp(seg.stop - seg.start, 80, 80)
                tr.fric_centre[seg] = 250.0 * round(rng.uniform(2500.0, 6500.0) / 250.0)
                pos = seg.stop
            elif onset == "plosive":
                pos += int(rng.uniform(0.03, 0.06) * sr)  # closure (silence)
                length = int(rng.uniform(0.008, 0.02) * sr)
                seg = slice(min(pos, n), min(pos + length, n))
                tr.frication[seg] = rng.uniform(0.4, 0.8) * _ramp(seg.stop - seg.start, 8, length // 2)
                tr.fric_centre[seg] = 250.0 * round(rng.uniform(1500.0, 4500.0) / 250.0)
                pos = seg.stop
            target = np.array([*VOWELS[names[rng.integers(len(names))]], F4_HZ]) * voice.formant_scale
            target *= rng.normal(1.0, 0.04, 4)
            length = int(rng.uniform(0.09, 0.22) * sr)
            seg = slice(min(pos, n), min(pos + length, n))
            m = seg.stop - seg.start
            if m > 0:
                # formants glide from the previous vowel to this one over the first 40 %
                glide = np.clip(np.arange(m) / max(1, int(0.4 * m)), 0.0, 1.0)[:, None]
                tr.formants[seg] = prev_formants + glide * (target - prev_formants)
                tr.voicing[seg] = rng.uniform(0.7, 1.0) * _ramp(m, int(0.02 * sr), int(0.03 * sr))
                if syllable == 0 and rng.random() < 0.7:  # lexical stress: a pitch accent
                    centre = seg.start + m // 2
                    t = (np.arange(n) - centre) / (0.08 * sr)
                    tr.accent += rng.uniform(0.08, 0.25) * np.exp(-0.5 * t**2)
            prev_formants = target
            pos = seg.stop
        pos += int(rng.uniform(0.08, 0.3) * sr)  # pause between words
        tr.formants[seg.stop : min(pos, n)] = prev_formants
    tr.formants[pos:] = prev_formants
    # fill any gap left at zero (closures, fricatives) with the nearest vowel's formants
    unset = tr.formants[:, 0] == 0
    if unset.any():
        idx = np.where(~unset, np.arange(n), 0)
        np.maximum.accumulate(idx, out=idx)
        tr.formants[unset] = tr.formants[idx[unset]]
    return tr


def _f0_contour(n: int, voice: Voice, accent: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    declination = 1.0 - rng.uniform(0.08, 0.2) * t / max(t[-1], 1e-9)
    knots = rng.normal(0.0, 0.04, int(t[-1] / 0.25) + 3)  # slow drift, one knot every 250 ms
    drift = np.interp(t, np.linspace(0.0, t[-1], len(knots)), knots)
    jitter = rng.normal(0.0, 0.004, n)
    return voice.f0_hz * declination * (1.0 + accent + drift + jitter)


def _glottal_source(f0: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Pulse train at the f0 contour (a pulse at every phase wrap), tilted -12 dB/octave, plus aspiration."""
    phase = np.cumsum(f0 / sr)
    pulses = np.zeros_like(f0)
    wraps = np.nonzero(np.diff(np.floor(phase)))[0] + 1
    pulses[wraps] = 1.0 + rng.normal(0.0, 0.05, len(wraps))  # shimmer
    tilted = signal.lfilter([1.0], [1.0, -1.94, 0.9409], pulses)  # double pole at 0.97
    radiated = np.diff(tilted, prepend=0.0)  # lip radiation, +6 dB/octave
    radiated /= np.max(np.abs(radiated)) + 1e-12
    return radiated + 0.02 * rng.standard_normal(len(f0))


def _formant_filter(x: np.ndarray, formants: np.ndarray, sr: int) -> np.ndarray:
    """A cascade of four 2-pole resonators (unit gain at DC) whose centres follow ``formants`` (n, 4).

    Applied frame by frame in the frequency domain: each Hann-windowed frame (32 ms, hop 8 ms) is
    multiplied by the cascade's complex response at the formants of its centre, zero-padded so the
    resonances ring out without wrapping, and overlap-added.
    """
    n = len(x)
    pad = np.concatenate([np.zeros(FRAME), np.asarray(x, dtype=float), np.zeros(FRAME)])
    starts = np.arange(0, len(pad) - FRAME + 1, HOP)
    window = np.hanning(FRAME + 1)[:-1]
    frames = pad[starts[:, None] + np.arange(FRAME)] * window
    spec = np.fft.rfft(frames, n=2 * FRAME)
    centre = np.clip(starts + FRAME // 2 - FRAME, 0, n - 1)
    freqs = np.minimum(formants[centre], 0.45 * sr)  # (F, 4)
    z1 = np.exp(-1j * np.pi * np.arange(FRAME + 1) / FRAME)  # e^{-jw} on the rfft grid of 2*FRAME
    response = np.ones(spec.shape, dtype=complex)
    for k, bw in enumerate(BANDWIDTHS_HZ):
        r = np.exp(-np.pi * bw / sr)
        a1 = (-2.0 * r * np.cos(2.0 * np.pi * freqs[:, k] / sr))[:, None]
        a2 = r * r
        response *= (1.0 + a1 + a2) / (1.0 + a1 * z1 + a2 * z1 * z1)
    out_frames = np.fft.irfft(spec * response, n=2 * FRAME)
    out = np.zeros(len(pad) + FRAME)
    np.add.at(out, starts[:, None] + np.arange(2 * FRAME), out_frames)
    return out[FRAME : FRAME + n] * (HOP / window.sum())


@lru_cache(maxsize=64)
def _bandpass(lo: float, hi: float, sr: int) -> np.ndarray:
    return signal.butter(4, [lo, hi], btype="bandpass", fs=sr, output="sos")


def _frication(tracks: _Tracks, rng: np.random.Generator, sr: int) -> np.ndarray:
    noise = rng.standard_normal(tracks.n)
    out = np.zeros(tracks.n)
    active = tracks.frication > 0
    if not active.any():
        return out
    # one band-pass per distinct centre (one per consonant)
    for centre in np.unique(tracks.fric_centre[active]):
        mask = active & (tracks.fric_centre == centre)
        lo, hi = centre / 1.6, min(centre * 1.4, 0.47 * sr)
        out[mask] = signal.sosfilt(_bandpass(lo, hi, sr), noise)[mask]
    return out * tracks.frication


def synth_speech(
    voice: Voice,
    duration_s: float = 3.0,
    seed: int | np.random.Generator = 0,
    sr: int = SAMPLE_RATE,
) -> np.ndarray:
    """A speech-like clip (float32, mono, ``sr`` Hz, RMS of active speech about -20 dBFS)."""
    if not 0.5 <= duration_s <= 30.0:
        raise ConfigError(f"synth_speech: expected a duration of 0.5-30 s, got {duration_s}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    tracks = _plan(duration_s, voice, rng, sr)
    f0 = _f0_contour(tracks.n, voice, tracks.accent, rng, sr)
    voiced = _formant_filter(_glottal_source(f0, rng, sr) * tracks.voicing, tracks.formants, sr)
    voiced /= np.sqrt(np.mean(voiced[tracks.voicing > 0.3] ** 2)) + 1e-12
    x = voiced + _frication(tracks, rng, sr)
    active = (tracks.voicing > 0.3) | (tracks.frication > 0.1)
    x *= 0.1 / (np.sqrt(np.mean(x[active] ** 2)) + 1e-12)  # -20 dBFS active level
    peak = np.max(np.abs(x))
    if peak > 0.95:
        x *= 0.95 / peak
    return x.astype(np.float32)
