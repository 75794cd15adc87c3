"""Unsupervised SimCSE: adapt a sentence encoder to the data's own texts before training.

Each text is embedded twice with dropout on; the two embeddings are each other's positive and the
other texts of the batch are negatives (sentence-transformers' ``MultipleNegativesRankingLoss``,
cosine similarity scaled by ``scale`` = 1 / temperature). The result is saved with
``SentenceTransformer.save`` as a new local folder that holds ``scorecast_adaptation.json`` (source
model and its fingerprint, settings, a hash of the texts), so a ``sentence`` encoder loaded from it
has its own cache identity.

    folder = adapt_simcse(model_dir, texts, out_dir, SimCSEConfig(epochs=1))
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from scorecast.adapt.common import hash_texts, write_adaptation
from scorecast.config import Strict
from scorecast.errors import ConfigError, DataError

log = logging.getLogger(__name__)


class SimCSEConfig(Strict):
    """Settings of one SimCSE adaptation (all go into the adapted folder's identity)."""

    epochs: int = Field(default=1, ge=1)
    batch_size: int = Field(default=32, ge=2)
    lr: float = Field(default=3e-5, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    warmup_fraction: float = Field(default=0.1, ge=0, lt=1)
    scale: float = Field(default=20.0, gt=0)  # 1 / temperature (0.05)
    dropout: float | None = Field(default=None, ge=0, lt=1)  # None keeps the model's own dropout
    max_seq_length: int | None = Field(default=None, ge=8)
    max_steps: int | None = Field(default=None, ge=1)
    seed: int = 0


def simcse_config(**settings: object) -> SimCSEConfig:
    """A :class:`SimCSEConfig` from keyword settings; bad values raise a ConfigError naming them."""
    from pydantic import ValidationError

    try:
        return SimCSEConfig(**settings)
    except ValidationError as exc:
        lines = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors())
        raise ConfigError(f"SimCSE settings: {lines}") from None


def collect_texts(texts: Sequence[str | None]) -> list[str]:
    """Non-empty texts, stripped, each once, in first-seen order (duplicates in one batch would be
    false negatives)."""
    seen: dict[str, None] = {}
    for text in texts:
        if text is None:
            continue
        text = str(text).strip()
        if text:
            seen.setdefault(text, None)
    return list(seen)


def adapt_simcse(
    model_dir: str | Path,
    texts: Sequence[str | None],
    out_dir: str | Path,
    cfg: SimCSEConfig | None = None,
    *,
    field: str | None = None,
    device: str = "cpu",
) -> Path:
    """Train a copy of the sentence-transformers model in ``model_dir`` with SimCSE on ``texts`` and
    save it to ``out_dir``. Returns ``out_dir``. ``field`` (e.g. ``text.response``) is recorded.

    Raises DataError with fewer than two distinct texts (no in-batch negatives exist).
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from scorecast.encoders._hf_common import model_fingerprint, resolve_model_dir

    cfg = cfg or SimCSEConfig()
    source = resolve_model_dir(model_dir)
    if not (source / "modules.json").is_file():
        raise ConfigError(
            f"model '{model_dir}': expected a sentence-transformers folder (with modules.json), got {source}"
        )
    out = Path(out_dir).expanduser().resolve()
    if out == source:
        raise ConfigError(f"--out: expected a new folder, got the source model's folder {source}")
    unique = collect_texts(texts)
    if len(unique) < 2:
        raise DataError(
            f"SimCSE needs at least 2 distinct non-empty texts{f' in {field}' if field else ''}, got {len(unique)}",
            field=field,
        )

    torch.manual_seed(cfg.seed)
    model = SentenceTransformer(str(source), device=device, local_files_only=True)
    if cfg.max_seq_length is not None:
        model.max_seq_length = cfg.max_seq_length
    _set_dropout(model, cfg.dropout)
    loss_fn = MultipleNegativesRankingLoss(model, scale=cfg.scale)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    rng = np.random.default_rng(cfg.seed)
    n = len(unique)
    batches_per_epoch = -(-n // cfg.batch_size) - (1 if n % cfg.batch_size == 1 else 0)  # a lone last text is skipped
    total = (
        batches_per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, batches_per_epoch * cfg.epochs)
    )
    warmup = int(round(cfg.warmup_fraction * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _linear_warmup_decay(step, warmup, total))

    model.train()
    step, losses = 0, []
    for _epoch in range(cfg.epochs):
        order = rng.permutation(len(unique))
        for start in range(0, len(order), cfg.batch_size):
            batch = [unique[i] for i in order[start : start + cfg.batch_size]]
            if len(batch) < 2:  # a lone text has no negatives
                continue
            features = _to_device(model.preprocess(batch), model.device)
            loss = loss_fn([dict(features), dict(features)], None)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            step += 1
            if step >= total:
                break
        if step >= total:
            break
    model.eval()
    if losses:
        log.info("SimCSE: %d steps on %d texts, loss %.4f -> %.4f", step, len(unique), losses[0], losses[-1])

    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out), create_model_card=False)
    write_adaptation(
        out,
        {
            "method": "simcse",
            "source": str(source),
            "source_fingerprint": model_fingerprint(source)["fingerprint"],
            "field": field,
            "config": cfg.model_dump(mode="json"),
            "data_hash": hash_texts(unique),
            "num_texts": len(unique),
            "steps": step,
            "loss_first_last": [round(losses[0], 6), round(losses[-1], 6)] if losses else None,
        },
    )
    return out


def _linear_warmup_decay(step: int, warmup: int, total: int) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def _set_dropout(model, p: float | None) -> None:
    """Set every dropout layer to ``p`` (None: keep); warn when training would run without dropout,
    since SimCSE's two views of a text then coincide."""
    from torch import nn

    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    if p is not None:
        for m in drops:
            m.p = p
    if not any(m.p > 0 for m in drops):
        warnings.warn(
            "SimCSE: the model has no active dropout, so both views of a text are identical and only "
            "in-batch negatives train it; set dropout (e.g. 0.1) in the SimCSE settings",
            stacklevel=3,
        )


def _to_device(features: dict, device) -> dict:
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in features.items()}


