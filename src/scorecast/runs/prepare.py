"""Steps shared by training, prediction and the API: items in, items ready to encode out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scorecast.config import DataConfig, Recipe, load_with_data
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
    from scorecast.training.recipe_check import check_recipe

    check_no_finetune(recipe, where)
    if not recipe.encoders:
        raise ConfigError(f"{where}: the recipe lists no encoders; expected at least one under 'encoders'")
    check_recipe(recipe, where)
    items = check_target_ranges(recipe, items, recipe.data)
    transcribe_if_needed(recipe, items, cache)
    features, reports = build_features_with_report(
        items, recipe.encoders, cache, progress=progress, on_error=recipe.data.on_error
    )
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

    split_items = check_target_ranges(recipe, read_items(data), data)
    transcribe_if_needed(recipe, split_items, cache)
    split_features = build_features(split_items, recipe.encoders, cache, progress=progress, on_error=data.on_error)
    return align_items(split_items, split_features), split_features


def target_columns(data: DataConfig | None) -> dict[str, str]:
    """{target name: table column} where the table reader's ``targets`` option renames columns."""
    from scorecast.data.readers import as_field_map

    if data is None or data.reader != "table" or not data.options.get("targets"):
        return {}
    try:
        return {name: col for col, name in as_field_map("targets", data.options["targets"]).items()}
    except Exception:  # noqa: BLE001 - the reader itself reports a bad option
        return {}


def check_target_ranges(recipe: Recipe, items: ItemSet, data: DataConfig | None = None) -> ItemSet:
    """The items whose scores lie in each target's [low, high] (or any score, where the target sets
    ``allow_out_of_range``). A score outside is a DataError naming the file, row and target column;
    with ``data.on_error: skip`` the item is left out, recorded in ``items.skipped`` and in a
    :class:`SkippedRowsWarning` (the CLI lists those in ``RUN/skipped.csv``)."""
    import warnings

    from scorecast.errors import SkippedRowsWarning, skipped_row

    on_error = data.on_error if data is not None else "raise"
    columns = target_columns(data)
    checked = [t for t in recipe.targets if not t.allow_out_of_range]
    keep, errors = [], []
    for item in items:
        bad = _range_error(item, checked, items.source, columns)
        if bad is None:
            keep.append(item)
        elif on_error == "raise":
            raise bad
        else:
            errors.append((item, bad))
    if not errors:
        return items
    warnings.warn(
        SkippedRowsWarning(
            f"left out {len(errors)} item(s) with scores outside the targets' range; the first: {errors[0][1]}",
            [skipped_row(err, id=item.id) for item, err in errors],
        ),
        stacklevel=2,
    )
    skipped = list(items.skipped) + [str(err) for _, err in errors]
    return ItemSet(keep, items.source, list(items.target_names), skipped)


def _range_error(item, checked, source: str, columns: dict[str, str]):
    """The DataError for the first score of ``item`` (aggregate or per rater) outside its target's range."""
    import math

    from scorecast.errors import DataError

    for spec in checked:
        values = [item.targets.get(spec.name)]
        if spec.name in item.ratings:
            values += [float(v) for v in item.ratings[spec.name].values]
        for value in values:
            if value is not None and math.isfinite(value) and not spec.low <= value <= spec.high:
                return DataError(
                    f"item '{item.id}': target '{spec.name}': expected a score in [{spec.low:g}, {spec.high:g}] "
                    f"(the recipe's range), got {value:g}; fix the data, or set allow_out_of_range: true "
                    "on the target to train on it",
                    file=source or None,
                    row=item.meta.get("row") if isinstance(item.meta.get("row"), int) else None,
                    field=columns.get(spec.name, spec.name),
                )
    return None


def prepare_run(
    recipe_path: Path,
    variables: dict[str, str],
    overrides: list[str] | None,
    variant: str | None,
    data: Path | None,
    cache_dir: Path | None,
    with_val: bool = True,
    select: bool = False,
) -> tuple[Recipe, TrainingData]:
    """Load the recipe, read items, transcribe (if the recipe has ASR), encode features (and
    augmented copies, and the validation and test data) through the cache: what ``scorecast cv`` and
    ``train`` run first. Returns the recipe and :func:`prepare_training_data`'s :class:`TrainingData`;
    with ``select`` every candidate's encoders are encoded (``scorecast.runs.select``)."""
    from scorecast.cache.store import EmbeddingCache
    from scorecast.data.readers import read_items
    from scorecast.runs.select import features_recipe

    recipe = load_with_data(recipe_path, variables, list(overrides or []), variant, data)
    if select and recipe.select is None:  # --select: the recipe and every variant, by the defaults
        from scorecast.config import SelectConfig

        recipe = recipe.model_copy(update={"select": SelectConfig()})
    from scorecast.training.recipe_check import check_recipe

    check_recipe(recipe, str(recipe_path))  # before reading the data: a misspelt option fails at once
    cache = EmbeddingCache(cache_dir or recipe.cache_dir)
    items = read_items(recipe.data)
    encode = features_recipe(recipe)  # selecting: every candidate's encoders
    return recipe, prepare_training_data(encode, items, cache, where=str(recipe_path), with_val=with_val)
