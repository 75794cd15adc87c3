"""End-to-end fine-tuning of the top layers of HF audio/text encoders, with the scorecast head.

A recipe asks for it per encoder, in the encoder's params (``hf-audio``, ``hf-text``, ``sentence``)::

    encoders:
      - name: hf-audio
        input: audio
        params: {model: /models/wavlm-base-plus, layer: -1, finetune_top_k: 8, finetune_lr: 2.0e-5, layer_decay: 0.9}

``finetune_top_k`` blocks below the feature layer are trained (the rest of the model, CNN feature
encoder and embeddings included, stays frozen and in eval mode, so a 12-layer WavLM with k=8 keeps
its first 4 layers as the grammar engine did); the top block learns at ``finetune_lr``, each block
below at that rate times ``layer_decay`` again; the fusion and head learn at ``training.lr``. Tuned
encoders bypass the cache (raw waveform or text -> encoder -> pooled, as the frozen encoder pools:
the feature layer, ``pooling``; audio longer than ``window_s`` is cut to its first window, text to
``max_length`` tokens); the recipe's other encoders are read from the cache as usual. Tuned encoders
with the same name and params on different inputs (``s1`` / ``s2`` of a sentence pair) are ONE
model (siamese weights, :mod:`scorecast.adapt.tunable`), saved once under ``encoders/s1_s2/`` and read
by both features in the written recipe; ``finetune_share: false`` keeps separate towers.
``training.calibrate_head`` starts the head at the least-squares map of the initial fused features
of up to 1024 training items (the tuned encoders' outputs at initialisation).

:func:`fit_finetune` trains (Lightning, early stopping and best weights on the recipe's monitor) and
writes ``OUT/``::

    encoders/<feature>/   the adapted encoder (a shared one: encoders/<feature>_<feature>/) (save_pretrained: config + model.safetensors, with its
                          feature extractor or tokenizer and scorecast_adaptation.json)
    head.safetensors      the fusion + head weights and the frozen features' standardisation
    head.json             the member description (model config, feature dims) for member_from_state
    recipe.yaml           the recipe with each tuned encoder pointing at its adapted folder (and the
                          fine-tuning keys removed): ``scorecast cv OUT/recipe.yaml`` trains on the
                          adapted features through the cache
    history.csv, finetune.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from scorecast.adapt.common import FinetuneSettings, finetune_settings, hash_json, without_finetune
from scorecast.adapt.finetune_parts import _Parts, build_parts, train_parts  # build_parts: re-exported
from scorecast.adapt.module import (  # noqa: F401  (re-exported: tests and callers import them from here)
    FinetuneCollate,
    FinetuneDataset,
    FinetuneModule,
    TrainableBestWeights,
    calibrate_finetune_head,
)
from scorecast.adapt.tunable import unique_towers
from scorecast.config import EncoderSpec, Recipe, save_recipe
from scorecast.data.items import Item, ItemSet
from scorecast.errors import ConfigError


@dataclass
class FinetuneResult:
    """What :func:`fit_finetune` wrote and learned."""

    out_dir: Path
    encoder_dirs: dict[str, Path]  # feature name -> adapted encoder folder
    recipe: Recipe  # the recipe using the adapted folders (also in OUT/recipe.yaml)
    member: Any  # a NeuralMember (fusion + head) over the adapted features
    history: list[dict[str, float]] = field(default_factory=list)
    param_groups: list[dict[str, Any]] = field(default_factory=list)  # name, lr of each optimiser group
    module: Any = None  # the trained FinetuneModule (CPU, eval): predicts end to end from raw inputs
    frozen: list[EncoderSpec] = field(default_factory=list)
    val_predictions: np.ndarray | None = None  # (N_val, T) of the best weights on the validation items

    def predict(self, items: ItemSet | list[Item], cache: Any = None, batch_size: int = 8) -> np.ndarray:
        """(N, T) scores of ``items`` end to end (raw inputs through the tuned encoders; the frozen
        encoders' features from ``cache``), e.g. for the validation fold of a cross-validation."""
        items = list(items)
        features = None
        if self.frozen:
            from scorecast.cache.store import EmbeddingCache
            from scorecast.encoders.pipeline import build_features

            features = build_features(
                items, self.frozen, cache or EmbeddingCache(self.recipe.cache_dir), progress=False
            )
            if list(features.ids) != [it.id for it in items]:
                raise ConfigError(
                    f"predict: the frozen encoders could encode {len(features)} of {len(items)} items; expected all"
                )
            features = self.member.scaler.transform(features)
        encoders = self.module.feature_encoders()
        data = FinetuneDataset(
            items, np.arange(len(items)), encoders, features, np.zeros((len(items), len(self.recipe.targets)))
        )
        loader = DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=FinetuneCollate(encoders))
        self.module.eval()
        with torch.no_grad():
            out = [self.module(batch)["mean"].float().cpu().numpy() for batch in loader]
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, len(self.recipe.targets)))


