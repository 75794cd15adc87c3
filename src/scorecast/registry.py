"""The one registry class every family (readers, encoders, fusions, heads, losses...) uses.

HEADS = Registry("head")

@HEADS.register("coral")
class CoralHead(Head): ...

head = HEADS.build("coral", in_dim=64, targets=...)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from scorecast.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named family of classes (or factories) built by name from config."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name``; a second entry with the same name is an error."""

        def decorator(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ConfigError(
                    f"{self.family} '{name}' is already registered to {self._entries[name]!r}; "
                    f"cannot register {obj!r} under the same name"
                )
            self._entries[name] = obj
            try:
                obj.registry_name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise ConfigError(f"unknown {self.family} '{name}'; expected one of: {known}") from None

    def check(self, name: str, /, **kwargs: Any) -> Any:
        """Look up ``name`` and check that its constructor takes ``kwargs`` (names and count, not
        values), without building it; returns the entry. A ConfigError names the entry, the
        parameters that do not fit and the ones it takes."""
        factory = self.get(name)
        try:
            signature = inspect.signature(factory)
        except (TypeError, ValueError):  # no signature to check against (a builtin): leave it to the call
            return factory
        try:
            signature.bind(**kwargs)
        except TypeError as exc:
            takes = [
                p.name
                for p in signature.parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
            ]
            unknown = sorted(set(kwargs) - set(takes))
            detail = f"unknown parameter(s) {', '.join(unknown)}" if unknown else str(exc)
            raise ConfigError(
                f"cannot build {self.family} '{name}' with {sorted(kwargs)}: {detail}; "
                f"expected parameters among: {', '.join(takes) or '(none)'}"
            ) from None
        return factory

    def build(self, name: str, /, **kwargs: Any) -> Any:
        """Look up ``name``, check ``kwargs`` against its constructor (:meth:`check`) and call it. A
        TypeError raised inside the constructor is a bug there, not a typo in a recipe: it passes through."""
        factory = self.check(name, **kwargs)
        return factory(**kwargs)  # type: ignore[operator]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.family!r}, {self.names()})"
