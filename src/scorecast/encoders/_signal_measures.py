"""Signal measures that compare a stimulus with its reference (numpy/scipy only), for :mod:`fullref`.

Both waveforms are mono float at one sample rate ``sr``. The frame measures share one framing
(:func:`frames`: 32 ms Hann frames, 16 ms hop) and one set of *active* frames: those whose reference
energy lies within ``active_db`` (40 dB) of the reference's loudest frame, as STOI and segmental SNR
leave out silence. Power spectra are floored at ``floor_db`` (80 dB) below the reference's mean power
per bin over its active frames, so a band that is empty in both clips gives a log-spectral distance of
0 and an emptied band a large finite one, never log(0).

* :func:`align`: the delay at the peak of the cross-correlation of the two clips' log envelopes (or
  waveforms) within ``max_delay_s``; the later clip is advanced by it and both are cut to their overlap.
* :func:`bandwidth_hz`: the highest frequency whose long-term power (mean over active frames) is
  within ``bandwidth_db`` (60 dB) of the long-term spectrum's peak.
* :func:`log_spectral_distance`: per band, the mean over active frames of the RMS (over the band's
  bins) of the difference of the two log power spectra, in dB.
* :func:`segmental_snr`: per active frame 10 log10(reference energy / energy of reference - stimulus),
  clipped to [-10, 35] dB, averaged (Quackenbush et al. 1988).
* :func:`mel_cepstral_distance`: (10 / ln 10) sqrt(2 sum_k (c_k - c'_k)^2) over MFCCs 1..n_mfcc (the
  DCT-II of the log of ``n_mels`` HTK mel band energies; c_0, the level, left out), averaged over
  active frames: the MFCC form of MCD that TTS evaluations use (not SPTK's mel-generalised cepstrum).
* :func:`level_difference_db`: 10 log10 of the stimulus's mean power over the reference's, active frames.
"""

from __future__ import annotations

import numpy as np

FRAME_S = 0.032
SEGSNR_RANGE = (-10.0, 35.0)


ALIGN_METHODS = ("envelope", "waveform", "none")
ENVELOPE_HOP_S, ENVELOPE_WINDOW_S, ENVELOPE_FLOOR_DB = 0.001, 0.004, 60.0


def align(
    stimulus: np.ndarray, reference: np.ndarray, sr: int, max_delay_s: float, method: str = "envelope"
) -> tuple[np.ndarray, np.ndarray, int]:
    """(stimulus, reference, delay): the stimulus's delay behind the reference in samples (negative: ahead)
    at the peak of a cross-correlation over lags within ``max_delay_s``; the delayed clip is advanced by it
    and both are cut to the same length (their overlap).

    ``envelope`` (default) correlates the two log RMS envelopes (4 ms windows every 1 ms, floored 60 dB
    below their peak, mean removed): 1 ms resolution, and it works for codecs that resynthesise speech
    without its phase (vocoders), where the waveforms' correlation peaks at a random lag. ``waveform``
    correlates the samples (sample-exact for waveform-matching codecs). ``none``: delay 0."""
    from scipy.signal import correlate, correlation_lags

    if method == "none":
        delay = 0
    else:
        step = max(1, int(round(ENVELOPE_HOP_S * sr))) if method == "envelope" else 1
        a, b = (log_envelope(x, sr) for x in (stimulus, reference)) if step > 1 else (stimulus, reference)
        xc = correlate(a, b, mode="full", method="fft")
        lags = correlation_lags(a.size, b.size, mode="full")
        window = np.abs(lags) <= int(round(max_delay_s * sr)) // step
        delay = int(lags[window][np.argmax(xc[window])]) * step
    if delay > 0:
        stimulus = stimulus[delay:]
    elif delay < 0:
        reference = reference[-delay:]
    n = min(stimulus.size, reference.size)
    return stimulus[:n], reference[:n], delay


def log_envelope(x: np.ndarray, sr: int) -> np.ndarray:
    """The mean-removed log RMS envelope of ``x``: 4 ms windows every 1 ms, floored 60 dB below the peak."""
    hop, win = max(1, int(round(ENVELOPE_HOP_S * sr))), max(1, int(round(ENVELOPE_WINDOW_S * sr)))
    count = 1 + (x.size - win) // hop if x.size >= win else 0
    if count == 0:
        return np.zeros(1)
    idx = np.arange(win)[None, :] + hop * np.arange(count)[:, None]
    rms = np.sqrt((x[idx].astype(np.float64) ** 2).mean(axis=1))
    env = np.log(np.maximum(rms, rms.max() * 10 ** (-ENVELOPE_FLOOR_DB / 20) + 1e-30))
    return env - env.mean()


def frame_length(sr: int) -> int:
    return int(round(FRAME_S * sr))


def frames(x: np.ndarray, sr: int) -> np.ndarray:
    """(F, L) frames of ``x``: L = 32 ms of samples, hop L // 2, only whole frames (none if x is shorter)."""
    n = frame_length(sr)
    hop = n // 2
    count = 0 if x.size < n else 1 + (x.size - n) // hop
    idx = np.arange(n)[None, :] + hop * np.arange(count)[:, None]
    return x[idx] if count else np.zeros((0, n), x.dtype)


