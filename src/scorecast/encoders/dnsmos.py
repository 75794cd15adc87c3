"""``dnsmos``: DNSMOS P.835 (SIG, BAK, OVRL) and P.808 speech-quality scores, computed by our own
code with onnxruntime on the ONNX models that the ``speechmos`` package ships (16 kHz).

Output (D = 4, or 132 with ``features``): ``[sig, bak, ovrl, p808]`` followed by the 64
activations each model's last dense layer reads (P.835 model, then P.808 model), averaged over
segments. They are reached by adding that tensor as an extra graph output (see _onnx_graph.py).

Segmenting follows the DNSMOS reference script exactly (so the scores match published DNSMOS):
clips shorter than 9.01 s are tiled; 9.01 s segments start every second; each segment's raw P.835
outputs are mapped through the reference polynomials; scores are averaged over segments.

Recipe params: ``personalized`` (the personalised P.835 model, false), ``features`` (true),
``hop_s`` (seconds between segment starts: 1.0 as in the reference; each segment costs about
1.5 s of one CPU core, so a larger hop speeds up long clips), ``threads`` (onnxruntime intra-op
threads; default: onnxruntime's choice).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scorecast.encoders._hf_common import package_version
from scorecast.encoders._onnx_graph import with_penultimate_output
from scorecast.encoders.base import ENCODERS, Encoded, Encoder
from scorecast.errors import ConfigError, DataError

SR = 16000
SEGMENT_S = 9.01
SEGMENT = int(SEGMENT_S * SR)
P835_POLY = {  # (sig, bak, ovrl) polynomials of the DNSMOS reference script
    False: (
        [-0.08397278, 1.22083953, 0.0052439],
        [-0.13166888, 1.60915514, -0.39604546],
        [-0.06766283, 1.11546468, 0.04602535],
    ),
    True: (
        [-0.01019296, 0.02751166, 1.19576786, -0.24348726],
        [-0.04976499, 0.44276479, -0.1644611, 0.96883132],
        [-0.00533021, 0.005101, 1.18058466, -0.11236046],
    ),
}
SCORE_NAMES = ["sig", "bak", "ovrl", "p808"]


def speechmos_models(personalized: bool) -> tuple[Path, Path]:
    """Paths of the shipped P.835 and P.808 ONNX files."""
    import importlib.util

    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("dnsmos: the 'speechmos' package is not installed (pip install speechmos)")
    root = Path(list(spec.submodule_search_locations)[0])
    primary = root / ("pdnsmos_models" if personalized else "dnsmos_models") / "sig_bak_ovr.onnx"
    p808 = root / "dnsmos_models" / "model_v8.onnx"
    for p in (primary, p808):
        if not p.is_file():
            raise ConfigError(
                f"dnsmos: expected the DNSMOS model at {p} (speechmos {package_version('speechmos')}), not found"
            )
    return primary, p808


def segments(audio: np.ndarray, hop_s: float = 1.0) -> list[np.ndarray]:
    """The 9.01 s segments the DNSMOS reference script scores (with hop_s=1: same arithmetic, same
    skips)."""
    while len(audio) < SEGMENT:
        audio = np.append(audio, audio)
    num_hops = int((np.floor(len(audio) / SR) - SEGMENT_S) / hop_s) + 1
    out = []
    for idx in range(num_hops):
        seg = audio[int(idx * hop_s * SR) : int((idx * hop_s + SEGMENT_S) * SR)]
        if len(seg) >= SEGMENT:
            out.append(seg.astype(np.float32))
    return out


def p808_melspec(seg: np.ndarray) -> np.ndarray:
    """(900, 120) log-mel input of the P.808 model."""
    import librosa

    mel = librosa.feature.melspectrogram(y=seg[:-160], sr=SR, n_fft=321, hop_length=160, n_mels=120)
    return ((librosa.power_to_db(mel, ref=np.max) + 40) / 40).T.astype(np.float32)


@ENCODERS.register("dnsmos")
class DNSMOSEncoder(Encoder):
    """DNSMOS scores (4,) [+ penultimate features (128,)] of 16 kHz speech."""

    modality = "audio"
    sample_rate = SR
    parallel_safe: ClassVar[bool] = True

    def __init__(
        self,
        personalized: bool = False,
        features: bool = True,
        hop_s: float = 1.0,
        threads: int | None = None,
        batch_size: int = 16,
    ) -> None:
        if isinstance(hop_s, bool) or not isinstance(hop_s, (int, float)) or not 0 < hop_s <= SEGMENT_S:
            raise ConfigError(f"hop_s: expected a number in (0, {SEGMENT_S}], got {hop_s!r}")
        self.hop_s = float(hop_s)
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"threads: expected a positive int or null, got {threads!r}")
        self.personalized = bool(personalized)
        self.features = bool(features)
        self.threads = threads
        self.batch_size = int(batch_size)
        self.primary_path, self.p808_path = speechmos_models(self.personalized)
        self._sessions = None

    def identity(self) -> dict[str, Any]:
        digest = hashlib.sha256(self.primary_path.read_bytes() + self.p808_path.read_bytes()).hexdigest()[:16]
        return {
            "name": "dnsmos",
            "package": f"speechmos=={package_version('speechmos')}",
            "models": digest,
            "personalized": self.personalized,
            "features": self.features,
            "sample_rate": SR,
            "segment_s": SEGMENT_S,
            "hop_s": self.hop_s,
        }

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_sessions": None}

    def output_names(self) -> list[str]:
        extra = [f"p835_feat{i}" for i in range(64)] + [f"p808_feat{i}" for i in range(64)] if self.features else []
        return SCORE_NAMES + extra

    def _session(self, path: Path):
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        import onnxruntime as ort

        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        data = path.read_bytes()
        if self.features:
            data, _ = with_penultimate_output(data)
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

    @property
    def sessions(self):
        if self._sessions is None:
            self._sessions = (self._session(self.primary_path), self._session(self.p808_path))
        return self._sessions

    def _score_segments(self, segs: list[np.ndarray]) -> np.ndarray:
        """(S, D) per-segment [sig, bak, ovrl, p808, features...]."""
        primary, p808 = self.sessions
        rows = []
        for s in range(0, len(segs), self.batch_size):
            chunk = segs[s : s + self.batch_size]
            outs = primary.run(None, {"input_1": np.stack(chunk)})
            outs808 = p808.run(None, {"input_1": np.stack([p808_melspec(x) for x in chunk])})
            raw = outs[0].astype(np.float64)
            polys = P835_POLY[self.personalized]
            cols = [np.poly1d(polys[j])(raw[:, j]) for j in range(3)] + [outs808[0][:, 0].astype(np.float64)]
            block = np.stack(cols, axis=1)
            if self.features:
                block = np.concatenate([block, outs[1], outs808[1]], axis=1)
            rows.append(block)
        return np.concatenate(rows)

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        per_item = []
        for i, wave in enumerate(inputs):
            arr = np.asarray(wave, dtype=np.float32)
            if arr.ndim != 1 or arr.size == 0:
                raise DataError(f"dnsmos: expected a non-empty mono waveform for input {i}, got shape {arr.shape}")
            per_item.append(segments(arr, self.hop_s))
        flat = [seg for segs in per_item for seg in segs]
        scores = self._score_segments(flat)
        out, pos = [], 0
        for segs in per_item:
            out.append(Encoded(scores[pos : pos + len(segs)].mean(axis=0).astype(np.float32)))
            pos += len(segs)
        return out
