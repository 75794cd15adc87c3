"""``egemaps`` and ``compare``: openSMILE functionals (eGeMAPS v02: 88 values; ComParE 2016: 6373)
computed on the waveform with the ``opensmile`` package. Any audio; CPU only; safe to run in worker
processes (``parallel_safe``), each process building its own extractor.

Recipe params: ``sample_rate`` (the rate the waveform is resampled to first, 16000 by default).
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

    def __init__(self, sample_rate: int = 16000) -> None:
        check_positive("sample_rate", sample_rate, allow_none=False)
        self.sample_rate = int(sample_rate)
        self._smile = None

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.registry_name,
            "package": f"opensmile=={package_version('opensmile')}",
            "feature_set": self.feature_set,
            "feature_level": "Functionals",
            "sample_rate": self.sample_rate,
        }

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_smile": None}

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
                raise DataError(f"{self.registry_name}: expected a non-empty mono waveform for input {i}, got shape {arr.shape}")
            values = self.smile.process_signal(arr, self.sample_rate).to_numpy(dtype=np.float32)[0]
            if not np.all(np.isfinite(values)):
                bad = [n for n, v in zip(self.feature_names(), values) if not np.isfinite(v)][:5]
                raise DataError(f"{self.registry_name}: openSMILE gave non-finite values for input {i} ({', '.join(bad)})")
            out.append(Encoded(values))
        return out


@ENCODERS.register("egemaps")
class EGeMAPSEncoder(OpenSmileEncoder):
    """eGeMAPS v02 functionals (88,): pitch, loudness, jitter/shimmer, formants, spectral balance."""

    feature_set = "eGeMAPSv02"


@ENCODERS.register("compare")
class ComParEEncoder(OpenSmileEncoder):
    """ComParE 2016 functionals (6373,)."""

    feature_set = "ComParE_2016"
