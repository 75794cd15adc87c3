"""Helpers shared by the transformers-based encoders: offline model resolution, fingerprints,
layer selection, pooling and windowing. Nothing heavy is imported at module level."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scorecast.errors import ConfigError

POOLINGS_AUDIO = ("mean", "max", "mean+std")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".model")
_EDGE_BYTES = 1 << 20


def resolve_model_dir(model: str | Path) -> Path:
    """A local folder, or a repo id found in the local Hugging Face cache (never downloaded)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise ConfigError(f"model '{model}': expected a folder holding a saved model, got a file")
    looks_like_repo = "/" in str(model) and not str(model).startswith((".", "/", "~"))
    if looks_like_repo:
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(str(model), local_files_only=True)).resolve()
        except Exception as exc:  # the hub raises several unrelated types for "not cached"
            raise ConfigError(
                f"model '{model}': not a local folder and not in the local Hugging Face cache "
                f"(models are never downloaded at run time; save it with save_pretrained or "
                f"`huggingface-cli download` on a connected machine first): {exc}"
            ) from None
    raise ConfigError(f"model '{model}': folder not found (expected a folder written by save_pretrained)")


def read_config(model_dir: Path) -> dict[str, Any]:
    cfg = model_dir / "config.json"
    if not cfg.is_file():
        raise ConfigError(f"model folder {model_dir}: expected a config.json, found none")
    try:
        return json.loads(cfg.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"model folder {model_dir}: config.json is not valid JSON: {exc}") from None


def _file_digest(path: Path, h: Any) -> None:
    size = path.stat().st_size
    h.update(f"{path.name}:{size}".encode())
    with path.open("rb") as fh:
        if size <= 2 * _EDGE_BYTES:
            h.update(fh.read())
        else:
            h.update(fh.read(_EDGE_BYTES))
            fh.seek(size - _EDGE_BYTES)
            h.update(fh.read(_EDGE_BYTES))


def model_fingerprint(model_dir: Path) -> dict[str, str]:
    """``revision`` (the commit of a Hugging Face cache snapshot, else None) and ``fingerprint``:
    a hash of the config files plus the size, first and last MiB of every weight file (cheap
    even for GB checkpoints, and changes whenever the weights are retrained)."""
    h = hashlib.sha256()
    files = sorted(p for p in model_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    for p in files:
        if p.suffix in _WEIGHT_SUFFIXES or p.suffix == ".json":
            h.update(str(p.relative_to(model_dir)).encode())
            _file_digest(p, h)
    revision = model_dir.name if model_dir.parent.name == "snapshots" else None
    return {"revision": revision, "fingerprint": h.hexdigest()[:16]}


def resolve_device(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"device '{device}': CUDA is not available on this machine; use device: cpu")
    elif device != "cpu" and not device.startswith("mps"):
        raise ConfigError(f"device: expected 'cpu', 'cuda', 'cuda:N' or 'auto', got '{device}'")
    return device


def check_layer(layer: Any, num_layers: int | None) -> int | str | list[int]:
    """Validate a layer spec and make it canonical (negative indices resolved).

    ``int`` indexes ``hidden_states`` (0 = the embedding/feature-projection output, ``num_layers``
    = the last transformer layer, -1 the last); ``"mean"`` averages every hidden state 0..L; a
    list of ints averages those layers."""
    n_states = None if num_layers is None else num_layers + 1

    def one(i: Any) -> int:
        if isinstance(i, bool) or not isinstance(i, int):
            raise ConfigError(f"layer: expected an int, 'mean' or a list of ints, got {i!r}")
        if n_states is None:
            return i
        j = i + n_states if i < 0 else i
        if not 0 <= j < n_states:
            raise ConfigError(
                f"layer: expected an index in [-{n_states}, {n_states - 1}] ({num_layers} layers), got {i}"
            )
        return j

    if layer == "mean":
        return "mean"
    if isinstance(layer, (list, tuple)):
        if not layer:
            raise ConfigError("layer: expected a non-empty list of layer indices, got []")
        return sorted({one(i) for i in layer})
    return one(layer)


def select_layer(hidden_states: tuple, layer: int | str | list[int]):
    """(B, T, D) tensor of one layer or the average of several."""
    if layer == "mean":
        chosen = list(hidden_states)
    elif isinstance(layer, list):
        chosen = [hidden_states[i] for i in layer]
    else:
        return hidden_states[layer]
    out = chosen[0]
    for h in chosen[1:]:
        out = out + h
    return out / len(chosen)


def pool_frames(seq: np.ndarray, pooling: str) -> np.ndarray:
    """(T, D) -> (D,) for mean/max, (2D,) for mean+std."""
    if pooling == "mean":
        return seq.mean(axis=0)
    if pooling == "max":
        return seq.max(axis=0)
    if pooling == "mean+std":
        return np.concatenate([seq.mean(axis=0), seq.std(axis=0)])
    raise ConfigError(f"pooling: expected one of {', '.join(POOLINGS_AUDIO)}, got '{pooling}'")


def shrink_sequence(seq: np.ndarray, max_frames: int | None) -> np.ndarray:
    """Average consecutive frames into at most ``max_frames`` segments (deterministic)."""
    if max_frames is None or len(seq) <= max_frames:
        return seq
    edges = np.linspace(0, len(seq), max_frames + 1).round().astype(int)
    return np.stack([seq[a:b].mean(axis=0) for a, b in zip(edges[:-1], edges[1:])])


def sample_windows(n: int, window: int | None, hop: int | None, max_len: int | None = None) -> list[tuple[int, int]]:
    """Windows covering ``[0, n)``: starts every ``hop`` samples, each ``window`` long; a last
    window shorter than half a window is merged into the one before (so no tiny tail is encoded
    alone) unless that would make it longer than ``max_len`` (a model's longest input).
    ``window=None`` gives one window."""
    if window is None or n <= window:
        return [(0, n)]
    hop = hop or window
    spans: list[tuple[int, int]] = []
    for start in range(0, n, hop):
        end = min(start + window, n)
        spans.append((start, end))
        if end == n:
            break
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] < window / 2:
        if max_len is None or spans[-1][1] - spans[-2][0] <= max_len:
            last = spans.pop()
            spans[-1] = (spans[-1][0], last[1])
    return spans


