"""Fusions and heads (the trainable part of a scorer). Importing this package registers them all."""

from __future__ import annotations

from scorecast.models import bilinear, class_heads, concat, cross_attention, heads, prior, siamese, temporal  # noqa: F401
from scorecast.models.base import FUSIONS, HEADS, FeatureShape, Fusion, Head, HeadOutput
from scorecast.models.bins import BinLayout, bin_edges, rating_histograms
from scorecast.models.scorer import ScoreModel, build_model, feature_batch, feature_shapes, pad_sequences

__all__ = [
    "FUSIONS",
    "HEADS",
    "BinLayout",
    "FeatureShape",
    "Fusion",
    "Head",
    "HeadOutput",
    "ScoreModel",
    "bin_edges",
    "build_model",
    "feature_batch",
    "feature_shapes",
    "pad_sequences",
    "rating_histograms",
]
