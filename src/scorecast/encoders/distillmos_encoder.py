"""``distillmos``: the small speech-quality model (ConvTransformerSQAModel) whose weights ship in
the ``distillmos`` wheel; 16 kHz speech; torch only.

``distillmos`` imports ``torchaudio`` at module level but never uses it for inference, and
torchaudio must not be installed here (it pulls a CUDA torch); where torchaudio is absent an empty
stand-in module is put in ``sys.modules`` before the import.

Output (D = 1, or 201 with ``embedding``): ``[mos]`` (1-5) followed by the 200-d attention-pooled
representation the model's final linear layer reads (captured with a forward hook), averaged over
the model's own crops of a long clip. Clips are encoded one at a time (the model pads and crops
each clip itself, so batching clips of different lengths would change their results).

Recipe params: ``embedding`` (true), ``device`` (cpu).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import types
from typing import Any

import numpy as np

from scorecast.encoders._hf_common import package_version, resolve_device
from scorecast.encoders.base import ENCODERS, Encoded, Encoder
from scorecast.errors import ConfigError, DataError


def import_distillmos():
    """``import distillmos`` with a stand-in torchaudio where the real one is absent.

    The stand-in leaves ``sys.modules`` again once distillmos holds it: left there (it has no
    ``__spec__``), ``importlib.util.find_spec("torchaudio")`` raises ValueError, and transformers
    calls that when it checks for torchaudio."""
    stand_in = None
    if "torchaudio" not in sys.modules and importlib.util.find_spec("torchaudio") is None:
        stand_in = sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    try:
        import distillmos
    except ImportError as exc:
        raise ConfigError(
            f"distillmos: cannot import the 'distillmos' package ({exc}); install it with "
            f"`pip install --no-deps distillmos xls-r-sqa==0.1.0` (it needs torch only)"
        ) from None
    finally:
        if stand_in is not None and sys.modules.get("torchaudio") is stand_in:
            del sys.modules["torchaudio"]
    return distillmos


@ENCODERS.register("distillmos")
class DistillMOSEncoder(Encoder):
    """DistillMOS (1,) [+ 200-d embedding] of 16 kHz speech."""

    modality = "audio"
    sample_rate = 16000

    def __init__(self, embedding: bool = True, device: str = "cpu") -> None:
        self.embedding = bool(embedding)
        self.device = resolve_device(device)
        self._model = None
        self._captured: list[Any] = []

    def identity(self) -> dict[str, Any]:
        return {
            "name": "distillmos",
            "package": f"distillmos=={package_version('distillmos')}",
            "weights": "distill_mos_v7",
            "embedding": self.embedding,
            "sample_rate": self.sample_rate,
        }

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None, "_captured": []}

    @property
    def model(self):
        if self._model is None:
            distillmos = import_distillmos()
            with contextlib.redirect_stdout(io.StringIO()):  # it prints where it loaded weights from
                model = distillmos.ConvTransformerSQAModel()
            model = model.to(self.device).eval()
            final = model.transformer_pool_attn.pool.linear3
            final.register_forward_hook(lambda _m, args, _out: self._captured.append(args[0].detach()))
            self._model = model
        return self._model

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        import torch

        out = []
        for i, wave in enumerate(inputs):
            arr = np.asarray(wave, dtype=np.float32)
            if arr.ndim != 1 or arr.size == 0:
                raise DataError(f"distillmos: expected a non-empty mono waveform for input {i}, got shape {arr.shape}")
            if not np.any(arr):
                raise DataError(f"distillmos: input {i} is all zeros (the model normalises by the peak)")
            self._captured.clear()
            with torch.inference_mode():
                mos = self.model(torch.from_numpy(arr)[None].to(self.device))
            vec = [np.array([float(mos.reshape(-1)[0])], dtype=np.float32)]
            if self.embedding:
                crops = torch.cat(self._captured).float().cpu().numpy()  # (num_crops, 200)
                vec.append(crops.mean(axis=0).astype(np.float32))
            out.append(Encoded(np.concatenate(vec)))
        return out
