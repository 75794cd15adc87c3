"""The in-process predictor: a loaded bundle, its encoders, and a cache -> scores for items.

One class serves the ``predict`` command, the Python API and the HTTP server::

    predictor = Predictor.from_path("runs/xacle/bundle", cache=EmbeddingCache(...))
    prediction = predictor.predict(items)          # Prediction(mean (N, T), std (N, T) | None)
    records = predictor.score_records(items)       # [{"id", "scores": {t: v}, "std": {t: v} | None}]

Items may carry audio as a path or as an in-memory ``(waveform, sample_rate)`` pair (the cache key
of an array is the hash of its samples and rate; see :func:`scorecast.data.audio.audio_input_hash`).

At construction the encoders the bundle names are built once (model weights load lazily, or at
:meth:`Predictor.warm_up`), and each one's identity is checked against the identity saved in the
bundle: a mismatch is refused with the differences listed. A bundle whose recipe names a local
model folder that does not exist here is refused with the folder's name; ``encoder_paths``
(``--encoder-path OLD=NEW`` on the command line) points such folders elsewhere.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scorecast.cache.memory import MemoryCache
from scorecast.cache.protocol import Cache
from scorecast.cache.store import EmbeddingCache
from scorecast.config import EncoderSpec, TargetSpec, parse_assignments
from scorecast.data.features import FeatureSet
from scorecast.data.items import Item, ItemSet
from scorecast.encoders.base import Encoder
from scorecast.errors import BundleError, ConfigError, DataError, ScorecastError


class UnfamiliarInputWarning(UserWarning):
    """Some items are unlike the scorer's training data (silence, clipping, features far outside)."""


@dataclass(frozen=True)
class InputSpec:
    """What each item must bring for a bundle: audio or not, which named audio fields, which text
    fields, which vector fields."""

    audio: bool
    texts: tuple[str, ...]
    vectors: tuple[str, ...]
    audios: tuple[str, ...] = ()

    @classmethod
    def from_specs(cls, specs: Sequence[EncoderSpec]) -> InputSpec:
        from scorecast.encoders.base import ENCODERS
        from scorecast.encoders.pipeline import reference_field

        texts, vectors, audios, audio = [], [], [], False
        for spec in specs:
            # a full-reference encoder's second clip (an encoder unknown here fails later, where it is built)
            ref = reference_field(spec, ENCODERS.get(spec.name)) if spec.name in ENCODERS else None
            if ref is not None and ref not in audios:
                audios.append(ref)
            if spec.input == "audio":
                audio = True
                continue
            kind, name = spec.input.split(".", 1)
            bucket = {"text": texts, "vector": vectors, "audio": audios}[kind]
            if name not in bucket:
                bucket.append(name)
        return cls(audio, tuple(texts), tuple(vectors), tuple(audios))

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"audio": self.audio, "text": list(self.texts), "vectors": list(self.vectors)}
        if self.audios:
            out["audio_fields"] = list(self.audios)
        return out

    def expected(self) -> str:
        parts = (
            (["audio"] if self.audio else [])
            + [f"audio '{a}'" for a in self.audios]
            + [f"text '{t}'" for t in self.texts]
            + [f"vector '{v}'" for v in self.vectors]
        )
        return ", ".join(parts) or "nothing"

    def restrict(self, item: Item) -> Item:
        """A copy of ``item`` holding only the inputs this scorer reads. A challenge reader fills every
        field its format has (DA5401's ``system_prompt``, audio beside an SHL transcript table), so
        items read from a table are restricted before :meth:`check`; inputs given directly are not."""
        from dataclasses import replace

        return replace(
            item,
            audio=item.audio if self.audio else None,
            audios={k: v for k, v in item.audios.items() if k in self.audios},
            texts={k: v for k, v in item.texts.items() if k in self.texts},
            vectors={k: v for k, v in item.vectors.items() if k in self.vectors},
        )

    def check(self, item: Item, where: str = "") -> None:
        """Raise DataError naming what ``item`` lacks, or brings that this scorer does not read."""
        where = where or f"item '{item.id}'"
        problems = []
        if self.audio and item.audio is None:
            problems.append("no audio")
        if not self.audio and item.audio is not None:
            problems.append("audio, which this scorer does not use")
        missing_a = [a for a in self.audios if a not in item.audios]
        extra_a = sorted(set(item.audios) - set(self.audios))
        if missing_a:
            problems.append(f"no audio field(s) {', '.join(missing_a)}")
        if extra_a:
            problems.append(f"unknown audio field(s) {', '.join(extra_a)}")
        missing_t = [t for t in self.texts if t not in item.texts]
        extra_t = sorted(set(item.texts) - set(self.texts))
        missing_v = [v for v in self.vectors if v not in item.vectors]
        extra_v = sorted(set(item.vectors) - set(self.vectors))
        if missing_t:
            problems.append(f"no text field(s) {', '.join(missing_t)}")
        if extra_t:
            problems.append(f"unknown text field(s) {', '.join(extra_t)}")
        if missing_v:
            problems.append(f"no vector field(s) {', '.join(missing_v)}")
        if extra_v:
            problems.append(f"unknown vector field(s) {', '.join(extra_v)}")
        if problems:
            raise DataError(f"{where}: expected {self.expected()}; got {'; '.join(problems)}")


