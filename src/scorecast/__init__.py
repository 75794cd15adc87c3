"""scorecast: learn to predict the scores people give."""

from __future__ import annotations

from scorecast.errors import (  # noqa: E402
    AudioError,
    BundleError,
    CacheError,
    ConfigError,
    DataError,
    ScorecastError,
)
from scorecast.version import __version__  # noqa: E402

__all__ = [
    "__version__",
    "AudioError",
    "BundleError",
    "CacheError",
    "ConfigError",
    "DataError",
    "ScorecastError",
    "load",
    "Scorer",
]


def __getattr__(name: str):
    # Lazy: importing scorecast must not import torch/lightning.
    if name in ("load", "Scorer"):
        from scorecast import api

        return getattr(api, name)
    raise AttributeError(f"module 'scorecast' has no attribute '{name}'")