def token_windows(n: int, size: int, step: int) -> list[tuple[int, int]]:
    """Token windows of ``size`` content tokens, one starting every ``step`` tokens, until one
    reaches the end (``n == 0`` gives one empty window)."""
    if n <= size:
        return [(0, n)]
    spans = []
    for start in range(0, n, step):
        end = min(start + size, n)
        spans.append((start, end))
        if end == n:
            break
    return spans


def dedup_token_sequence(parts: list[tuple[int, int, np.ndarray]]) -> np.ndarray:
    """Concatenate per-window token states (start, end, states (end-start, D)) keeping each
    token position once (from the first window that covers it)."""
    out, covered = [], 0
    for start, end, states in parts:
        if end > covered:
            out.append(states[covered - start :])
            covered = end
    return np.concatenate(out) if out else np.zeros((0, parts[0][2].shape[1]), np.float32)


def weighted_mean(vectors: list[np.ndarray], weights: list[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.sum() <= 0:
        w = np.ones_like(w)
    return (np.stack(vectors).astype(np.float64) * w[:, None]).sum(0) / w.sum()


def encode_token_windows(
    ids: list[list[int]],
    spans: Callable[[int], list[tuple[int, int]]],
    prefix: list[int],
    suffix: list[int],
    forward: Callable[[list[list[int]]], list[tuple[np.ndarray, np.ndarray]]],
    batch_size: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Encode tokenised texts in windows: per text, (pooled (D,), token states (T, D)).

    Each text's content tokens ``ids[t]`` are cut into ``spans(len(ids[t]))``; each window, framed by
    ``prefix`` and ``suffix`` special tokens, goes through ``forward`` (windows -> (pooled, states
    (L, D)) each) in batches of ``batch_size`` windows sorted by length. A text's pooled vector is the
    mean of its windows' weighted by their content tokens; its states keep each content token once
    (an empty text keeps its one window's states, special tokens included)."""
    pieces = [(t, a, b, prefix + list(seq[a:b]) + suffix) for t, seq in enumerate(ids) for a, b in spans(len(seq))]
    order = sorted(range(len(pieces)), key=lambda k: len(pieces[k][3]))
    outs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for s in range(0, len(order), batch_size):
        chunk = order[s : s + batch_size]
        for k, res in zip(chunk, forward([pieces[k][3] for k in chunk])):
            outs[k] = res
    by_text: dict[int, list[int]] = {}
    for k, piece in enumerate(pieces):
        by_text.setdefault(piece[0], []).append(k)
    first = len(prefix)
    results = []
    for t in range(len(ids)):
        ks = by_text[t]
        pooled = weighted_mean([outs[k][0] for k in ks], [pieces[k][2] - pieces[k][1] for k in ks])
        parts = [(pieces[k][1], pieces[k][2], outs[k][1][first : first + pieces[k][2] - pieces[k][1]]) for k in ks]
        results.append((pooled, dedup_token_sequence(parts) if len(ids[t]) else outs[ks[0]][1]))
    return results


def package_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not-installed"


def check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{name}: expected one of {', '.join(map(str, choices))}, got {value!r}")


def check_positive(name: str, value: Any, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{name}: expected a positive number, got {value!r}")