def remap_params(params: dict[str, Any], encoder_paths: dict[str, str]) -> dict[str, Any]:
    """Replace a leading ``OLD`` folder by ``NEW`` in every string parameter (exact or ``OLD/...``)."""
    out = {}
    for key, value in params.items():
        out[key] = remap_path(value, encoder_paths) if isinstance(value, str) else value
    return out


def remap_path(value: str, encoder_paths: dict[str, str]) -> str:
    for old, new in encoder_paths.items():
        old_n = old.rstrip("/")
        if value.rstrip("/") == old_n:
            return new
        if value.startswith(old_n + "/"):
            return new.rstrip("/") + value[len(old_n) :]
    return value


def parse_encoder_paths(pairs: Sequence[str] | None) -> dict[str, str]:
    """``["OLD=NEW", ...]`` -> {OLD: NEW} (for ``--encoder-path``)."""
    return parse_assignments(
        pairs,
        "--encoder-path",
        example="OLD=NEW (the folder the bundle names, then where it is now)",
        yaml_values=False,
        require_value=True,
    )


def _looks_local(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~"))


def _remap_identity(identity: Any, encoder_paths: dict[str, str]) -> Any:
    if isinstance(identity, dict):
        return {k: _remap_identity(v, encoder_paths) for k, v in identity.items()}
    if isinstance(identity, str):
        return remap_path(identity, encoder_paths)
    return identity


class Predictor:
    """A bundle with its encoders built and checked; scores items (see the module docstring).

    ``cache``: an :class:`EmbeddingCache` (features read from and written to disk), or None for an
    in-memory :class:`MemoryCache`. ``encoder_paths`` maps a model folder named in the bundle to
    where it is on this machine. Not thread-safe: call it from one thread at a time.
    """

    def __init__(
        self,
        bundle: Any,
        *,
        cache: Cache | None = None,
        encoder_paths: dict[str, str] | None = None,
        device: str | None = None,
        batch_size: int = 32,
        progress: bool = False,
    ) -> None:
        self.bundle = bundle
        self.cache = cache if cache is not None else MemoryCache()
        self.encoder_paths = dict(encoder_paths or {})
        self.device = device
        self.batch_size = int(batch_size)
        self.progress = progress
        self.specs: list[EncoderSpec] = [
            spec.model_copy(update={"params": remap_params(spec.params, self.encoder_paths)})
            for spec in bundle.encoder_specs
        ]
        self.inputs = InputSpec.from_specs(self.specs)
        self.encoders: dict[str, Encoder] = {spec.feature_name: self._build_encoder(spec) for spec in self.specs}

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike,
        *,
        cache_dir: str | os.PathLike | None = None,
        encoder_paths: dict[str, str] | None = None,
        warm_up: bool = True,
        **kwargs: Any,
    ) -> Predictor:
        """Load a bundle folder; ``cache_dir`` None keeps features in memory only."""
        from scorecast.inference.bundle import load_bundle

        cache = kwargs.pop("cache", None)
        if cache is None and cache_dir is not None:
            cache = EmbeddingCache(cache_dir)
        predictor = cls(load_bundle(path), cache=cache, encoder_paths=encoder_paths, **kwargs)
        if warm_up:
            predictor.warm_up()
        return predictor

    # ------------------------------------------------------------------ set-up

    def _build_encoder(self, spec: EncoderSpec) -> Encoder:
        from scorecast.encoders.pipeline import build_encoder
        from scorecast.inference.bundle import check_encoder_identity

        where = f"bundle {self.bundle.path}: encoder '{spec.name}' (feature '{spec.feature_name}')"
        hint = (
            "point it at the folder on this machine with --encoder-path OLD=NEW "
            "(Python: scorecast.load(path, encoder_paths={OLD: NEW}))"
        )
        for key, value in spec.params.items():
            if isinstance(value, str) and _looks_local(value) and not Path(value).expanduser().exists():
                raise BundleError(
                    f"{where} expects the local model folder {value} (params.{key}), which does not exist here; {hint}"
                )
        try:
            encoder = build_encoder(spec, self.device)
        except ConfigError as exc:
            raise BundleError(f"{where} cannot be built here: {exc}; if the model lives elsewhere, {hint}") from exc
        expected = self.bundle.encoder_identities.get(spec.feature_name)
        if expected is None:
            warnings.warn(f"{where}: the bundle saved no identity for this encoder; not checked", stacklevel=3)
        else:
            check_encoder_identity(_remap_identity(expected, self.encoder_paths), encoder.identity(), what=where)
        return encoder

    def warm_up(self) -> None:
        """Load every encoder's model now (weights load lazily otherwise) by encoding one small input."""
        rng = np.random.default_rng(0)
        for spec in self.specs:
            enc = self.encoders[spec.feature_name]
            if getattr(enc, "reference_param", None):
                continue  # compares two clips: signal measures, no model to load
            if spec.reads_audio:
                sr = int(getattr(enc, "sample_rate", 16000))
                probe: Any = (0.05 * rng.standard_normal(sr)).astype(np.float32)
            elif spec.input.startswith("text."):
                probe = "warm up"
            else:
                continue  # vector encoders hold no model to load
            try:
                enc.encode_batch([probe])
            except ScorecastError as exc:
                warnings.warn(
                    f"encoder '{spec.name}': warm-up input refused ({exc}); the model loads on first use", stacklevel=2
                )

    # ------------------------------------------------------------------ properties

    @property
    def targets(self) -> list[TargetSpec]:
        return list(self.bundle.targets)

    @property
    def target_names(self) -> list[str]:
        return [t.name for t in self.bundle.targets]

    @property
    def recipe(self):
        return self.bundle.recipe

    # ------------------------------------------------------------------ predicting

    def features(self, items: Sequence[Item] | ItemSet, on_error: str = "raise") -> tuple[FeatureSet, dict[str, str]]:
        """Encode every input of every item through the cache -> (FeatureSet in item order, skipped).

        With ``on_error="skip"`` items an encoder cannot read are left out and listed in ``skipped``
        (item id -> why); with ``"raise"`` the first such item raises.
        """
        from scorecast.encoders.pipeline import encode_items, join_results

        items = list(items)
        results = {}
        for spec in self.specs:
            name = spec.feature_name
            res = encode_items(
                items,
                spec,
                self.cache,
                batch_size=self.batch_size,
                workers=0,  # in this process: a pool per call would cost more than a served micro-batch
                on_error=on_error,
                progress=self.progress,
                encoder=self.encoders[name],
                device=self.device,
            )
            want = self.bundle.feature_dims.get(name)
            if want is not None and len(res.ids) and res.pooled.shape[1] != want:
                raise BundleError(
                    f"encoder '{spec.name}' (feature '{name}') gives vectors of size {res.pooled.shape[1]}, "
                    f"the bundle was trained on size {want}"
                )
            results[name] = res
        return join_results(items, results, self.bundle.feature_dims)

    def predict(self, items: Sequence[Item] | ItemSet):
        """Prediction(mean (N, T), std (N, T) | None) for every item, scores clipped to each target's range."""
        return self.predict_report(items, on_error="raise")[1]

    def predict_report(self, items: Sequence[Item] | ItemSet, on_error: str = "raise"):
        """(ids, Prediction, skipped {item id: why}): with ``on_error="skip"`` items that lack an input or
        cannot be encoded are left out (and named in ``skipped``) instead of raising."""
        items = list(items)
        if self.recipe.asr is not None:  # transcripts are an input the recipe makes itself
            from scorecast.encoders.asr import transcribe_if_needed

            transcribe_if_needed(
                self.recipe, [i for i in items if i.audio is not None], getattr(self.cache, "root", None)
            )
        skipped: dict[str, str] = {}
        usable = []
        for item in items:
            try:
                self.inputs.check(item)
                usable.append(item)
            except DataError as exc:
                if on_error != "skip":
                    raise
                skipped[item.id] = str(exc)
        if not usable:
            first = f"; the first: {next(iter(skipped.values()))}" if skipped else ""
            raise DataError(f"predict: expected at least one item to score, got none{first}")
        features, more = self.features(usable, on_error=on_error)
        skipped.update(more)
        if len(features) == 0:
            raise DataError(f"predict: no item could be encoded; the first: {next(iter(skipped.values()))}")
        pred = self.flag_unfamiliar(self.bundle.predict_features(features), features, usable)
        return list(features.ids), pred, skipped

    def flag_unfamiliar(self, pred, features: FeatureSet, items: Sequence[Item]):
        """``pred`` with ``flags`` per item (features unlike the training data, silent or clipped audio),
        the spread of flagged items widened, and a warning naming the first (see scorecast.inference.novelty)."""
        from scorecast.inference.novelty import feature_flags, item_audio_flags, widen_std

        flags = feature_flags(self.bundle.input_profile, features)
        if self.inputs.audio:
            by_id = {item.id: item for item in items}
            for i, item_id in enumerate(features.ids):
                flags[i] += item_audio_flags(by_id[item_id].audio if item_id in by_id else None)
        flagged = np.array([bool(f) for f in flags], dtype=bool)
        pred.std = widen_std(pred.std, flagged, self.targets)
        pred.flags = flags
        if flagged.any():
            first = int(np.flatnonzero(flagged)[0])
            warnings.warn(
                f"{int(flagged.sum())} of {len(flags)} item(s) are unlike what the scorer was trained on; treat "
                f"their scores with caution (see the flags column); the first: item '{features.ids[first]}': "
                f"{'; '.join(flags[first])}",
                UnfamiliarInputWarning,
                stacklevel=3,
            )
        return pred

    def score_records(self, items: Sequence[Item]) -> list[dict[str, Any]]:
        """One ``{"id", "scores": {target: value}, "std": {target: value} | None}`` per item."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnfamiliarInputWarning)  # the records carry the flags
            pred = self.predict(items)
        names = self.target_names
        out = []
        for i, item in enumerate(items):
            std = None if pred.std is None else {t: float(pred.std[i, j]) for j, t in enumerate(names)}
            flags = list(pred.flags[i]) if pred.flags is not None else []
            scores = {t: float(pred.mean[i, j]) for j, t in enumerate(names)}
            out.append({"id": item.id, "scores": scores, "std": std, "flags": flags})
        return out

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` shows: name, targets, inputs, encoders, members, metrics, model card."""
        from scorecast.version import __version__

        b = self.bundle
        return {
            "name": b.recipe.name,
            "description": b.recipe.description,
            "targets": [t.model_dump(mode="json") for t in b.targets],
            "inputs": self.inputs.describe(),
            "encoders": [
                {
                    "feature": s.feature_name,
                    "name": s.name,
                    "input": s.input,
                    "identity": self.encoders[s.feature_name].identity(),
                }
                for s in self.specs
            ],
            "members": len(b.members),
            "metrics": b.metrics or {},
            "model_card": b.model_card,
            "bundle_scorecast_version": b.manifest.get("scorecast_version"),
            "scorecast_version": __version__,
        }
