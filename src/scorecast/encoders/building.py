"""The encoder a spec names: its registered class, constructor params, identity and the shared instance.

    cls = resolve_encoder_class("sentence")          # imports the encoder family modules if needed
    encoder = build_encoder(spec, device="cuda")     # one instance per configuration in a process
    identity = spec_identity(spec)                   # without building, where the class can say it

Used by :mod:`scorecast.encoders.pipeline` (which re-exports these names) and its worker pool.
"""

from __future__ import annotations

import importlib
import inspect
import json
from typing import Any

from scorecast.config import EncoderSpec
from scorecast.encoders.base import ENCODERS, Encoder, encoder_params
from scorecast.encoders.sharing import shared_instance
from scorecast.errors import ConfigError

__all__ = ["build_encoder", "constructor_params", "resolve_encoder_class", "spec_identity"]

_NOT_FAMILIES = {"base", "building", "distributed", "item_inputs", "pipeline", "pipeline_batches", "sharing"}


def resolve_encoder_class(name: str) -> Any:
    """The registered encoder class (or factory) ``name``, importing the family modules of
    ``scorecast.encoders`` if it is not registered yet (they keep heavy imports inside functions)."""
    if name not in ENCODERS:
        import pkgutil

        package = importlib.import_module("scorecast.encoders")
        broken = []
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_") or info.name in _NOT_FAMILIES:
                continue
            try:
                importlib.import_module(f"scorecast.encoders.{info.name}")
            except ImportError as exc:  # one family's missing dependency must not hide the others
                broken.append(f"scorecast.encoders.{info.name} ({exc})")
        if name not in ENCODERS and broken:
            raise ConfigError(
                f"unknown encoder '{name}'; expected one of: {', '.join(ENCODERS.names())}; "
                f"these encoder modules failed to import: {'; '.join(broken)}"
            )
    return ENCODERS.get(name)


def build_encoder(spec: EncoderSpec, device: str | None = None, shared: bool = True) -> Encoder:
    """``ENCODERS.build(spec.name, **spec.params)``, passing ``device`` where the encoder takes one
    and the spec's params do not set it. ``shared`` (the default): one instance per distinct
    (name, constructor params) in this process (:func:`scorecast.encoders.sharing.shared_instance`)."""
    params = constructor_params(spec, device)
    if not shared:
        return ENCODERS.build(spec.name, **params)
    cls = resolve_encoder_class(spec.name)  # in the key: a name registered again to another class
    key = f"{spec.name}:{cls.__module__}.{cls.__qualname__}@{id(cls)}:" + json.dumps(
        params, sort_keys=True, default=str
    )
    return shared_instance(key, lambda: ENCODERS.build(spec.name, **params))


def constructor_params(spec: EncoderSpec, device: str | None = None) -> dict[str, Any]:
    """The spec's params (fine-tuning keys dropped), plus ``device`` and ``sequence`` (from the
    spec) where the encoder class takes them and the params do not set them."""
    cls = resolve_encoder_class(spec.name)
    params = encoder_params(spec.params)
    if device is not None and "device" not in params and _accepts(cls, "device"):
        params["device"] = device
    if spec.sequence and "sequence" not in params and _accepts(cls, "sequence"):
        params["sequence"] = True
    return params


def spec_identity(spec: EncoderSpec) -> dict[str, Any]:
    """The identity dict of the encoder a spec describes (built only where its class cannot say)."""
    hook = getattr(resolve_encoder_class(spec.name), "identity_for", None)
    identity = hook(**constructor_params(spec)) if callable(hook) else None
    return identity if identity is not None else build_encoder(spec).identity()


def _accepts(cls: Any, name: str) -> bool:
    try:
        return name in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False
