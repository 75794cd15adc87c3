"""``hf-text``: frozen transformers text encoders (BERT, RoBERTa, XLM-R, ...) from a local folder or
the local Hugging Face cache.

Recipe params::

    model: path or repo id (offline)      layer: -1 | int | "mean" | [int, ...]
    pooling: cls | mean | max             max_length: tokens per window incl. special tokens
    stride: tokens between window starts  max_tokens: cap on the kept token sequence
    device: cpu | cuda | auto             batch_size: windows per forward pass (16)

A text longer than one window is cut into windows of ``max_length - specials`` content tokens, a
new one every ``stride`` tokens (the DA5401 set-up: 512 and 256, i.e. half-overlapping); each
window gets its own special tokens and is pooled alone; the text's vector is the mean of window
vectors weighted by their number of content tokens. The token sequence holds each content token
once (from the first window covering it). Tokenizers are always loaded with
``AutoTokenizer.from_pretrained(folder)`` (a tokenizer built from a bare vocab file in
transformers 5 can silently get a 5-token vocabulary).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scorecast.encoders._hf_common import (
    check_choice,
    check_layer,
    check_positive,
    encode_token_windows,
    model_fingerprint,
    read_config,
    resolve_device,
    resolve_model_dir,
    select_layer,
    shrink_sequence,
    token_windows,
)
from scorecast.encoders.base import ENCODERS, Encoded, Encoder
from scorecast.errors import ConfigError, DataError

POOLINGS_TEXT = ("cls", "mean", "max")
DEFAULT_MAX_LENGTH = 512


def model_token_limit(model_dir: Path, config: dict[str, Any]) -> int:
    """The longest input the checkpoint takes: the tokenizer's model_max_length where it is set
    (RoBERTa-style models reserve 2 positions, which the tokenizer's value already accounts
    for), else the config's max_position_embeddings."""
    limits = []
    tok_cfg = model_dir / "tokenizer_config.json"
    if tok_cfg.is_file():
        value = json.loads(tok_cfg.read_text()).get("model_max_length")
        if isinstance(value, (int, float)) and 0 < value < 1_000_000:
            limits.append(int(value))
    if isinstance(config.get("max_position_embeddings"), int):
        limits.append(int(config["max_position_embeddings"]))
    return min(limits) if limits else DEFAULT_MAX_LENGTH


def special_template(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens a tokenizer puts before and after one sequence, found by probing it
    (works for every single-sequence template: [CLS] x [SEP], <s> x </s>, x </s>, ...)."""
    bare = tokenizer("hello", add_special_tokens=False)["input_ids"]
    full = tokenizer("hello", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return list(full[:start]), list(full[start + len(bare) :])
    raise ConfigError(
        f"tokenizer {type(tokenizer).__name__}: cannot tell where its special tokens go "
        f"(probe 'hello' gave {full} with specials and {bare} without)"
    )


def check_texts(inputs: list[Any], encoder: str) -> list[str]:
    for i, text in enumerate(inputs):
        if not isinstance(text, str):
            raise DataError(f"{encoder}: expected a string for input {i}, got {type(text).__name__}")
    return list(inputs)


@ENCODERS.register("hf-text")
class HFTextEncoder(Encoder):
    """A frozen transformers text model; pooled (D,) and content-token sequence (T, D)."""

    modality = "text"
    pair_score: ClassVar[str | None] = "cosine"

    def __init__(
        self,
        model: str,
        layer: int | str | list[int] = -1,
        pooling: str = "cls",
        max_length: int | None = None,
        stride: int | None = None,
        max_tokens: int | None = None,
        device: str = "cpu",
        batch_size: int = 16,
    ) -> None:
        check_choice("pooling", pooling, POOLINGS_TEXT)
        for name, value in (
            ("max_length", max_length),
            ("stride", stride),
            ("max_tokens", max_tokens),
            ("batch_size", batch_size),
        ):
            check_positive(name, value)
        self.model_name = str(model)
        self.model_dir = resolve_model_dir(model)
        self.config = read_config(self.model_dir)
        self.layer = check_layer(layer, self.config.get("num_hidden_layers"))
        limit = model_token_limit(self.model_dir, self.config)
        if max_length is not None and max_length > limit:
            raise ConfigError(f"max_length: model '{model}' takes at most {limit} tokens, got {max_length}")
        self.max_length = int(max_length or min(DEFAULT_MAX_LENGTH, limit))
        if self.max_length < 4:
            raise ConfigError(f"max_length: expected at least 4 tokens, got {self.max_length}")
        self.stride = int(stride or max(1, self.max_length // 2))
        self.pooling = pooling
        self.max_tokens = max_tokens
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self._fp = model_fingerprint(self.model_dir)
        self._tokenizer = None
        self._model = None

    def identity(self) -> dict[str, Any]:
        return {
            "name": "hf-text",
            "model": self.model_name,
            "model_type": self.config.get("model_type"),
            **self._fp,
            "layer": self.layer,
            "pooling": self.pooling,
            "max_length": self.max_length,
            "stride": self.stride,
            "max_tokens": self.max_tokens,
        }

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tokenizer": None, "_model": None}

    _prefix: list[int] = []
    _suffix: list[int] = []

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
            self._prefix, self._suffix = special_template(self._tokenizer)
            content = self.max_length - len(self._prefix) - len(self._suffix)
            if self.stride > content:
                raise ConfigError(f"stride: expected <= {content} (content tokens per window), got {self.stride}")
        return self._tokenizer

    @property
    def model(self):
        if self._model is None:
            from transformers import AutoModel

            self._model = AutoModel.from_pretrained(self.model_dir, local_files_only=True).to(self.device).eval()
        return self._model

    def window_spans(self, n_tokens: int) -> list[tuple[int, int]]:
        """Content-token spans of the windows of a text with ``n_tokens`` tokens."""
        _ = self.tokenizer  # loads the special-token template
        content = self.max_length - len(self._prefix) - len(self._suffix)
        return token_windows(n_tokens, content, self.stride)

    def _forward(self, windows: list[list[int]]) -> list[np.ndarray]:
        """Token-id windows (with special tokens) -> (pooled (D,), states (L, D)) per window."""
        import torch

        batch = self.tokenizer.pad({"input_ids": windows}, return_tensors="pt", return_attention_mask=True)
        mask = batch["attention_mask"]
        with torch.inference_mode():
            out = self.model(
                input_ids=batch["input_ids"].to(self.device),
                attention_mask=mask.to(self.device),
                output_hidden_states=True,
            )
        hidden = select_layer(out.hidden_states, self.layer).float().cpu()
        results = []
        for i in range(len(windows)):
            states = hidden[i, : int(mask[i].sum())].numpy()
            if self.pooling == "cls":
                pooled = states[0]
            elif self.pooling == "mean":
                pooled = states.mean(0)
            else:
                pooled = states.max(0)
            results.append((pooled, states))
        return results

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        texts = check_texts(inputs, "hf-text")
        tok = self.tokenizer
        ids = tok(texts, add_special_tokens=False, verbose=False, return_attention_mask=False)["input_ids"]
        results = []
        for pooled, seq in encode_token_windows(
            ids, self.window_spans, self._prefix, self._suffix, self._forward, self.batch_size
        ):
            results.append(Encoded(pooled.astype(np.float32), shrink_sequence(seq.astype(np.float32), self.max_tokens)))
        return results
