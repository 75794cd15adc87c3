"""Speech-like audio made on the spot, and controlled impairments of it (no download needed).

A clip is a source-filter synthesis: a glottal pulse train whose f0 follows a prosodic contour
(declination, accents on stressed syllables, slow drift, jitter) is shaped by a spectral tilt and a
cascade of four time-varying formant resonators moving between vowel targets; fricative noise and
plosive bursts sit between the vowels, and pauses between the words. Every random choice comes from
one ``numpy.random.Generator``, so a seed gives the same samples every time.

Impairments (each a plain function of a waveform and one severity parameter; :data:`IMPAIRMENTS`
names them and the ranges :func:`scorecast.demo.make_corpus` draws from):

============  =====================================  ==============================================
condition     function                               parameter (range drawn by the demo corpus)
============  =====================================  ==============================================
``noise``     :func:`add_noise` (white or pink)      SNR in dB (-5 .. 25, uniform)
``lowpass``   :func:`band_limit`                     cut-off in Hz (300 .. 4000, log-uniform)
``clip``      :func:`hard_clip`                      threshold, a fraction of the peak (0.005 .. 0.5, log)
``dropout``   :func:`drop_frames`                    rate of zeroed 20-ms frames (0.02 .. 0.5, uniform)
``reverb``    :func:`add_reverb`                     RT60 in s (0.1 .. 3.0, log-uniform) 
``quantise``  :func:`quantise`                       mu-law bits (2 .. 7, integers)
``mixed``     noise, then low-pass                   SNR (0 .. 25 dB) and cut-off (500 .. 4000 Hz)
``clean``     none                                   -
============  =====================================  ==============================================

Labels: :func:`quality_score` maps STOI (Taal et al. 2011, from ``pystoi``) of the impaired clip
against its clean original to a 1-5 MOS-like scale (see :data:`STOI_FLOOR`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from collections.abc import Callable

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


# ----------------------------------------------------------------------------- impairments


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def add_noise(
    x: np.ndarray, snr_db: float, seed: int | np.random.Generator | None = 0, color: str = "white"
) -> np.ndarray:
    """``x`` plus stationary noise scaled so that 10 log10(P_x / P_noise) = ``snr_db`` exactly
    (powers are means over the whole clip). ``color`` is ``white`` or ``pink`` (-3 dB/octave)."""
    if color not in ("white", "pink"):
        raise ConfigError(f"add_noise: expected color 'white' or 'pink', got '{color}'")
    rng = _rng(seed)
    noise = rng.standard_normal(len(x))
    if color == "pink":
        spec = np.fft.rfft(noise)
        f = np.arange(len(spec), dtype=float)
        f[0] = 1.0
        noise = np.fft.irfft(spec / np.sqrt(f), n=len(x))
    p_x = np.mean(np.asarray(x, dtype=float) ** 2)
    p_n = np.mean(noise**2)
    noise *= np.sqrt(p_x / (p_n * 10.0 ** (snr_db / 10.0)))
    return (x + noise).astype(np.float32)


def band_limit(x: np.ndarray, cutoff_hz: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Low-pass at ``cutoff_hz`` (8th-order Butterworth, zero phase: -96 dB/octave beyond it)."""
    if not 0.0 < cutoff_hz < sr / 2:
        raise ConfigError(f"band_limit: expected 0 < cutoff_hz < {sr / 2:g}, got {cutoff_hz}")
    sos = signal.butter(8, cutoff_hz, btype="lowpass", fs=sr, output="sos")
    return signal.sosfiltfilt(sos, np.asarray(x, dtype=float)).astype(np.float32)


def hard_clip(x: np.ndarray, threshold: float) -> np.ndarray:
    """Clip samples to +-``threshold`` x peak amplitude (``threshold`` in (0, 1]), then restore the
    peak (as an overdriven input stage followed by make-up gain)."""
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"hard_clip: expected 0 < threshold <= 1 (a fraction of the peak), got {threshold}")
    peak = float(np.max(np.abs(x))) or 1.0
    return (np.clip(x, -threshold * peak, threshold * peak) / threshold).astype(np.float32)


