"""``music``: essentia descriptors of music at 44.1 kHz (essentia's rhythm and onset algorithms
assume that rate): loudness and dynamics, spectral shape (frame statistics), MFCCs, rhythm (BPM,
beat confidence, onset rate, danceability) and tonality (key strength, mode, key, chroma).

Output: a (61,) vector; ``MusicEncoder.feature_names()`` names each value. Spectral statistics
skip silent frames; an all-silent clip is an error (there is nothing to describe). CPU only; safe
in worker processes (``parallel_safe``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from scorecast.encoders._hf_common import package_version
from scorecast.encoders.base import ENCODERS, Encoded, Encoder
from scorecast.errors import DataError

SR = 44100
FRAME, HOP = 2048, 1024
KEYS = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
_FLAT_TO_SHARP = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}
SPECTRAL = ["centroid", "rolloff", "flux", "flatness_db", "complexity", "zcr", "rms"]
SILENT_RMS = 1e-6


def feature_names() -> list[str]:
    names = [f"{s}_{stat}" for s in SPECTRAL for stat in ("mean", "std")]
    names += [f"mfcc{i}_mean" for i in range(13)] + [f"chroma_{k}" for k in KEYS]
    names += ["loudness", "dynamic_complexity", "dynamic_loudness_db", "rms_range_db"]
    names += ["bpm", "beat_confidence", "onset_rate", "danceability"]
    names += ["key_strength", "mode_major"] + [f"key_{k}" for k in KEYS]
    return names


@ENCODERS.register("music")
class MusicEncoder(Encoder):
    """Essentia music descriptors (61,) of a 44.1 kHz waveform."""

    modality = "audio"
    sample_rate = SR
    parallel_safe: ClassVar[bool] = True

    def __init__(self) -> None:
        self._algos: dict[str, Any] | None = None

    def identity(self) -> dict[str, Any]:
        return {
            "name": "music",
            "package": f"essentia=={package_version('essentia')}",
            "sample_rate": SR,
            "frame": FRAME,
            "hop": HOP,
            "features": len(feature_names()),
        }

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_algos": None}

    @staticmethod
    def feature_names() -> list[str]:
        return feature_names()

    @property
    def algos(self) -> dict[str, Any]:
        if self._algos is None:
            import essentia

            essentia.log.warningActive = False
            essentia.log.infoActive = False
            import essentia.standard as es

            self._algos = {
                "window": es.Windowing(type="hann"),
                "spectrum": es.Spectrum(size=FRAME),
                "centroid": es.Centroid(range=SR / 2),
                "rolloff": es.RollOff(sampleRate=SR),
                "flux": es.Flux(),
                "flatness": es.FlatnessDB(),
                "complexity": es.SpectralComplexity(sampleRate=SR),
                "zcr": es.ZeroCrossingRate(),
                "rms": es.RMS(),
                "mfcc": es.MFCC(sampleRate=SR, inputSize=FRAME // 2 + 1, numberCoefficients=13),
                "peaks": es.SpectralPeaks(sampleRate=SR, orderBy="magnitude", magnitudeThreshold=1e-5, maxPeaks=60),
                "hpcp": es.HPCP(sampleRate=SR, size=12, referenceFrequency=440 * 2 ** (3 / 12)),  # bin 0 = C
                "loudness": es.Loudness(),
                "dynamic": es.DynamicComplexity(sampleRate=SR),
                "rhythm": es.RhythmExtractor2013(method="multifeature"),
                "onsets": es.OnsetRate(),
                "dance": es.Danceability(sampleRate=SR),
                "key": es.KeyExtractor(sampleRate=SR),
                "frames": es.FrameGenerator,
            }
        return self._algos

    def describe(self, x: np.ndarray) -> np.ndarray:
        a = self.algos
        per: dict[str, list[float]] = {s: [] for s in SPECTRAL}
        mfccs, chroma, frame_rms = [], [], []
        for frame in a["frames"](x, frameSize=FRAME, hopSize=HOP, startFromZero=True):
            rms = float(a["rms"](frame))
            frame_rms.append(rms)
            if rms < SILENT_RMS:
                continue
            spec = a["spectrum"](a["window"](frame))
            per["centroid"].append(a["centroid"](spec))
            per["rolloff"].append(a["rolloff"](spec))
            per["flux"].append(a["flux"](spec))
            per["flatness_db"].append(a["flatness"](spec))
            per["complexity"].append(a["complexity"](spec))
            per["zcr"].append(a["zcr"](frame))
            per["rms"].append(rms)
            mfccs.append(a["mfcc"](spec)[1])
            freqs, mags = a["peaks"](spec)
            chroma.append(a["hpcp"](freqs, mags))
        if not mfccs:
            raise DataError("music: the clip is silent (every frame's RMS < 1e-6); nothing to describe")
        values = [f(np.asarray(per[s], np.float64)) for s in SPECTRAL for f in (np.mean, np.std)]
        values += list(np.mean(mfccs, axis=0)) + list(np.mean(chroma, axis=0))
        rms_db = 20 * np.log10(np.maximum(np.asarray(frame_rms), 1e-10))
        voiced = rms_db[np.asarray(frame_rms) >= SILENT_RMS]
        dyn, dyn_loud = a["dynamic"](x)
        values += [a["loudness"](x), dyn, dyn_loud, float(np.percentile(voiced, 95) - np.percentile(voiced, 10))]
        bpm, _, beat_conf, _, _ = a["rhythm"](x)
        _, onset_rate = a["onsets"](x)
        dance, _ = a["dance"](x)
        values += [bpm, beat_conf, onset_rate, dance]
        key, scale, strength = a["key"](x)
        onehot = [0.0] * 12
        onehot[KEYS.index(_FLAT_TO_SHARP.get(key, key))] = 1.0
        values += [strength, 1.0 if scale == "major" else 0.0] + onehot
        return np.asarray(values, dtype=np.float32)

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        out = []
        for i, wave in enumerate(inputs):
            arr = np.ascontiguousarray(wave, dtype=np.float32)
            if arr.ndim != 1 or arr.size < FRAME:
                raise DataError(
                    f"music: expected a mono waveform of at least {FRAME} samples for input {i}, got shape {arr.shape}"
                )
            vec = self.describe(arr)
            if not np.all(np.isfinite(vec)):
                bad = [n for n, v in zip(feature_names(), vec) if not np.isfinite(v)][:5]
                raise DataError(f"music: non-finite descriptors for input {i}: {', '.join(bad)}")
            out.append(Encoded(vec))
        return out
