"""The Python API, with scikit-learn habits::

    import scorecast

    scorer = scorecast.load("runs/xacle/bundle")
    result = scorer.predict(audio=["a.wav", (waveform, 16000)], text={"caption": ["a dog barks", "rain"]})
    result.scores["score"]        # (N,) per target; result.std (N, T) or None; result.to_frame()

    scorer = scorecast.Scorer("recipes/stsb.yaml").fit("train.tsv")   # trains in-process
    scorer.save("my-scorer")                                          # a bundle folder

A path given to ``fit`` fills the recipe's ``data.path`` (so a recipe whose ``data.path`` is
``${DATA}`` needs no variable); other ``${NAME}`` variables come from ``variables={"NAME": ...}``.

Audio may be paths, ``(waveform, sample_rate)`` pairs or bare arrays (with ``sample_rate=``), so a
caller can score audio held in memory without writing files; the embedding cache keys an array by
the hash of its samples and rate. Text is a list of strings (for a scorer with one text input), a
list of ``{field: text}`` dicts, or ``{field: [texts]}``. Vectors are ``{field: (N, D) array}``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scorecast.config import Recipe, expand_vars, load_recipe, read_recipe_file
from scorecast.data.items import Item, ItemSet
from scorecast.errors import ConfigError, DataError, ScorecastError


class NotFittedError(ScorecastError):
    """The scorer has not been fitted or loaded yet."""


@dataclass
class PredictionResult:
    """Scores of N items: ``mean`` (N, T) in target units (clipped to each target's range),
    ``std`` (N, T) where the scorer gives a spread (else None), aligned with ``ids``."""

    ids: list[str]
    targets: list[str]
    mean: np.ndarray
    std: np.ndarray | None = None
    #: per item, what makes it unlike the training data (empty when nothing does); None: not checked
    flags: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def scores(self) -> dict[str, np.ndarray]:
        """{target: (N,) scores}."""
        return {t: self.mean[:, j] for j, t in enumerate(self.targets)}

    @property
    def spreads(self) -> dict[str, np.ndarray] | None:
        """{target: (N,) standard deviations}, or None."""
        return None if self.std is None else {t: self.std[:, j] for j, t in enumerate(self.targets)}

    def __getitem__(self, target: str) -> np.ndarray:
        if target not in self.targets:
            raise KeyError(f"unknown target {target!r}; expected one of {self.targets}")
        return self.mean[:, self.targets.index(target)]

    def to_frame(self):
        """A pandas DataFrame: id, one column per target, ``std.<target>`` where given."""
        from scorecast.inference.frames import prediction_frame

        return prediction_frame(self.ids, self.targets, self.mean, self.std, pred_prefix="", flags=self.flags)

    def to_records(self) -> list[dict[str, Any]]:
        """One ``{"id", "scores": {target: v}, "std": {target: v} | None, "flags": [...]}`` per item (as the
        server answers)."""
        out = []
        for i, item_id in enumerate(self.ids):
            std = None if self.std is None else {t: float(self.std[i, j]) for j, t in enumerate(self.targets)}
            scores = {t: float(self.mean[i, j]) for j, t in enumerate(self.targets)}
            flags = list(self.flags[i]) if self.flags is not None else []
            out.append({"id": item_id, "scores": scores, "std": std, "flags": flags})
        return out


def load(
    path: str | os.PathLike,
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    encoder_paths: dict[str, str] | None = None,
    device: str | None = None,
) -> Scorer:
    """Load a bundle folder as a fitted :class:`Scorer`.

    Features go through the on-disk embedding cache (``cache_dir``, else the recipe's, else
    ``$SCORECAST_CACHE`` or ``~/.cache/scorecast``); ``cache=False`` keeps them in memory.
    ``encoder_paths={OLD: NEW}`` points a model folder the bundle names to where it is here.
    """
    from scorecast.inference.bundle import load_bundle

    bundle = load_bundle(path)
    scorer = Scorer(bundle.recipe, cache=cache, cache_dir=cache_dir, encoder_paths=encoder_paths, device=device)
    scorer._attach(bundle)
    return scorer


class Scorer:
    """A scorer: ``fit`` trains one in-process from a recipe; ``predict`` scores; ``save`` writes a bundle.

    ``recipe`` is a :class:`Recipe`, a dict, or a YAML path; ``variables`` fill its ``${NAME}``s
    (as ``--var`` does on the command line). A ``data.path`` that names an unset variable waits for
    the path given to :meth:`fit`. After ``fit`` (or :func:`load`) the fitted state is in
    ``bundle_``, ``metrics_`` and (after ``fit``) ``run_``.
    """

    def __init__(
        self,
        recipe: Recipe | Mapping[str, Any] | str | os.PathLike,
        *,
        variables: Mapping[str, str] | None = None,
        cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
        encoder_paths: dict[str, str] | None = None,
        device: str | None = None,
    ) -> None:
        self.variables = {str(k): str(v) for k, v in (variables or {}).items()}
        self._raw: dict[str, Any] | None = None
        self.recipe = recipe if isinstance(recipe, Recipe) else self._load(recipe)
        self.cache = cache
        self.cache_dir = cache_dir
        self.encoder_paths = encoder_paths
        self.device = device
        self._predictor = None
        self._workdir: tempfile.TemporaryDirectory | None = None

    def __repr__(self) -> str:
        state = "fitted" if self._predictor is not None else "not fitted"
        return f"Scorer({self.recipe.name!r}, targets={self.recipe.target_names}, {state})"

    # ------------------------------------------------------------------ scikit-learn habits

    def _load(self, source: Mapping[str, Any] | str | os.PathLike, data_path: str | None = None) -> Recipe:
        """The recipe, its variables filled from ``variables``; ``data.path`` is ``data_path`` where given
        (before expansion), and left empty for now where it names a variable that is not set."""
        raw = dict(source) if isinstance(source, Mapping) else read_recipe_file(source)
        self._raw = raw
        data = raw.get("data")
        if isinstance(data, Mapping):
            data = dict(data)
            if data_path is not None:
                data["path"] = data_path
            elif isinstance(data.get("path"), str):
                try:
                    expand_vars(data["path"], self.variables, "data.path")
                except ConfigError:
                    data["path"] = None  # filled by fit(path)
            raw = {**raw, "data": data}
        try:
            return load_recipe(raw, variables=self.variables)
        except ConfigError as exc:  # the CLI's advice, said the Python way
            text = re.sub(r"pass --var (\w+)=\.\.\.", r"pass variables={'\1': ...}", str(exc))
            raise ConfigError(text) from None

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "variables": self.variables,
            "cache": self.cache,
            "cache_dir": self.cache_dir,
            "encoder_paths": self.encoder_paths,
            "device": self.device,
        }

    def set_params(self, **params: Any) -> Scorer:
        for key, value in params.items():
            if key not in self.get_params():
                raise ConfigError(
                    f"Scorer.set_params: unknown parameter {key!r}; expected one of {sorted(self.get_params())}"
                )
            setattr(self, key, self._load(value) if key == "recipe" and not isinstance(value, Recipe) else value)
        return self

    @property
    def targets(self) -> list[str]:
        return self.recipe.target_names

    @property
    def bundle_(self):
        return self._fitted().bundle

    @property
    def metrics_(self) -> dict[str, Any]:
        return self._fitted().bundle.metrics or {}

    @property
    def inputs(self):
        """What each item needs (:class:`scorecast.predictor.InputSpec`): audio, text fields, vector fields."""
        from scorecast.inference.predictor import InputSpec

        return InputSpec.from_specs(self.recipe.encoders)

    def _fitted(self):
        if self._predictor is None:
            raise NotFittedError(
                f"this Scorer ({self.recipe.name}) is not fitted yet; call fit(...) or use scorecast.load(path)"
            )
        return self._predictor

    def _embedding_cache(self):
        if not self.cache:
            return None
        from scorecast.cache.store import EmbeddingCache

        return EmbeddingCache(self.cache_dir or self.recipe.cache_dir)

    def _attach(self, bundle) -> None:
        from scorecast.inference.predictor import Predictor

        self.recipe = bundle.recipe
        self._predictor = Predictor(
            bundle, cache=self._embedding_cache(), encoder_paths=self.encoder_paths, device=self.device
        )

    # ------------------------------------------------------------------ fit / save

    def fit(
        self,
        data: str | os.PathLike | ItemSet | Sequence[Item] | None = None,
        *,
        out_dir: str | os.PathLike | None = None,
        cv: bool = False,
        overwrite: bool = False,
    ) -> Scorer:
        """Train on ``data`` (a table read with the recipe's reader, an ItemSet, a list of Items, or
        None for the recipe's ``data.path``): ``cv=False`` trains the final scorer (``scorecast
        train``), ``cv=True`` cross-validates and keeps the fold ensemble (``scorecast cv``). The run
        folder goes to ``out_dir`` (default: a temporary folder kept while this object lives). With the
        recipe's ``val_data``, ``cv=False`` early-stops on that split (``cv=True`` does not use it).
        An ``out_dir`` that already holds files is refused unless ``overwrite`` (then replaced whole)."""
        from contextlib import nullcontext

        from scorecast.inference.bundle import Bundle
        from scorecast.runs.cv import run_cv, run_train
        from scorecast.runs.outdir import check_output_dir, staged_output_dir
        from scorecast.runs.prepare import prepare_training_data

        if out_dir is not None:
            check_output_dir(out_dir, overwrite, flag="out_dir")  # before any encoding
        if isinstance(data, (str, os.PathLike)) and self._raw is not None:
            self.recipe = self._load(self._raw, data_path=str(data))  # the bundle records the table trained on
        recipe = self.recipe
        items = self._training_items(data)
        cache = self._embedding_cache()
        if cache is None:
            from scorecast.inference.predictor import MemoryCache

            cache = MemoryCache()
        self._workdir = tempfile.TemporaryDirectory(prefix="scorecast-fit-")
        from scorecast.runs.select import features_recipe

        ready = prepare_training_data(
            features_recipe(recipe),  # a recipe with select: encodes every candidate's encoders
            items,
            cache,
            work_dir=self._workdir.name,
            progress=False,
            where=f"recipe '{recipe.name}'",
            with_val=not cv,
        )
        items, features, identities = ready.items, ready.features, ready.identities
        augmented = ready.augmented
        stage = (
            nullcontext(Path(self._workdir.name) / "run") if out_dir is None else staged_output_dir(out_dir, overwrite)
        )
        with stage as target:
            common = dict(encoder_identities=identities, augmented=augmented)
            if cv:
                self.run_ = run_cv(recipe, items, features, target, **common)
            else:
                self.run_ = run_train(recipe, items, features, target, val=ready.val, **common)
        r = self.run_
        if out_dir is not None:  # the staging folder was renamed into place
            r.out_dir, r.bundle_path = Path(out_dir), Path(out_dir) / "bundle"
        bundle = Bundle(r.bundle_path, recipe, r.members, r.weights, identities, features.dims(), r.stacker, r.metrics)
        self._attach(bundle)
        return self

    def _training_items(self, data) -> ItemSet:
        from scorecast.data.readers import read_items

        if data is None:
            if self.recipe.data.path is None:
                raise ConfigError(
                    f"fit: recipe '{self.recipe.name}' has no data.path (or its variable is not set); expected "
                    f"fit('table.csv'), or Scorer(recipe, variables={{...}}) filling the path's variable"
                )
            return read_items(self.recipe.data)
        if isinstance(data, ItemSet):
            return data
        if isinstance(data, (str, os.PathLike)):
            return read_items(self.recipe.data.model_copy(update={"path": str(data)}))
        if isinstance(data, Sequence) and all(isinstance(i, Item) for i in data):
            return ItemSet(list(data), target_names=self.recipe.target_names)
        raise ConfigError(f"fit: expected a table path, an ItemSet or a list of Items, got {type(data).__name__}")

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the fitted scorer as a bundle folder at ``path`` (refused if it exists, unless ``overwrite``)."""
        from scorecast.inference.bundle import MANIFEST

        bundle = self._fitted().bundle
        dest = Path(path)
        if dest.exists():
            if not overwrite:
                raise ConfigError(f"save: {dest} exists; expected a new folder (or pass overwrite=True)")
            if not (dest / MANIFEST).is_file() and any(dest.iterdir()):
                raise ConfigError(f"save: {dest} is a non-empty folder that is not a bundle; refusing to replace it")
            shutil.rmtree(dest)
        src = Path(bundle.path)
        if not (src / MANIFEST).is_file():
            raise ConfigError(f"save: the fitted bundle's folder {src} is gone (was the run folder removed?)")
        shutil.copytree(src, dest)
        return dest

    # ------------------------------------------------------------------ predict

    def predict(
        self,
        items: str | os.PathLike | ItemSet | Sequence[Item] | None = None,
        *,
        audio: Sequence[Any] | None = None,
        text: Sequence[str] | Sequence[Mapping[str, str]] | Mapping[str, Sequence[str]] | None = None,
        vectors: Mapping[str, Any] | None = None,
        ids: Sequence[str] | None = None,
        sample_rate: int | None = None,
        on_error: str = "raise",
    ) -> PredictionResult:
        """Score items given as a table path / ItemSet / list of Items, or as ``audio=``, ``text=``,
        ``vectors=`` (see the module docstring). ``on_error="skip"`` leaves out items that cannot be
        scored (the result's ``ids`` say which were kept)."""
        predictor = self._fitted()
        if items is not None:
            if audio is not None or text is not None or vectors is not None:
                raise ConfigError("predict: give items (a table, ItemSet or Items) or audio=/text=/vectors=, not both")
            item_list = self._items_from(items)
            if isinstance(items, (str, os.PathLike, ItemSet)):  # a reader fills every field its format has
                item_list = [predictor.inputs.restrict(item) for item in item_list]
        else:
            item_list = items_from_inputs(predictor.inputs, audio, text, vectors, ids, sample_rate)
        kept, pred, _ = predictor.predict_report(item_list, on_error=on_error)
        return PredictionResult(kept, predictor.target_names, pred.mean, pred.std, pred.flags)

    def _items_from(self, items) -> list[Item]:
        if isinstance(items, (str, os.PathLike)):
            from scorecast.inference.tables import reader_for

            return list(reader_for(self.recipe, None, {}).read(items))
        if isinstance(items, ItemSet):
            return list(items)
        if isinstance(items, Sequence) and all(isinstance(i, Item) for i in items):
            return list(items)
        raise ConfigError(f"predict: expected a table path, an ItemSet or a list of Items, got {type(items).__name__}")


def items_from_inputs(inputs, audio, text, vectors, ids, sample_rate) -> list[Item]:
    """Items from ``audio=`` / ``text=`` / ``vectors=`` arguments (see the module docstring)."""
    columns: dict[str, int] = {}
    audio_in = None
    if audio is not None:
        if isinstance(audio, (str, os.PathLike, np.ndarray, tuple)):
            raise ConfigError(
                f"audio: expected a list (one entry per item), got a single {type(audio).__name__}; wrap it in [...]"
            )
        audio_in = [_audio_input(a, sample_rate, i) for i, a in enumerate(audio)]
        columns["audio"] = len(audio_in)
    texts = _texts(inputs, text)
    if texts is not None:
        columns["text"] = len(texts)
    vecs = _vectors(vectors)
    if vecs is not None:
        columns["vectors"] = len(vecs)
    if not columns:
        raise ConfigError(f"predict: expected inputs ({inputs.expected()}), got none")
    if len(set(columns.values())) > 1:
        raise DataError(f"predict: inputs disagree on the number of items: {columns}")
    n = next(iter(columns.values()))
    if ids is not None and len(ids) != n:
        raise DataError(f"predict: expected {n} ids (one per item), got {len(ids)}")
    ids = [str(i) for i in ids] if ids is not None else default_ids(audio, n)
    return [
        Item(
            id=ids[i],
            audio=audio_in[i] if audio_in else None,
            texts=texts[i] if texts else {},
            vectors=vecs[i] if vecs else {},
        )
        for i in range(n)
    ]


def default_ids(audio: Sequence[Any] | None, n: int) -> list[str]:
    """Item ids where none are given: an audio file's name (its path as given where two names clash),
    else the position ("0", "1", ...)."""
    ids = [str(i) for i in range(n)]
    if audio is None:
        return ids
    paths = {i: a for i, a in enumerate(audio) if isinstance(a, (str, os.PathLike))}
    names = {i: Path(a).name for i, a in paths.items()}
    clash = len(set(names.values())) < len(names)
    for i, a in paths.items():
        ids[i] = os.fspath(a) if clash else names[i]
    return ids


def _audio_input(a: Any, sample_rate: int | None, i: int):
    if isinstance(a, (str, os.PathLike)):
        return str(Path(a).expanduser().resolve())
    if isinstance(a, tuple):
        if len(a) != 2:
            raise DataError(f"audio[{i}]: expected (waveform, sample_rate), got a tuple of {len(a)}")
        return (np.asarray(a[0]), int(a[1]))
    if isinstance(a, np.ndarray) or hasattr(a, "__array__"):
        if sample_rate is None:
            raise ConfigError(
                f"audio[{i}]: a bare array needs its rate; pass sample_rate=... or (waveform, sample_rate)"
            )
        return (np.asarray(a), int(sample_rate))
    raise DataError(f"audio[{i}]: expected a path, an array or (array, sample_rate), got {type(a).__name__}")


def _texts(inputs, text) -> list[dict[str, str]] | None:
    if text is None:
        return None
    if isinstance(text, str):
        raise ConfigError(
            "text: expected a list (one entry per item) or {field: [texts]}, got a single string; wrap it in [...]"
        )
    if isinstance(text, Mapping):
        lengths = {k: len(v) for k, v in text.items()}
        if any(isinstance(v, str) for v in text.values()):
            raise ConfigError("text: expected {field: [texts]} with a list per field, got a single string for a field")
        if len(set(lengths.values())) > 1:
            raise DataError(f"text: fields disagree on the number of items: {lengths}")
        n = next(iter(lengths.values()), 0)
        return [{k: str(v[i]) for k, v in text.items()} for i in range(n)]
    out = []
    for i, t in enumerate(text):
        if isinstance(t, Mapping):
            out.append({str(k): str(v) for k, v in t.items()})
        elif isinstance(t, str):
            if len(inputs.texts) != 1:
                raise ConfigError(
                    f"text[{i}]: a plain string fits a scorer with one text input; this one reads "
                    f"{list(inputs.texts) or 'no text'}; give {{field: text}} dicts"
                )
            out.append({inputs.texts[0]: t})
        else:
            raise DataError(f"text[{i}]: expected a string or {{field: text}}, got {type(t).__name__}")
    return out


def _vectors(vectors) -> list[dict[str, np.ndarray]] | None:
    if vectors is None:
        return None
    if not isinstance(vectors, Mapping):
        raise ConfigError(f"vectors: expected {{field: (N, D) array}}, got {type(vectors).__name__}")
    arrays = {k: [np.asarray(v, dtype=np.float32) for v in rows] for k, rows in vectors.items()}
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"vectors: fields disagree on the number of items: {lengths}")
    n = next(iter(lengths.values()), 0)
    return [{k: v[i] for k, v in arrays.items()} for i in range(n)]
