"""Sample weights: square-root inverse frequency over score bins, normalised to mean 1, clipped."""

from __future__ import annotations

import numpy as np
import pytest

from scorecast.config import SampleWeights, TargetSpec
from scorecast.errors import ConfigError
from scorecast.training.weights import sample_weights, score_bins

TARGET = TargetSpec(name="score", low=1, high=5, step=1)


def test_score_bins_levels_and_equal_width():
    y = np.array([1.0, 1.4, 1.6, 5.0, 7.0, np.nan])
    assert score_bins(y, TARGET).tolist() == [0, 0, 1, 4, 4, -1]
    assert score_bins(y, TARGET, bins=2).tolist() == [0, 0, 0, 1, 1, -1]


def test_sqrt_inverse_frequency_by_hand():
    # bins: level 1 x4, level 2 x1, level 5 x4 -> raw 1/2, 1, 1/2
    y = np.array([1, 1, 1, 1, 2, 5, 5, 5, 5], dtype=float)
    w = sample_weights(y, TARGET, SampleWeights(kind="sqrt-inverse", min=0.01, max=100))
    raw = np.array([0.5] * 4 + [1.0] + [0.5] * 4)
    np.testing.assert_allclose(w, raw / raw.mean())
    assert w.mean() == pytest.approx(1.0)


def test_inverse_frequency_and_clipping():
    y = np.array([1] * 9 + [3], dtype=float)
    raw = np.array([1 / 9] * 9 + [1.0])
    expected = raw / raw.mean()  # 0.526..., 4.736...
    w = sample_weights(y, TARGET, SampleWeights(kind="inverse", min=0.01, max=100))
    np.testing.assert_allclose(w, expected)
    clipped = sample_weights(y, TARGET, SampleWeights(kind="inverse", min=0.6, max=2.0))
    np.testing.assert_allclose(clipped, np.clip(expected, 0.6, 2.0))
    assert clipped.min() == pytest.approx(0.6) and clipped.max() == pytest.approx(2.0)


def test_missing_scores_weigh_one_and_none_kind():
    y = np.array([1, 1, 2, np.nan])
    w = sample_weights(y, TARGET, SampleWeights(kind="sqrt-inverse", min=0.01, max=100))
    raw = np.array([1 / np.sqrt(2), 1 / np.sqrt(2), 1.0, 1.0])
    np.testing.assert_allclose(w, raw / raw.mean())
    assert sample_weights(y, TARGET, SampleWeights(kind="none")) is None


def test_bad_bounds_raise():
    with pytest.raises(ConfigError, match="0 < min <= max"):
        sample_weights(np.ones(3), TARGET, SampleWeights(kind="inverse", min=2.0, max=1.0))