def drop_frames(
    x: np.ndarray, rate: float, seed: int | np.random.Generator | None = 0, frame_ms: float = 20.0,
    sr: int = SAMPLE_RATE,
) -> np.ndarray:
    """Packet loss: each ``frame_ms`` frame is zeroed independently with probability ``rate``."""
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"drop_frames: expected 0 <= rate <= 1, got {rate}")
    hop = int(round(frame_ms * sr / 1000.0))
    lost = _rng(seed).random(int(np.ceil(len(x) / hop))) < rate
    mask = np.repeat(~lost, hop)[: len(x)]
    return (x * mask).astype(np.float32)


def add_reverb(
    x: np.ndarray, rt60_s: float, seed: int | np.random.Generator | None = 0, sr: int = SAMPLE_RATE
) -> np.ndarray:
    """Convolve with a synthetic room response: a direct path plus exponentially decaying noise that
    reaches -60 dB after ``rt60_s``. The tail's energy is ``rt60_s / 0.5`` times the direct path's
    (direct-to-reverberant ratio +10 dB at 0.05 s, 0 dB at 0.5 s, -3 dB at 1 s, as rooms grow
    livelier). The output keeps the input's RMS."""
    if not rt60_s > 0:
        raise ConfigError(f"add_reverb: expected rt60_s > 0, got {rt60_s}")
    rng = _rng(seed)
    length = max(int(rt60_s * sr), 2)
    t = np.arange(length) / sr
    tail = rng.standard_normal(length) * 10.0 ** (-3.0 * t / rt60_s)
    tail[: int(0.002 * sr) + 1] = 0.0  # first reflections arrive after 2 ms
    tail *= np.sqrt((rt60_s / 0.5) / (np.sum(tail**2) + 1e-20))
    ir = tail
    ir[0] = 1.0
    xf = np.asarray(x, dtype=float)
    y = signal.fftconvolve(xf, ir)[: len(x)]
    y *= np.sqrt(np.mean(xf**2) / (np.mean(y**2) + 1e-20))
    return y.astype(np.float32)


def quantise(x: np.ndarray, bits: int, mu: float = 255.0) -> np.ndarray:
    """Codec-like coarse quantisation: mu-law companding to ``2**bits`` levels over the peak and back."""
    if not 1 <= int(bits) <= 16:
        raise ConfigError(f"quantise: expected 1 <= bits <= 16, got {bits}")
    peak = float(np.max(np.abs(x))) or 1.0
    v = np.asarray(x, dtype=float) / peak
    c = np.sign(v) * np.log1p(mu * np.abs(v)) / np.log1p(mu)
    levels = 2 ** int(bits) - 1
    c = np.round((c + 1.0) / 2.0 * levels) / levels * 2.0 - 1.0
    y = np.sign(c) * np.expm1(np.abs(c) * np.log1p(mu)) / mu
    return (y * peak).astype(np.float32)


