"""The recipe schema: typed, strict (an unknown key is an error), the single source of truth.

A recipe YAML loads into :class:`Recipe`; ``${VAR}`` in strings is filled from ``--var VAR=value``
or the environment; CLI flags override fields by dotted path (``training.max_epochs=5``); every run
saves its resolved recipe beside its outputs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from scorecast.errors import ConfigError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TargetSpec(Strict):
    """One predicted score: its name, its range, and the bin step for class/ordinal heads."""

    name: str = "score"
    low: float = 1.0
    high: float = 5.0
    step: float = 1.0
    #: train on scores outside [low, high] (otherwise such a score is an error naming the file, row and column)
    allow_out_of_range: bool = False

    @model_validator(mode="after")
    def _check(self) -> TargetSpec:
        if not self.high > self.low:
            raise ValueError(f"target '{self.name}': expected high > low, got low={self.low}, high={self.high}")
        if self.step <= 0:
            raise ValueError(f"target '{self.name}': expected step > 0, got {self.step}")
        return self

    @property
    def num_bins(self) -> int:
        """Number of score levels low, low+step, ..., high."""
        return int(round((self.high - self.low) / self.step)) + 1

    def bin_centers(self):
        import numpy as np

        return self.low + self.step * np.arange(self.num_bins)


class DataConfig(Strict):
    reader: str = "table"
    path: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    on_error: Literal["raise", "skip"] = "raise"


class EncoderSpec(Strict):
    """One encoder applied to one input of each item.

    ``input`` is ``audio``, ``audio.<field>`` (a named audio field: ``audio.generated``,
    ``audio.reference``), ``text.<field>`` or ``vector.<field>``; ``alias`` names the feature
    (defaults to ``<name>:<input>``); ``sequence`` also keeps the frame/token sequence.
    """

    name: str
    input: str = "audio"
    alias: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    sequence: bool = False

    @model_validator(mode="after")
    def _check_input(self) -> EncoderSpec:
        if not (self.input == "audio" or re.fullmatch(r"(audio|text|vector)\.[\w\-]+", self.input)):
            raise ValueError(
                f"encoder input: expected 'audio', 'audio.<field>', 'text.<field>' or 'vector.<field>', got '{self.input}'"
            )
        return self

    @property
    def feature_name(self) -> str:
        return self.alias or f"{self.name}:{self.input}"

    @property
    def reads_audio(self) -> bool:
        """True for ``audio`` and ``audio.<field>`` inputs."""
        return self.input == "audio" or self.input.startswith("audio.")


class ASRConfig(Strict):
    """Transcribe each item's audio into ``texts[field]`` before encoding (the grammar recipe).

    ``backend`` is ``whisper`` (``params.model`` = a local Whisper folder) or ``pocketsphinx``
    (the offline English model the package ships); default: whisper when a model is given.
    Items that already have the field keep it unless ``overwrite``.
    """

    backend: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    field: str = "transcript"
    overwrite: bool = False


class Component(Strict):
    """A registered component built by name with parameters."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class LossTerm(Component):
    weight: float = 1.0


class ModelConfig(Strict):
    fusion: Component = Field(default_factory=lambda: Component(name="concat"))
    head: Component = Field(default_factory=lambda: Component(name="regression"))


class EarlyStopping(Strict):
    monitor: str = "val_lcc"  # val_srcc | val_lcc | val_rmse | val_sys_srcc ... ; rmse/mse/mae minimised
    patience: int = Field(default=10, ge=0)  # epochs without a better monitor value
    #: the patience is at least this many optimizer steps: on a small set an epoch is one or two steps, and
    #: a patience of a few epochs stops a fold that started inverted before it can recover
    min_patience_steps: int = Field(default=50, ge=0)
    #: early stopping never stops before this many optimizer steps (nor before the end of that epoch)
    warmup_steps: int = Field(default=100, ge=0)


class SWAConfig(Strict):
    enabled: bool = False
    lr: float | None = None
    start_epoch: float = 0.75


class SampleWeights(Strict):
    kind: Literal["none", "sqrt-inverse", "inverse"] = "none"
    bins: int | None = None  # default: the target's levels
    min: float = 0.1
    max: float = 10.0


