"""``egemaps`` and ``compare``: openSMILE functionals (eGeMAPS v02: 88 values; ComParE 2016: 6373)
computed on the waveform with the ``opensmile`` package. Any audio; CPU only; safe to run in worker
processes (``parallel_safe``), each process building its own extractor.

Recipe params: ``sample_rate`` (the rate the waveform is resampled to first, 16000 by default);
``frame_hop_s`` (0.1) and ``max_frames`` (600) for the frame sequence. With ``sequence: true`` on the
encoder spec, the sequence is the eGeMAPS/ComParE low-level descriptors (10 ms frames) averaged over
``frame_hop_s`` windows, and over equal spans when there would be more than ``max_frames``: what the
temporal and cross-attention fusions read when no pretrained audio model is at hand.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from scorecast.encoders._hf_common import check_positive, package_version
from scorecast.encoders.base import ENCODERS, Encoded, Encoder
from scorecast.errors import DataError


class OpenSmileEncoder(Encoder):
    """Base of the openSMILE functionals encoders: set ``feature_set`` (an opensmile.FeatureSet name)."""

    modality = "audio"
    parallel_safe: ClassVar[bool] = True
    feature_set: ClassVar[str] = ""

    def __init__(
        self, sample_rate: int = 16000, sequence: bool = False, frame_hop_s: float = 0.1, max_frames: int = 600
    ) -> None:
        check_positive("sample_rate", sample_rate, allow_none=False)
        check_positive("frame_hop_s", frame_hop_s, allow_none=False)
        check_positive("max_frames", max_frames, allow_none=False)
        self.sample_rate = int(sample_rate)
        self.sequence = bool(sequence)
        self.frame_hop_s = float(frame_hop_s)
        self.max_frames = int(max_frames)
        self._smile = None
        self._lld = None

    def identity(self) -> dict[str, Any]:
        identity = {
            "name": self.registry_name,
            "package": f"opensmile=={package_version('opensmile')}",
            "feature_set": self.feature_set,
            "feature_level": "Functionals",
            "sample_rate": self.sample_rate,
        }
        if self.sequence:
            identity["sequence"] = {
                "level": "LowLevelDescriptors",
                "frame_hop_s": self.frame_hop_s,
                "max_frames": self.max_frames,
            }
        return identity

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_smile": None, "_lld": None}

    @property
    def lld(self):
        if self._lld is None:
            import opensmile

            self._lld = opensmile.Smile(
                feature_set=getattr(opensmile.FeatureSet, self.feature_set),
                feature_level=opensmile.FeatureLevel.LowLevelDescriptors,
            )
        return self._lld

    def frames(self, wave: np.ndarray, index: int) -> np.ndarray:
        """(T, D) low-level descriptors averaged over ``frame_hop_s`` windows (at most ``max_frames``)."""
        lld = self.lld.process_signal(wave, self.sample_rate).to_numpy(dtype=np.float32)
        if lld.shape[0] == 0:
            raise DataError(f"{self.registry_name}: input {index} is too short for one openSMILE frame")
        per = max(1, int(round(self.frame_hop_s / 0.01)))
        n_out = min(self.max_frames, max(1, int(np.ceil(lld.shape[0] / per))))
        edges = np.linspace(0, lld.shape[0], n_out + 1).round().astype(int)
        seq = np.stack([lld[a : max(b, a + 1)].mean(axis=0) for a, b in zip(edges[:-1], edges[1:])])
        return np.nan_to_num(seq, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    @property
    def smile(self):
        if self._smile is None:
            import opensmile

            self._smile = opensmile.Smile(
                feature_set=getattr(opensmile.FeatureSet, self.feature_set),
                feature_level=opensmile.FeatureLevel.Functionals,
            )
        return self._smile

    def feature_names(self) -> list[str]:
        return list(self.smile.feature_names)

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        out = []
        for i, wave in enumerate(inputs):
            arr = np.asarray(wave, dtype=np.float32)
            if arr.ndim != 1 or arr.size == 0:
                raise DataError(
                    f"{self.registry_name}: expected a non-empty mono waveform for input {i}, got shape {arr.shape}"
                )
            values = self.smile.process_signal(arr, self.sample_rate).to_numpy(dtype=np.float32)[0]
            if not np.all(np.isfinite(values)):
                bad = [n for n, v in zip(self.feature_names(), values) if not np.isfinite(v)][:5]
                raise DataError(
                    f"{self.registry_name}: openSMILE gave non-finite values for input {i} ({', '.join(bad)})"
                )
            out.append(Encoded(values, self.frames(arr, i) if self.sequence else None))
        return out


@ENCODERS.register("egemaps")
class EGeMAPSEncoder(OpenSmileEncoder):
    """eGeMAPS v02 functionals (88,): pitch, loudness, jitter/shimmer, formants, spectral balance."""

    feature_set = "eGeMAPSv02"


@ENCODERS.register("compare")
class ComParEEncoder(OpenSmileEncoder):
    """ComParE 2016 functionals (6373,)."""

    feature_set = "ComParE_2016"