def power_spectra(framed: np.ndarray) -> np.ndarray:
    """(F, L // 2 + 1) power spectra of frames under a periodic (DFT-even) Hann window, as STFTs use: a sine
    centred on a bin leaks into its two neighbours only."""
    n = framed.shape[1]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    return np.abs(np.fft.rfft(framed * window, axis=1)) ** 2


def bin_frequencies(sr: int) -> np.ndarray:
    return np.fft.rfftfreq(frame_length(sr), 1.0 / sr)


def active_frames(ref_framed: np.ndarray, active_db: float) -> np.ndarray:
    """(F,) bool: frames whose energy is above zero and within ``active_db`` of the loudest frame's."""
    energy = (ref_framed.astype(np.float64) ** 2).sum(axis=1)
    if energy.size == 0 or energy.max() <= 0:
        return np.zeros(energy.shape, bool)
    return (energy > 0) & (energy >= energy.max() * 10 ** (-active_db / 10))


def floored(power: np.ndarray, ref_power: np.ndarray, floor_db: float) -> np.ndarray:
    """``power`` floored at ``floor_db`` below the reference's mean power per bin."""
    return np.maximum(power, ref_power.mean() * 10 ** (-floor_db / 10))


def bandwidth_hz(power: np.ndarray, sr: int, bandwidth_db: float) -> float:
    """The highest bin frequency whose long-term power (mean of the (F, K) ``power`` over frames) is
    within ``bandwidth_db`` of the long-term spectrum's peak."""
    long_term = power.mean(axis=0)
    above = np.flatnonzero(long_term >= long_term.max() * 10 ** (-bandwidth_db / 10))
    return float(bin_frequencies(sr)[above[-1]])


def band_bins(edges_hz: list[float], sr: int) -> list[np.ndarray]:
    """Per band [lo, hi) (the last band also holds hi itself), the bool mask of its spectrum bins."""
    freqs = bin_frequencies(sr)
    masks = []
    for i, (lo, hi) in enumerate(zip(edges_hz[:-1], edges_hz[1:])):
        last = i == len(edges_hz) - 2
        masks.append((freqs >= lo) & ((freqs <= hi) if last else (freqs < hi)))
    return masks


def log_spectral_distance(stim_power: np.ndarray, ref_power: np.ndarray, masks: list[np.ndarray]) -> list[float]:
    """Per band mask, mean over frames of sqrt(mean over the band's bins of (10 log10 P_ref - 10 log10 P_stim)^2),
    dB; both (F, K) spectra already floored."""
    diff = 10 * np.log10(ref_power) - 10 * np.log10(stim_power)
    return [float(np.sqrt((diff[:, m] ** 2).mean(axis=1)).mean()) for m in masks]


def segmental_snr(stim_framed: np.ndarray, ref_framed: np.ndarray) -> float:
    """Mean over (the given, unwindowed) frames of the clipped frame SNR, dB (see the module docstring)."""
    signal = (ref_framed.astype(np.float64) ** 2).sum(axis=1)
    noise = ((ref_framed.astype(np.float64) - stim_framed) ** 2).sum(axis=1)
    with np.errstate(divide="ignore"):
        snr = 10 * np.log10(signal / np.maximum(noise, 1e-20))
    return float(np.clip(snr, *SEGSNR_RANGE).mean())


def mel_filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular HTK mel filters from 0 Hz to sr / 2 (peak 1, unnormalised)."""

    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def hz(m):
        return 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = hz(np.linspace(0.0, mel(sr / 2), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lower) / (centre - lower)
    falling = (upper - freqs[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def mfcc(power: np.ndarray, fbank: np.ndarray, floor: float, n_mfcc: int) -> np.ndarray:
    """(F, n_mfcc) MFCCs 1..n_mfcc (orthonormal DCT-II of the natural log of floored mel energies)."""
    from scipy.fft import dct

    mel_energy = np.maximum(power @ fbank.T, floor)
    return dct(np.log(mel_energy), type=2, norm="ortho", axis=1)[:, 1 : n_mfcc + 1]


def mel_cepstral_distance(
    stim_power: np.ndarray, ref_power: np.ndarray, sr: int, n_mels: int, n_mfcc: int, floor_db: float
) -> float:
    """Mean MFCC-based mel-cepstral distance in dB over the frames of the two (F, K) power spectra."""
    fbank = mel_filterbank(sr, frame_length(sr), n_mels)
    floor = float((ref_power @ fbank.T).mean()) * 10 ** (-floor_db / 10)
    diff = mfcc(stim_power, fbank, floor, n_mfcc) - mfcc(ref_power, fbank, floor, n_mfcc)
    return float((10.0 / np.log(10.0) * np.sqrt(2.0 * (diff**2).sum(axis=1))).mean())


def level_difference_db(stim_framed: np.ndarray, ref_framed: np.ndarray) -> float:
    """10 log10 of the stimulus's energy over the reference's in the given frames (the stimulus's energy floored
    at 1e-20: a silent stimulus is refused before this is reached)."""
    s = float((stim_framed.astype(np.float64) ** 2).sum())
    r = float((ref_framed.astype(np.float64) ** 2).sum())
    return float(10 * np.log10(max(s, 1e-20) / r))
