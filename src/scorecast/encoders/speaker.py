"""``speaker``: a 256-d speaker embedding (a GE2E d-vector) from Resemblyzer's ``VoiceEncoder``, whose
weights (``resemblyzer/pretrained.pt``, 17 MB, Apache-2.0) ship in the ``resemblyzer==0.1.4`` wheel.
The YourTTS paper measured speaker similarity with this very encoder (SECS: the cosine of two clips'
embeddings), so two clips' ``speaker`` vectors score a pair zero-shot by their cosine (``pair_score``).

Preprocessing is the package's own (``resemblyzer.preprocess_wav`` without its resampling, which the
pipeline has already done to 16 kHz with soxr HQ, the method ``librosa.resample`` uses there): the volume
is raised to -30 dBFS (never lowered), then webrtcvad (mode 3, 30 ms windows) cuts silences longer than
about 0.2 s. The utterance embedding is the package's ``embed_utterance``: 1.6 s partials at ``rate``
per second (the last one zero-padded when it covers at least ``min_coverage``; a clip shorter than
1.6 s is one zero-padded partial), each embedded and L2-normalised, averaged and normalised again.

Defined outcomes on bad input (each a ``DataError``, named with the item and file by the pipeline):
an empty or non-mono waveform, digital silence (all zeros: no level to normalise), or fewer than
480 samples (one 30 ms VAD window). Where the VAD finds no voiced window in a clip that is not
silent, ``no_speech`` decides: ``"untrimmed"`` (default) embeds the volume-normalised clip without
trimming and warns; ``"error"`` raises.

The weights' sha256 is checked when the model is first loaded (``model_store``, entry
``resemblyzer-ge2e``); other bytes are refused with a ``ConfigError`` naming both digests.

Recipe params: ``rate`` (1.3), ``min_coverage`` (0.75), ``trim_silence`` (true), ``no_speech``
(``untrimmed``), ``device`` (cpu).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np

from scorecast.encoders._hf_common import check_choice, package_version, resolve_device
from scorecast.encoders.base import ENCODERS, Encoded, Encoder
from scorecast.encoders.model_store import PACKAGED_MODELS, RESEMBLYZER_SHA256, PackagedModel
from scorecast.errors import ConfigError, DataError

#: the packaged weights the encoder loads (a module attribute, so a test can point it at other bytes)
WEIGHTS: PackagedModel = PACKAGED_MODELS.get("resemblyzer-ge2e")
VAD_WINDOW = 480  # samples: resemblyzer's 30 ms webrtcvad window at 16 kHz
NO_SPEECH = ("untrimmed", "error")


def import_resemblyzer():
    """``resemblyzer`` (it imports ``scipy.ndimage.morphology``, deprecated in SciPy 1.12+: silenced)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import resemblyzer
    except ImportError as exc:
        raise ConfigError(
            f"speaker: cannot import the 'resemblyzer' package ({exc}); install it with "
            f"`{WEIGHTS.install}` (its declared webrtcvad needs a compiler; webrtcvad-wheels provides the module)"
        ) from None
    return resemblyzer


@ENCODERS.register("speaker")
class SpeakerEncoder(Encoder):
    """Resemblyzer GE2E speaker embedding (256,), L2-normalised, of 16 kHz speech."""

    modality = "audio"
    sample_rate = 16000
    pair_score: ClassVar[str | None] = "cosine"

    def __init__(
        self,
        rate: float = 1.3,
        min_coverage: float = 0.75,
        trim_silence: bool = True,
        no_speech: str = "untrimmed",
        device: str = "cpu",
    ) -> None:
        # resemblyzer's bounds: a partial step of at most 160 frames (rate >= 0.625/s), at least one frame
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.625 <= rate <= 100:
            raise ConfigError(f"rate: expected partial utterances per second in [0.625, 100], got {rate!r}")
        if isinstance(min_coverage, bool) or not isinstance(min_coverage, (int, float)) or not 0 < min_coverage <= 1:
            raise ConfigError(f"min_coverage: expected a number in (0, 1], got {min_coverage!r}")
        check_choice("no_speech", no_speech, NO_SPEECH)
        self.rate = float(rate)
        self.min_coverage = float(min_coverage)
        self.trim_silence = bool(trim_silence)
        self.no_speech = no_speech
        self.device = resolve_device(device)
        self._model = None

    def identity(self) -> dict[str, Any]:
        return {
            "name": "speaker",
            "package": f"resemblyzer=={package_version('resemblyzer')}",
            "weights": f"ge2e-pretrained.pt-{RESEMBLYZER_SHA256[:16]}",
            "rate": self.rate,
            "min_coverage": self.min_coverage,
            "trim_silence": self.trim_silence,
            "no_speech": self.no_speech,
            "sample_rate": self.sample_rate,
        }

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}

    @property
    def model(self):
        """The package's ``VoiceEncoder`` on the checked weights (eval mode)."""
        if self._model is None:
            weights = WEIGHTS.folder() / "pretrained.pt"  # ConfigError where the sha256 differs
            resemblyzer = import_resemblyzer()
            self._model = resemblyzer.VoiceEncoder(device=self.device, verbose=False, weights_fpath=weights).eval()
        return self._model

    def preprocess(self, wave: Any, index: int) -> np.ndarray:
        """(T,) float32 16 kHz -> the waveform ``embed_utterance`` reads (volume raised, silences cut)."""
        arr = np.asarray(wave, dtype=np.float32)
        if arr.ndim != 1 or arr.size == 0:
            raise DataError(f"speaker: expected a non-empty mono waveform for input {index}, got shape {arr.shape}")
        if arr.size < VAD_WINDOW:
            raise DataError(
                f"speaker: input {index} is too short: expected at least {VAD_WINDOW} samples "
                f"(one 30 ms VAD window at 16 kHz), got {arr.size}"
            )
        if not np.any(arr):
            raise DataError(f"speaker: input {index} is all zeros (digital silence: no voice to embed)")
        rz = import_resemblyzer()
        wav = rz.audio.normalize_volume(arr, rz.hparams.audio_norm_target_dBFS, increase_only=True)
        if not self.trim_silence:
            return wav
        trimmed = rz.audio.trim_long_silences(wav)
        if trimmed.size:
            return trimmed
        if self.no_speech == "error":
            raise DataError(f"speaker: the VAD found no speech in input {index} ({arr.size / 16000:.2f} s)")
        warnings.warn(
            f"speaker: the VAD found no speech in input {index} ({arr.size / 16000:.2f} s); "
            "embedding it untrimmed (no_speech: untrimmed)",
            stacklevel=2,
        )
        return wav

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        model = self.model
        out = []
        for i, wave in enumerate(inputs):
            wav = self.preprocess(wave, i)
            embed = model.embed_utterance(wav, rate=self.rate, min_coverage=self.min_coverage)
            if not np.all(np.isfinite(embed)):  # every partial's ReLU output was zero: no direction to normalise
                raise DataError(f"speaker: the model gave no embedding (all partials zero) for input {i}")
            out.append(Encoded(np.asarray(embed, dtype=np.float32)))
        return out