@dataclass
class FieldAdaptation:
    """What :func:`adapt_field` made: the adapted folder, the model it started from, its adaptation
    record, and the index of the recipe's ``sentence`` encoder on that field (None if there is none)."""

    folder: Path
    source: str
    record: dict[str, Any]
    encoder_index: int | None


def adapt_field(
    recipe: Any, items: Any, out: str | Path, field: str | None, *, model: str | None = None, seed: int = 0, **settings
) -> FieldAdaptation:
    """SimCSE on the texts of ``field`` (``text.<name>``) of ``items`` (what ``scorecast adapt --method
    simcse`` runs): starts from ``model``, else the recipe's ``sentence`` encoder on that field, else the
    packaged MiniLM. ``settings``: epochs, batch_size, lr, max_steps, dropout (None: the default)."""
    from scorecast.adapt.common import read_adaptation

    if field is None or not field.startswith("text.") or len(field) <= 5:
        raise ConfigError(f"--field: expected the text input to adapt on, e.g. text.response, got {field!r}")
    index, spec = next(
        ((i, s) for i, s in enumerate(recipe.encoders) if s.input == field and s.name == "sentence"), (None, None)
    )
    source = model or (spec.params.get("model") if spec is not None else None)
    if source is None and spec is None:
        listed = ", ".join(f"{s.name} on {s.input}" for s in recipe.encoders) or "none"
        raise ConfigError(
            f"--field {field}: the recipe has no 'sentence' encoder reading it (encoders: {listed}); pass --model FOLDER"
        )
    if source is None:
        from scorecast.encoders.sentence import default_model_dir

        source = str(default_model_dir())
    name = field.split(".", 1)[1]
    texts = [item.texts.get(name) for item in items]
    if not any(texts):
        have = sorted({k for item in items for k in item.texts}) or ["none"]
        raise DataError(
            f"--field {field}: no item has text '{name}' (text fields: {', '.join(have)})", file=items.source or None
        )
    settings["max_seq_length"] = spec.params.get("max_seq_length") if spec is not None else None
    cfg = simcse_config(seed=seed, **{k: v for k, v in settings.items() if v is not None})
    folder = adapt_simcse(source, texts, out, cfg, field=field)
    return FieldAdaptation(Path(folder), str(source), read_adaptation(folder) or {}, index)
