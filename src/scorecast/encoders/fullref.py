"""``fullref``: classic full-reference quality measures of a stimulus against its reference clip.

The encoder reads two audio inputs: ``spec.input`` (the stimulus) and the named audio field that its
``reference`` param gives (``item.audios[reference]``, e.g. the MUSHRA reader's ``reference``); the
cache key covers both clips' content. Both arrive mono at ``sample_rate`` (the pipeline resamples
each file with soxr, whatever its own rate), are aligned (``align``: the delay at the peak of the
cross-correlation of their log envelopes, 1 ms steps, within ``max_delay_s``, which also holds for
vocoders that do not keep the phase; ``waveform``: of the samples; ``none``; the later clip is
advanced and both are cut to their overlap, :func:`scorecast.encoders._signal_measures.align`) and
compared:

=================  ==========================================================================  ==============
measure            values (:meth:`FullReferenceEncoder.feature_names`, in this order)           library
=================  ==========================================================================  ==============
``stoi``           STOI (0-1)                                                                   pystoi
``estoi``          extended STOI                                                                pystoi
``pesq``           ``pesq_wb``: wide-band PESQ MOS-LQO (1.04-4.64) at 16 kHz (soxr-resampled)   pesq (ITU P.862.2)
``bandwidth``      ``bandwidth_khz``, ``bandwidth_ref_khz``, ``bandwidth_ratio`` (stim / ref)   numpy
``lsd``            ``lsd_<lo>_<hi>k``: log-spectral distance (dB) per band of ``bands_hz``       numpy
``segsnr``         ``segsnr_db``: segmental SNR, frames clipped to [-10, 35] dB                  numpy
``mcd``            ``mcd_db``: MFCC-based mel-cepstral distance                                  numpy/scipy
``level``          ``level_db``: level of the stimulus relative to the reference                numpy
=================  ==========================================================================  ==============

The definitions (active frames, spectral floor, bandwidth threshold) are in
:mod:`scorecast.encoders._signal_measures`. A band empty in both clips (e.g. 8-12 kHz of two 16 kHz
recordings) has a log-spectral distance of 0; a band above ``sample_rate / 2`` is a ConfigError.

Refused, with a DataError that the pipeline restates with the item, its file and its reference file:
an empty or silent clip (peak below 1e-6), an overlap after alignment shorter than ``min_seconds``,
too little speech for STOI (pystoi's 30-frame minimum after its own silence removal) and the
PESQ library's own refusals (no utterances found, buffer too short).

Recipe params: ``reference`` (required: the audio field), ``measures`` (default: all of the table),
``sample_rate`` (48000), ``bands_hz`` (the edges 0, 4, 8, 16, 24 kHz below ``sample_rate / 2``, then
``sample_rate / 2``: 0-4-8-12 kHz at 24 kHz), ``max_delay_s`` (0.25), ``align`` (envelope),
``bandwidth_db`` (60), ``active_db`` (40), ``floor_db`` (80), ``n_mels`` (40), ``n_mfcc`` (13),
``min_seconds`` (0.5).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from scorecast.encoders import _signal_measures as sm
from scorecast.encoders._hf_common import package_version
from scorecast.encoders.base import ENCODERS, Encoded, Encoder
from scorecast.errors import ConfigError, DataError

MEASURES = ("stoi", "estoi", "pesq", "bandwidth", "lsd", "segsnr", "mcd", "level")
SILENT_PEAK = 1e-6
PESQ_RATE = 16000
DEFAULT_BANDS_HZ = (0, 4000, 8000, 16000, 24000)


@ENCODERS.register("fullref")
class FullReferenceEncoder(Encoder):
    """Full-reference measures of (stimulus, reference) pairs -> a (D,) vector named by ``feature_names()``."""

    modality = "audio"
    parallel_safe = True  # per-clip CPU work: a worker process per core
    reference_param = "reference"

    def __init__(
        self,
        reference: str,
        measures: list[str] | None = None,
        sample_rate: int = 48000,
        bands_hz: list[float] | None = None,
        max_delay_s: float = 0.25,
        align: str = "envelope",
        bandwidth_db: float = 60.0,
        active_db: float = 40.0,
        floor_db: float = 80.0,
        n_mels: int = 40,
        n_mfcc: int = 13,
        min_seconds: float = 0.5,
    ) -> None:
        self.reference = reference
        self.measures = list(MEASURES if measures is None else measures)
        unknown = [m for m in self.measures if m not in MEASURES]
        if unknown or not self.measures or len(set(self.measures)) != len(self.measures):
            raise ConfigError(
                f"fullref: measures: expected distinct names among {', '.join(MEASURES)}, got {self.measures}"
            )
        self.sample_rate = int(sample_rate)
        if self.sample_rate < 8000:
            raise ConfigError(f"fullref: sample_rate: expected >= 8000 Hz, got {sample_rate}")
        if bands_hz is None:  # the default edges up to the Nyquist frequency, which closes the last band
            bands_hz = [b for b in DEFAULT_BANDS_HZ if b < self.sample_rate / 2] + [self.sample_rate / 2]
        self.bands_hz = [float(b) for b in bands_hz]
        self._check_bands()
        for name, value in (("max_delay_s", max_delay_s), ("min_seconds", min_seconds)):
            if not value >= 0:
                raise ConfigError(f"fullref: {name}: expected a number >= 0, got {value}")
        for name, value in (("bandwidth_db", bandwidth_db), ("active_db", active_db), ("floor_db", floor_db)):
            if not value > 0:
                raise ConfigError(f"fullref: {name}: expected a positive number of dB, got {value}")
        if not (1 <= n_mfcc < n_mels):
            raise ConfigError(f"fullref: expected 1 <= n_mfcc < n_mels, got n_mfcc={n_mfcc}, n_mels={n_mels}")
        if align not in sm.ALIGN_METHODS:
            raise ConfigError(f"fullref: align: expected one of {', '.join(sm.ALIGN_METHODS)}, got {align!r}")
        self.align = align
        self.max_delay_s, self.min_seconds = float(max_delay_s), float(min_seconds)
        self.bandwidth_db, self.active_db, self.floor_db = float(bandwidth_db), float(active_db), float(floor_db)
        self.n_mels, self.n_mfcc = int(n_mels), int(n_mfcc)
        if "pesq" in self.measures:
            _import_pesq()  # fail at set-up, not at the first clip

    def _check_bands(self) -> None:
        b, nyquist = self.bands_hz, self.sample_rate / 2
        if len(b) < 2 or b[0] < 0 or any(hi <= lo for lo, hi in zip(b[:-1], b[1:])):
            raise ConfigError(f"fullref: bands_hz: expected >= 2 increasing edges from >= 0 Hz, got {b}")
        if b[-1] > nyquist:
            raise ConfigError(
                f"fullref: bands_hz: the edge {b[-1]:g} Hz lies above the Nyquist frequency {nyquist:g} Hz of "
                f"sample_rate {self.sample_rate}; lower the edges or raise sample_rate"
            )
        empty = [f"{lo:g}-{hi:g}" for lo, hi, m in zip(b[:-1], b[1:], sm.band_bins(b, self.sample_rate)) if not m.any()]
        if empty:
            raise ConfigError(f"fullref: bands_hz: band(s) {', '.join(empty)} Hz hold no bin of the 32 ms spectrum")

    def identity(self) -> dict[str, Any]:
        return {
            "name": "fullref",
            "version": 1,
            "measures": self.measures,
            "sample_rate": self.sample_rate,
            "bands_hz": self.bands_hz,
            "max_delay_s": self.max_delay_s,
            "align": self.align,
            "bandwidth_db": self.bandwidth_db,
            "active_db": self.active_db,
            "floor_db": self.floor_db,
            "n_mels": self.n_mels,
            "n_mfcc": self.n_mfcc,
            "min_seconds": self.min_seconds,
            "pystoi": package_version("pystoi") if {"stoi", "estoi"} & set(self.measures) else None,
            "pesq": package_version("pesq") if "pesq" in self.measures else None,
        }

    def feature_names(self) -> list[str]:
        names = []
        for m in self.measures:
            names += {
                "pesq": ["pesq_wb"],
                "bandwidth": ["bandwidth_khz", "bandwidth_ref_khz", "bandwidth_ratio"],
                "lsd": [f"lsd_{_khz(lo)}_{_khz(hi)}k" for lo, hi in zip(self.bands_hz[:-1], self.bands_hz[1:])],
                "segsnr": ["segsnr_db"],
                "mcd": ["mcd_db"],
                "level": ["level_db"],
            }.get(m, [m])
        return names

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        return [Encoded(self.measure(*_pair(x, i))) for i, x in enumerate(inputs)]

    def measure(self, stimulus: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """The (D,) float32 measures of one stimulus against its reference (both mono at ``sample_rate``)."""
        sr = self.sample_rate
        for what, x in (("stimulus", stimulus), ("reference", reference)):
            if x.size == 0 or float(np.max(np.abs(x))) < SILENT_PEAK:
                raise DataError(f"fullref: the {what} is {'empty' if x.size == 0 else 'silent'} (peak below 1e-6)")
        stim, ref, _delay = sm.align(stimulus, reference, sr, self.max_delay_s, self.align)
        if stim.size < max(self.min_seconds * sr, sm.frame_length(sr)):
            raise DataError(
                f"fullref: expected at least {self.min_seconds:g} s of overlap between stimulus and reference after "
                f"alignment, got {stim.size / sr:.3f} s"
            )
        fs, fr = sm.frames(stim, sr), sm.frames(ref, sr)
        active = sm.active_frames(fr, self.active_db)
        fs, fr = fs[active], fr[active]
        if not np.any(fs):
            raise DataError("fullref: the stimulus is silent wherever the reference is active")
        ps, pr = sm.power_spectra(fs), sm.power_spectra(fr)
        out: list[float] = []
        for m in self.measures:
            if m in ("stoi", "estoi"):
                out.append(_stoi(ref, stim, sr, extended=m == "estoi"))
            elif m == "pesq":
                out.append(_pesq_wb(ref, stim, sr))
            elif m == "bandwidth":
                bw, bw_ref = sm.bandwidth_hz(ps, sr, self.bandwidth_db), sm.bandwidth_hz(pr, sr, self.bandwidth_db)
                out += [bw / 1000, bw_ref / 1000, bw / bw_ref if bw_ref > 0 else 1.0]
            elif m == "lsd":
                masks = sm.band_bins(self.bands_hz, sr)
                out += sm.log_spectral_distance(
                    sm.floored(ps, pr, self.floor_db), sm.floored(pr, pr, self.floor_db), masks
                )
            elif m == "segsnr":
                out.append(sm.segmental_snr(fs, fr))
            elif m == "mcd":
                out.append(sm.mel_cepstral_distance(ps, pr, sr, self.n_mels, self.n_mfcc, self.floor_db))
            else:  # level
                out.append(sm.level_difference_db(fs, fr))
        return np.asarray(out, dtype=np.float32)


def _khz(hz: float) -> str:
    return f"{hz / 1000:g}".replace(".", "p")


def _pair(x: Any, i: int) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(x, tuple) and len(x) == 2):
        raise DataError(
            f"fullref: expected a (stimulus, reference) pair of waveforms for input {i}, got {type(x).__name__}"
        )
    a, b = (np.asarray(w, dtype=np.float64) for w in x)
    if a.ndim != 1 or b.ndim != 1:
        raise DataError(f"fullref: expected two mono waveforms for input {i}, got shapes {a.shape} and {b.shape}")
    return a, b


def _stoi(ref: np.ndarray, stim: np.ndarray, sr: int, extended: bool) -> float:
    from pystoi import stoi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = stoi(ref, stim, sr, extended=extended)
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        raise DataError(
            "fullref: too little speech for STOI: expected at least 30 frames of 25.6 ms (about 0.4 s) within 40 dB "
            "of the loudest frame after pystoi's silence removal"
        )
    return float(value)


def _import_pesq():
    try:
        import pesq
    except ImportError as exc:
        raise ConfigError(
            f"fullref: measure 'pesq' needs the 'pesq' package ({exc}); install it with `pip install pesq==0.0.4` "
            "or leave 'pesq' out of measures"
        ) from None
    return pesq


def _pesq_wb(ref: np.ndarray, stim: np.ndarray, sr: int) -> float:
    pesq = _import_pesq()
    if sr != PESQ_RATE:
        import soxr

        ref, stim = soxr.resample(ref, sr, PESQ_RATE, "HQ"), soxr.resample(stim, sr, PESQ_RATE, "HQ")
    try:
        return float(pesq.pesq(PESQ_RATE, ref, stim, "wb"))
    except pesq.PesqError as exc:
        raise DataError(f"fullref: PESQ refused the pair: {type(exc).__name__}: {exc}") from None