def split_encoders(recipe: Recipe) -> tuple[list[tuple[EncoderSpec, FinetuneSettings]], list[EncoderSpec]]:
    """(tuned encoders with their settings, frozen encoders (params without fine-tuning keys))."""
    tuned, frozen = [], []
    for spec in recipe.encoders:
        settings = finetune_settings(spec)
        if settings is None:
            frozen.append(without_finetune(spec))
        else:
            tuned.append((spec, settings))
    return tuned, frozen


def adapted_recipe(recipe: Recipe, encoder_dirs: dict[str, Path]) -> Recipe:
    """``recipe`` with each tuned encoder reading its adapted folder, fine-tuning keys removed."""
    specs = []
    for spec in recipe.encoders:
        clean = without_finetune(spec)
        if spec.feature_name in encoder_dirs:
            # the alias keeps the feature name, so a head trained here reads the adapted features
            clean = clean.model_copy(
                update={
                    "params": {**clean.params, "model": str(encoder_dirs[spec.feature_name])},
                    "alias": spec.feature_name,
                }
            )
        specs.append(clean)
    return recipe.model_copy(update={"encoders": specs})


def fit_finetune(
    recipe: Recipe,
    items: ItemSet | list[Item],
    out_dir: str | Path,
    *,
    train_idx: Any = None,
    val_idx: Any = None,
    cache: Any = None,
    seed: int | None = None,
) -> FinetuneResult:
    """Fine-tune the recipe's tuned encoders end to end with its fusion, head and losses.

    Without ``train_idx`` / ``val_idx``, ``training.val_fraction`` of the items is held out for early
    stopping (none when early stopping is off). Frozen encoders go through ``cache`` (default: the
    recipe's ``cache_dir``). Returns a :class:`FinetuneResult`; files as in the module docstring.
    """
    from scorecast.runs.cv import training_targets
    from scorecast.runs.folder import is_global_zero

    items = items if isinstance(items, ItemSet) else ItemSet(list(items), target_names=recipe.target_names)
    tuned, frozen = split_encoders(recipe)
    if not tuned:
        raise ConfigError(
            "fine-tuning: no encoder sets finetune_top_k >= 1; expected it in the params of an hf-audio or hf-text encoder"
        )
    cfg = recipe.training
    seed = cfg.seed if seed is None else int(seed)
    L.seed_everything(seed, workers=True, verbose=False)
    targets = training_targets(recipe, items)
    train_idx, val_idx = _split(recipe, targets, train_idx, val_idx, seed)
    parts = build_parts(recipe, items, tuned, frozen, targets, train_idx, val_idx, cache, seed)
    history = train_parts(recipe, parts, Path(out_dir), seed)
    groups = [{"name": g["name"], "lr": g["lr"]} for g in parts.module.param_group_specs()]
    out = Path(out_dir)
    # a shared tower is saved once, under its joined feature names, and read by each of its features
    encoder_dirs = {name: (out / "encoders" / _safe(enc.name)).resolve() for name, enc in parts.encoders.items()}
    new_recipe = adapted_recipe(recipe, encoder_dirs)
    member = parts.member()
    result = FinetuneResult(out, encoder_dirs, new_recipe, member, history, groups, parts.module, frozen)
    if parts.val_loader is not None:  # through the loader: precomputed frozen states where there are some
        with torch.no_grad():
            preds = [parts.module(batch)["mean"].float().numpy() for batch in parts.val_loader]
        result.val_predictions = np.concatenate(preds).astype(np.float64)
    if is_global_zero():  # under DDP every rank trains the same weights; one writes them
        _write_outputs(result, parts, recipe, items, targets, train_idx, val_idx, seed)
    return result


