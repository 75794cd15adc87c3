"""Checks of a recipe that need the registries, run when the recipe is loaded for training (before
any encoding), so a misspelled parameter or an unknown metric fails in a second, not after an hour
of feature extraction.

``check_recipe(recipe, where)`` raises :class:`ConfigError` naming the recipe field:

* every component's parameters against its constructor (``encoders[i].params``,
  ``model.fusion.params``, ``model.head.params``, ``losses[i].params``, ``data.options``); losses,
  heads and estimators are built once on a dummy input size, so their own value checks run too;
* ``training.early_stopping.monitor``, ``cv.weight_metric`` and ``evaluate.metrics`` against the
  metrics the run will compute.
"""

from __future__ import annotations

import inspect
from typing import Any

from scorecast.config import Recipe
from scorecast.errors import ConfigError

_SUPPLIED = {"inputs", "in_dim", "targets", "device", "sequence", "self"}


def constructor_names(factory: Any) -> list[str] | None:
    """The keyword names ``factory`` accepts, or None when it takes ``**kwargs`` (anything goes)."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return None
    names = []
    for name, p in sig.parameters.items():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            names.append(name)
    return names


def check_params(factory: Any, params: dict[str, Any], where: str, what: str) -> None:
    """ConfigError when ``params`` holds a name ``factory``'s constructor does not take."""
    names = constructor_names(factory)
    if names is None:
        return
    unknown = sorted(set(params) - set(names))
    if unknown:
        known = [n for n in names if n not in _SUPPLIED]
        raise ConfigError(
            f"{where}: unknown parameter(s) {', '.join(unknown)} for {what}; "
            f"expected some of: {', '.join(known) or '(none)'}"
        )


def _build(registry: Any, name: str, where: str, **kwargs: Any) -> None:
    try:
        registry.build(name, **kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot build '{name}' with {sorted(kwargs)}: {exc}") from exc


def check_components(recipe: Recipe, where: str) -> None:
    """Every registered component the recipe names exists and takes the parameters given."""
    from scorecast.data.readers import READERS
    from scorecast.encoders.base import encoder_params
    from scorecast.encoders.pipeline import resolve_encoder_class
    from scorecast.losses import LOSSES
    from scorecast.models import FUSIONS, HEADS
    from scorecast.models.estimators import ESTIMATORS, is_estimator

    for key, data in (("data", recipe.data), ("val_data", recipe.val_data), ("test_data", recipe.test_data)):
        if data is not None:
            try:
                reader = READERS.get(data.reader)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {key}.reader: {exc}") from exc
            check_params(reader, data.options, f"{where}: {key}.options", f"reader '{data.reader}'")
    for i, spec in enumerate(recipe.encoders):
        try:
            cls = resolve_encoder_class(spec.name)
        except ConfigError as exc:
            raise ConfigError(f"{where}: encoders[{i}].name: {exc}") from exc
        check_params(cls, encoder_params(spec.params), f"{where}: encoders[{i}].params", f"encoder '{spec.name}'")
    fusion, head = recipe.model.fusion, recipe.model.head
    targets = list(recipe.targets)
    if is_estimator(head.name):
        _build(ESTIMATORS, head.name, f"{where}: model.head", **head.params)
    else:
        try:
            fusion_cls = FUSIONS.get(fusion.name)
        except ConfigError as exc:
            raise ConfigError(f"{where}: model.fusion.name: {exc}") from exc
        check_params(fusion_cls, fusion.params, f"{where}: model.fusion.params", f"fusion '{fusion.name}'")
        _build(HEADS, head.name, f"{where}: model.head", in_dim=8, targets=targets, **head.params)
        for i, term in enumerate(recipe.losses):
            _build(LOSSES, term.name, f"{where}: losses[{i}]", targets=targets, **term.params)


def check_metrics(recipe: Recipe, where: str) -> None:
    """The early-stopping monitor, the ensemble weight metric and the reported metrics exist."""
    from scorecast.metrics.functional import METRICS
    from scorecast.training.module import check_monitor

    if recipe.training.early_stopping is not None:
        try:
            check_monitor(recipe.training.early_stopping.monitor, list(recipe.targets), has_groups=True)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    if recipe.cv.weight_metric not in METRICS:
        raise ConfigError(
            f"{where}: cv.weight_metric: expected one of {', '.join(METRICS.names())}, got '{recipe.cv.weight_metric}'"
        )
    unknown = [m for m in recipe.evaluate.metrics if m not in METRICS]
    if unknown:
        raise ConfigError(
            f"{where}: evaluate.metrics: unknown metric(s) {', '.join(unknown)}; expected some of: "
            f"{', '.join(METRICS.names())}"
        )


def check_recipe(recipe: Recipe, where: str = "recipe") -> None:
    """All the checks above (see the module docstring)."""
    check_components(recipe, where)
    check_metrics(recipe, where)
