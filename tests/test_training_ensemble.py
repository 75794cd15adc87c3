"""Ensembles: fold-metric weights, the mixture mean and spread, the ridge stacker."""

from __future__ import annotations

import numpy as np
import pytest

from scorecast.inference.ensemble import Stacker, combine, ensemble_weights, metric_weights
from scorecast.inference.members import Prediction


def test_metric_weights_pearson_weighted():
    np.testing.assert_allclose(metric_weights([0.6, 0.2, 0.2], "lcc"), [0.6, 0.2, 0.2])
    np.testing.assert_allclose(metric_weights([0.5, -0.3, np.nan, 0.5], "lcc"), [0.5, 0, 0, 0.5])
    np.testing.assert_allclose(metric_weights([-0.1, np.nan], "srcc"), [0.5, 0.5])  # all zero -> uniform
    np.testing.assert_allclose(metric_weights([1.0, 0.5], "rmse"), [1 / 3, 2 / 3])  # inverse error
    np.testing.assert_allclose(ensemble_weights("mean", [0.9, 0.1], "lcc"), [0.5, 0.5])


def test_combine_matches_the_law_of_total_variance():
    rng = np.random.default_rng(0)
    mus = [rng.normal(size=(5, 2)) for _ in range(3)]
    sds = [np.abs(rng.normal(size=(5, 2))) for _ in range(3)]
    w = np.array([0.5, 0.3, 0.2])
    out = combine([Prediction(m, s) for m, s in zip(mus, sds)], w)
    for i in range(5):
        for t in range(2):
            mean = sum(w[k] * mus[k][i, t] for k in range(3))
            var = sum(w[k] * (sds[k][i, t] ** 2 + (mus[k][i, t] - mean) ** 2) for k in range(3))
            assert out.mean[i, t] == pytest.approx(mean)
            assert out.std[i, t] == pytest.approx(np.sqrt(var))


def test_single_member_without_std_has_no_std():
    p = Prediction(np.ones((3, 1)), None)
    assert combine([p], np.array([1.0])).std is None
    two = combine([p, Prediction(np.zeros((3, 1)))], np.array([0.5, 0.5]))
    np.testing.assert_allclose(two.std, 0.5)


def test_stacker_recovers_a_linear_blend():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 1))
    cols = np.stack([y + 0.3 * rng.normal(size=y.shape), 0.5 * y + 1.0], axis=1)  # (N, C=2, T=1)
    st = Stacker.fit([[0, 1], [2]], cols, y, alpha=1e-6)
    assert np.corrcoef(st.apply(cols)[:, 0], y[:, 0])[0, 1] > 0.99
    again = Stacker.from_json(st.to_json())
    np.testing.assert_allclose(again.apply(cols), st.apply(cols))
    preds = [Prediction(cols[:, 0]), Prediction(cols[:, 0]), Prediction(cols[:, 1])]
    np.testing.assert_allclose(st.predict(preds).mean, st.apply(cols))