class Negatives(Strict):
    """Synthetic negatives: items with one input swapped for another item's, scored ``score``."""

    ratio: float = 0.0
    score: float | None = None  # default: the target's low end
    swap: str | None = None  # feature name to swap (default: the last encoder's feature)


class Augment(Strict):
    copies: int = 0  # augmented copies of each training clip, re-encoded through the cache
    noise_snr_db: tuple[float, float] | None = None
    gain_db: tuple[float, float] | None = None
    shift_s: float | None = None
    speed: tuple[float, float] | None = None


class Listeners(Strict):
    """Train on each listener's ratings instead of the clip means: the model's output is the mean
    listener's score, and each listener's rating is modelled as ``centre + scale_l * (mean - centre) +
    bias_l`` (``scale`` learnt when true), as UTMOS did with listener embeddings. Biases and log-scales
    are centred over the listeners (the mean listener has bias 0, scale 1) and penalised by ``l2``
    (in units of half the target range). Needs ratings with rater ids (a long table's ``rater``
    column, MUSHRA participant lists, ``yourtts``); one target."""

    scale: bool = True
    l2: float = Field(default=0.01, ge=0.0)


class TrainingConfig(Strict):
    max_epochs: int = Field(default=50, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    #: learning rate of a part of the model as a multiple of ``lr``: ``{head: 100}`` lets a one-number head
    #: calibrate fast while an identity-initialised fusion (``siamese``) moves slowly
    lr_multipliers: dict[Literal["fusion", "head"], float] = Field(default_factory=dict)
    weight_decay: float = 1e-2
    scheduler: Literal["none", "onecycle", "cosine", "plateau"] = "cosine"
    early_stopping: EarlyStopping | None = Field(default_factory=EarlyStopping)
    val_fraction: float = Field(default=0.1, ge=0, lt=1)  # held out of the training fold for early stopping
    accumulate_grad_batches: int = Field(default=1, ge=1)
    gradient_clip_val: float | None = 1.0
    precision: str | None = None  # default: 16-mixed on GPU, 32 on CPU
    swa: SWAConfig = Field(default_factory=SWAConfig)
    seed: int = 0
    deterministic: bool = True
    accelerator: str = "cpu"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    sample_weights: SampleWeights = Field(default_factory=SampleWeights)
    negatives: Negatives = Field(default_factory=Negatives)
    mixup_alpha: float = 0.0
    #: listener-aware training on per-listener ratings (None: train on the clip means)
    listeners: Listeners | None = None
    augment: Augment = Field(default_factory=Augment)
    standardize_features: bool = True
    #: groups of pooled features standardised with ONE set of per-dimension statistics, computed over the
    #: group's features stacked (e.g. ``[[egemaps_gen, egemaps_ref]]``): the two sides of a pair stay on
    #: one scale, so a ``siamese`` cosine of them is the cosine of jointly z-scored vectors; each own-
    #: statistics standardisation would remove what the generated clips share and change that cosine
    standardize_together: list[list[str]] = Field(default_factory=list)
    #: pooled features left as they are when the rest are standardised (e.g. L2-normalised speaker
    #: embeddings, whose raw cosine is the measure: z-scoring them would change it)
    standardize_skip: list[str] = Field(default_factory=list)
    #: start the head's output layer at the least-squares fit of the initial fused features to the training
    #: targets (a small set then refines a calibrated start instead of first undoing a random, possibly
    #: inverted, one); heads without a mean layer ignore it
    calibrate_head: bool = False
    loggers: list[Literal["csv", "tensorboard", "mlflow"]] = Field(default_factory=lambda: ["csv"])
    progress: bool = False
    #: torch intra-op threads while training (None: chosen for the work, ``training.trainer.auto_threads``:
    #: 1 for a small head on pooled features, torch's default for big or sequence models; recorded in
    #: history.csv). On a small or busy CPU the default pool spins under contention and small heads
    #: train many times slower than on 1 thread
    threads: int | None = None

    @model_validator(mode="after")
    def _check_multipliers(self) -> TrainingConfig:
        bad = {k: v for k, v in self.lr_multipliers.items() if not v > 0}
        if bad:
            raise ValueError(f"training.lr_multipliers: expected positive numbers, got {bad}")
        return self

    @model_validator(mode="after")
    def _check_together(self) -> TrainingConfig:
        names = [n for group in self.standardize_together for n in group]
        if any(len(group) < 2 for group in self.standardize_together) or len(set(names)) != len(names):
            raise ValueError(
                "training.standardize_together: expected groups of at least two feature names, each name in one "
                f"group only, got {self.standardize_together}"
            )
        both = sorted(set(names) & set(self.standardize_skip))
        if both:
            raise ValueError(
                f"training.standardize_skip: expected features not also in standardize_together, got {both} in both"
            )
        return self

    @model_validator(mode="after")
    def _check_threads(self) -> TrainingConfig:
        if self.threads is not None and self.threads < 1:
            raise ValueError(
                f"training.threads: expected a whole number >= 1 (or null for torch's default), got {self.threads}"
            )
        return self


class CVConfig(Strict):
    folds: int = Field(default=5, ge=2)
    kind: Literal["kfold", "stratified", "group", "stratified-group"] = "kfold"
    group_by: str | None = None  # 'group' (the item's group) or a meta field
    repeats: int = Field(default=1, ge=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    ensemble: Literal["weighted", "mean", "stack"] = "weighted"
    weight_metric: str = "lcc"
    stratify_bins: int = Field(default=5, ge=1)


class SelectConfig(Strict):
    """Honest model choice (``scorecast cv --select``): inside each outer training fold, an inner CV
    scores each candidate, and the best one trains that fold's member; the outer validation items
    never take part in the choice, so the outer figures stay honest.

    ``candidates``: variant names (``default`` = the recipe as written); empty: the recipe and every
    variant. ``grid``: dotted keys -> values; each combination (applied to the recipe as written) is a
    candidate too. ``folds``: inner folds. ``metric``: what the inner CV compares (default
    ``cv.weight_metric``; pooled over the inner folds' out-of-fold predictions).
    """

    candidates: list[str] = Field(default_factory=list)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    folds: int = Field(default=3, ge=2)
    metric: str | None = None


class EvaluateConfig(Strict):
    metrics: list[str] = Field(default_factory=lambda: ["mse", "rmse", "mae", "lcc", "srcc", "ktau"])
    system_level: bool = False
    bootstrap: int = Field(default=1000, ge=0)
    per_bin: bool = True


class OutputConfig(Strict):
    submission: str | None = None  # a submission writer: xacle | audiomos | shl | da5401
    round_scores: bool = False


class Recipe(Strict):
    name: str = "recipe"
    description: str = ""
    data: DataConfig = Field(default_factory=DataConfig)
    test_data: DataConfig | None = None
    #: a separate validation split (e.g. STS-B's sts-dev.csv): `train` trains every member on all of
    #: ``data`` and early-stops and reports on this split instead of holding out ``training.val_fraction``;
    #: `cv` ignores it (each fold carries its own validation)
    val_data: DataConfig | None = None
    targets: list[TargetSpec] = Field(default_factory=lambda: [TargetSpec()])
    asr: ASRConfig | None = None
    encoders: list[EncoderSpec] = Field(default_factory=list)
    model: ModelConfig = Field(default_factory=ModelConfig)
    losses: list[LossTerm] = Field(default_factory=lambda: [LossTerm(name="mse")])
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    cv: CVConfig = Field(default_factory=CVConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    cache_dir: str | None = None
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)  # name -> overrides (dotted keys)
    #: choose among the variants (or a grid) by an inner CV inside each training fold (``cv --select``)
    select: SelectConfig | None = None

    @property
    def target_names(self) -> list[str]:
        return [t.name for t in self.targets]

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        """The name becomes a folder under runs/: one plain path component, never a path."""
        if not re.fullmatch(r"[^/\\\0:~][^/\\\0:]*", name) or ".." in name:
            raise ValueError(
                f"recipe name: expected a plain name (no '/', '\\', ':', '..'; it names a run folder), got {name!r}"
            )
        return name


_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand_vars(value: Any, variables: dict[str, str], where: str = "") -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in every string, from ``variables`` then the environment."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in variables:
                return variables[name]
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{where or 'recipe'}: variable ${{{name}}} is not set; pass --var {name}=... or set it in the environment"
            )

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_vars(v, variables, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_vars(v, variables, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def apply_overrides(raw: dict[str, Any], overrides: list[str] | dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys (``training.max_epochs=5``; values parsed as YAML) on a raw recipe dict."""
    pairs = overrides.items() if isinstance(overrides, dict) else [_split_override(o) for o in overrides]
    for key, value in pairs:
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            if isinstance(node, list):
                node = node[int(part)]
                continue
            node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise ConfigError(f"override '{key}': '{part}' is a value, not a section")
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return raw


def parse_assignments(
    texts: Sequence[str] | None,
    flag: str,
    *,
    example: str = "KEY=VALUE",
    yaml_values: bool = True,
    require_value: bool = False,
) -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` -> {KEY: VALUE}: the one parser of the command line's assignments
    (``--set``, ``--var``, ``--option``, ``--param``, ``--encoder-path``). Values are parsed as YAML
    (an empty value is ``""``) unless ``yaml_values`` is false; ``require_value`` refuses ``KEY=``.
    A text without ``=`` or with an empty key is a ConfigError naming ``flag`` and ``example``."""
    out: dict[str, Any] = {}
    for text in texts or []:
        key, sep, value = str(text).partition("=")
        if not sep or not key.strip() or (require_value and not value):
            raise ConfigError(f"{flag}: expected {example}, got {text!r}")
        out[key.strip()] = (yaml.safe_load(value) if value.strip() else "") if yaml_values else value
    return out


def _split_override(text: str) -> tuple[str, Any]:
    return next(iter(parse_assignments([text], "override", example="KEY=VALUE (e.g. training.max_epochs=5)").items()))


def read_recipe_file(path: str | Path) -> dict[str, Any]:
    """The raw mapping of a recipe YAML file (nothing expanded or validated); ConfigError when the
    file is missing, not YAML, or not a mapping at the top level."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe file not found: expected a YAML file at {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def load_recipe(
    source: str | Path | dict[str, Any],
    variables: dict[str, str] | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    variant: str | None = None,
) -> Recipe:
    """Load and validate a recipe from a YAML file or a dict; unknown keys are errors."""
    where = str(source) if not isinstance(source, dict) else "recipe"
    raw = dict(source) if isinstance(source, dict) else read_recipe_file(source)
    raw = expand_vars(raw, variables or {}, "")
    if variant is not None:
        variants = raw.get("variants") or {}
        if variant not in variants:
            raise ConfigError(
                f"{where}: unknown variant '{variant}'; expected one of: {', '.join(variants) or '(none)'}"
            )
        raw = apply_overrides(raw, dict(variants[variant]))
        raw["name"] = f"{raw.get('name', 'recipe')}-{variant}"
    if overrides:
        raw = apply_overrides(raw, overrides)
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{where}: invalid recipe:\n{_format_validation(exc)}") from exc


def _format_validation(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        got = err.get("input")
        got_text = f" (got {got!r})" if not isinstance(got, dict) else ""
        lines.append(f"  {loc}: {err['msg']}{got_text}")
    return "\n".join(lines)


def save_recipe(recipe: Recipe, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))


def load_with_data(
    recipe_path: Path, variables: dict[str, str], overrides: list[str], variant: str | None, data: Path | None
):
    """The recipe, with ``data.path`` replaced by ``data`` (before ``${VAR}`` expansion, so a variable
    used only in the replaced path need not be set)."""
    if data is None:
        return load_recipe(recipe_path, variables=variables, overrides=overrides, variant=variant)
    raw = read_recipe_file(recipe_path)
    if not isinstance(raw.get("data", {}), dict):
        raise ConfigError(f"{recipe_path}: expected 'data' to be a mapping, got {type(raw['data']).__name__}")
    raw.setdefault("data", {})["path"] = str(data)
    try:
        return load_recipe(raw, variables=variables, overrides=overrides, variant=variant)
    except ConfigError as exc:
        raise ConfigError(f"{recipe_path} (with --data {data}): {exc}") from exc