def _write_outputs(
    result: FinetuneResult,
    parts: _Parts,
    recipe: Recipe,
    items: ItemSet,
    targets: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    seed: int,
) -> None:
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    data_hash = hash_json([[items[i].id, targets[i].tolist()] for i in train_idx])
    for enc in unique_towers(parts.encoders):
        enc.save(
            result.encoder_dirs[enc.feature_name],
            {
                "method": "finetune",
                "source": str(enc.model_dir),
                "source_fingerprint": _fingerprint(enc.model_dir),
                "features": list(enc.inputs),
                "layer": enc.layer,
                "trained_layers": enc.trained,
                "settings": {"top_k": enc.settings.top_k, "lr": enc.settings.lr, "decay": enc.settings.decay},
                "training": hash_json(recipe.model_dump(mode="json"))[:16],
                "data_hash": data_hash,
                "seed": seed,
            },
        )
    _save_member(result.member, out)
    save_recipe(result.recipe, out / "recipe.yaml")
    _write_history(result.history, out / "history.csv")
    summary = {
        "encoders": {k: str(v) for k, v in result.encoder_dirs.items()},
        "param_groups": result.param_groups,
        "train": len(train_idx),
        "val": len(val_idx),
        "seed": seed,
    }
    (out / "finetune.json").write_text(json.dumps(summary, indent=2))


def _split(recipe: Recipe, targets: np.ndarray, train_idx, val_idx, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from scorecast.training.splits import holdout_split, stratify_labels

    n = len(targets)
    if train_idx is not None:
        tr = np.asarray(train_idx, dtype=int)
        va = np.asarray(val_idx if val_idx is not None else [], dtype=int)
        if np.intersect1d(tr, va).size:
            raise ConfigError("fine-tuning: train_idx and val_idx share items; expected disjoint index sets")
        return tr, va
    frac = recipe.training.val_fraction if recipe.training.early_stopping is not None else 0.0
    if frac <= 0:
        return np.arange(n), np.arange(0)
    labels = stratify_labels(targets[:, 0], recipe.cv.stratify_bins)
    return holdout_split(n, frac, seed, labels)


def _save_member(member: Any, out: Path) -> None:
    from safetensors.torch import save_file

    info, tensors = member.to_state()
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(out / "head.safetensors"))
    (out / "head.json").write_text(json.dumps(info, indent=2, default=str))


def load_head(out_dir: str | Path) -> Any:
    """The fusion + head member written by :func:`fit_finetune` (predicts from adapted features)."""
    from safetensors.torch import load_file

    from scorecast.inference.members import member_from_state

    out = Path(out_dir)
    return member_from_state(json.loads((out / "head.json").read_text()), load_file(str(out / "head.safetensors")))


def _fingerprint(model_dir: Path) -> str:
    from scorecast.encoders._hf_common import model_fingerprint

    return model_fingerprint(model_dir)["fingerprint"]


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^\w.\-]+", "_", name).strip("._") or "encoder"


def _write_history(history: list[dict[str, float]], path: Path) -> None:
    import csv

    if not history:
        path.write_text("")
        return
    keys = list(dict.fromkeys(k for row in history for k in row))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)


def finetune_recipe(
    recipe: Recipe,
    items: ItemSet,
    out: str | Path,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> FinetuneResult:
    """:func:`fit_finetune` with the command line's overrides of the recipe's training settings (what
    ``scorecast adapt --method finetune`` runs); frozen encoders' features through ``cache_dir``."""
    from scorecast.config import load_recipe

    updates: dict[str, Any] = {"seed": seed}
    if epochs is not None:
        updates["max_epochs"] = epochs
    if batch_size is not None:
        updates["batch_size"] = batch_size
    recipe = load_recipe(recipe.model_dump(mode="json"), overrides={f"training.{k}": v for k, v in updates.items()})
    cache = None
    if cache_dir is not None:
        from scorecast.cache.store import EmbeddingCache

        cache = EmbeddingCache(cache_dir)
    return fit_finetune(recipe, items, out, cache=cache)
