"""Steps shared by training, prediction and the API: items in, items ready to encode out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scorecast.config import DataConfig, Recipe
from scorecast.data.features import FeatureSet
from scorecast.data.items import ItemSet
from scorecast.encoders.asr import transcribe_if_needed


def check_no_finetune(recipe: Recipe, where: str) -> None:
    """Fine-tuned encoders train end to end outside the cache: `scorecast adapt` does that."""
    from scorecast.encoders.base import FINETUNE_KEYS
    from scorecast.errors import ConfigError

    tuned = [spec.feature_name for spec in recipe.encoders if set(spec.params) & set(FINETUNE_KEYS)]
    if tuned:
        raise ConfigError(
            f"{where}: encoder(s) {', '.join(tuned)} ask for fine-tuning ({', '.join(FINETUNE_KEYS)}), "
            "which trains end to end outside the cache: run `scorecast adapt RECIPE --method finetune --out DIR`, "
            "then `scorecast cv DIR/recipe.yaml` on the adapted encoders"
        )


def align_items(items: ItemSet, features) -> ItemSet:
    """The items the encoders could encode, in the features' order."""
    if list(items.ids) == list(features.ids):
        return items
    pos = {item_id: i for i, item_id in enumerate(items.ids)}
    return items.subset([pos[i] for i in features.ids])


@dataclass
class TrainingData:
    """What :func:`prepare_training_data` makes ready for ``run_cv`` / ``run_train``."""

    items: ItemSet  # aligned with ``features`` (items no encoder could encode are left out)
    features: FeatureSet
    identities: dict[str, dict[str, Any]]  # feature name -> encoder identity
    augmented: FeatureSet | None  # augmented copies, item-major (``training.augment.copies``)
    val: tuple[ItemSet, FeatureSet] | None  # the recipe's val_data, read and encoded like the items
    test: tuple[ItemSet, FeatureSet] | None  # the recipe's test_data


def prepare_training_data(
    recipe: Recipe,
    items: ItemSet,
    cache: Any,
    *,
    work_dir: Any = None,
    progress: bool = True,
    where: str = "recipe",
    with_val: bool = True,
) -> TrainingData:
    """Everything `train`/`cv`/`Scorer.fit` need before training: ASR (if the recipe has it),
    features through the cache, items aligned to the features, augmented copies (training folds
    only), and the validation and test splits (``with_val=False`` leaves ``val_data`` unread, for
    cross-validation, which does not use it)."""
    from pathlib import Path

    from scorecast.encoders.pipeline import build_features_with_report
    from scorecast.errors import ConfigError
    from scorecast.training.augment import augmented_features

    check_no_finetune(recipe, where)
    if not recipe.encoders:
        raise ConfigError(f"{where}: the recipe lists no encoders; expected at least one under 'encoders'")
    transcribe_if_needed(recipe, items, cache)
    features, reports = build_features_with_report(items, recipe.encoders, cache, progress=progress)
    identities = {name: rep.identity for name, rep in reports.items()}
    items = align_items(items, features)
    root = getattr(cache, "root", None) or work_dir
    if recipe.training.augment.copies > 0 and root is None:
        raise ConfigError(f"{where}: augmentation writes audio copies; give a cache folder or a work folder")
    augmented = augmented_features(recipe, items.items, cache, Path(root or ".") / "augmented", progress=progress)
    val = _read_split(recipe, recipe.val_data, cache, progress) if with_val else None
    test = _read_split(recipe, recipe.test_data, cache, progress)
    return TrainingData(items, features, identities, augmented, val, test)


def _read_split(recipe: Recipe, data: DataConfig | None, cache: Any, progress: bool):
    """A second split (``val_data`` / ``test_data``) read, transcribed and encoded: (items, features) | None."""
    if data is None:
        return None
    from scorecast.data.readers import read_items
    from scorecast.encoders.pipeline import build_features

    split_items = read_items(data)
    transcribe_if_needed(recipe, split_items, cache)
    split_features = build_features(split_items, recipe.encoders, cache, progress=progress)
    return align_items(split_items, split_features), split_features