# ----------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Impairment:
    """One condition of the demo corpus: how to draw its severity and how to apply it.

    ``draw(rng) -> {param: value}``; ``apply(x, params, rng) -> impaired x``. ``level`` names the
    parameter reported as the condition's level (None for ``clean``).
    """

    name: str
    level: str | None
    draw: Callable[[np.random.Generator], dict[str, float]]
    apply: Callable[[np.ndarray, dict[str, float], np.random.Generator], np.ndarray]


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _noise(x: np.ndarray, p: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    return add_noise(x, p["snr_db"], rng, color="pink" if p.get("pink", 0.0) else "white")


IMPAIRMENTS: dict[str, Impairment] = {
    imp.name: imp
    for imp in (
        Impairment("clean", None, lambda rng: {}, lambda x, p, rng: np.asarray(x, dtype=np.float32)),
        Impairment(
            "noise", "snr_db",
            lambda rng: {"snr_db": float(rng.uniform(-5.0, 25.0)), "pink": float(rng.random() < 0.5)},
            _noise,
        ),
        Impairment(
            "lowpass", "cutoff_hz", lambda rng: {"cutoff_hz": _log_uniform(rng, 300.0, 4000.0)},
            lambda x, p, rng: band_limit(x, p["cutoff_hz"]),
        ),
        Impairment(
            "clip", "threshold", lambda rng: {"threshold": _log_uniform(rng, 0.005, 0.5)},
            lambda x, p, rng: hard_clip(x, p["threshold"]),
        ),
        Impairment(
            "dropout", "rate", lambda rng: {"rate": float(rng.uniform(0.02, 0.5))},
            lambda x, p, rng: drop_frames(x, p["rate"], rng),
        ),
        Impairment(
            "reverb", "rt60_s", lambda rng: {"rt60_s": _log_uniform(rng, 0.1, 3.0)},
            lambda x, p, rng: add_reverb(x, p["rt60_s"], rng),
        ),
        Impairment(
            "quantise", "bits", lambda rng: {"bits": float(rng.integers(2, 8))},
            lambda x, p, rng: quantise(x, int(p["bits"])),
        ),
        Impairment(
            "mixed", "snr_db",
            lambda rng: {"snr_db": float(rng.uniform(0.0, 25.0)), "cutoff_hz": _log_uniform(rng, 500.0, 4000.0)},
            lambda x, p, rng: band_limit(add_noise(x, p["snr_db"], rng), p["cutoff_hz"]),
        ),
    )
}


def impair(
    x: np.ndarray, condition: str, params: dict[str, float] | None = None,
    seed: int | np.random.Generator | None = 0,
) -> tuple[np.ndarray, dict[str, float]]:
    """Apply ``condition`` to ``x`` at ``params`` (drawn from the condition's range when None).
    Returns (impaired waveform, the parameters used)."""
    if condition not in IMPAIRMENTS:
        raise ConfigError(f"unknown impairment '{condition}'; expected one of: {', '.join(IMPAIRMENTS)}")
    imp = IMPAIRMENTS[condition]
    rng = _rng(seed)
    params = dict(imp.draw(rng) if params is None else params)
    return imp.apply(x, params, rng), params


# ----------------------------------------------------------------------------- labels

STOI_FLOOR = 0.55
"""STOI at or below this maps to score 1; the scale is linear from there up to STOI 1 -> score 5."""


def stoi_to_score(stoi: float | np.ndarray) -> float | np.ndarray:
    """The label mapping: ``score = 1 + 4 * clip((stoi - STOI_FLOOR) / (1 - STOI_FLOOR), 0, 1)``.

    STOI of a clean clip against itself is 1 (score 5); STOI of 0.55 or less (score 1) is what
    -5 dB SNR white noise, a 300 Hz low-pass or clipping at 1 % of the peak do to these clips: speech
    that is hard to follow. The floor spreads the demo corpus over the whole 1-5 scale. The mapping is monotone, so ranking by score is ranking by STOI.
    """
    s = np.clip((np.asarray(stoi, dtype=float) - STOI_FLOOR) / (1.0 - STOI_FLOOR), 0.0, 1.0)
    out = 1.0 + 4.0 * s
    return float(out) if out.ndim == 0 else out


def quality_score(clean: np.ndarray, impaired: np.ndarray, sr: int = SAMPLE_RATE) -> tuple[float, float]:
    """(score 1-5, STOI) of ``impaired`` against its ``clean`` original."""
    from pystoi import stoi

    if len(clean) != len(impaired):
        raise ConfigError(f"quality_score: expected equal lengths, got {len(clean)} and {len(impaired)}")
    value = float(stoi(np.asarray(clean, dtype=float), np.asarray(impaired, dtype=float), sr))
    return float(stoi_to_score(value)), value
