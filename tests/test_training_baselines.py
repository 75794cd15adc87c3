"""Ridge, SVR and LightGBM baselines: restored from JSON + arrays (no pickle) they predict exactly
what the fitted scikit-learn / LightGBM objects predict."""

from __future__ import annotations

import numpy as np
import pytest

from scorecast.errors import ConfigError
from scorecast.models.estimators import ESTIMATORS


def _data(n=150, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    return x, np.sin(x[:, 0]) + x[:, 1] ** 2 + 0.1 * rng.normal(size=n)


def _restored(est):
    state, arrays = est.to_state()
    import json

    state = json.loads(json.dumps(state))  # what a bundle stores
    return type(est).from_state(state, {k: np.array(v) for k, v in arrays.items()})


@pytest.mark.parametrize(
    "name, params",
    [("ridge", {"alpha": 0.5}), ("svr", {"C": 3.0}), ("svr", {"gamma": 0.2}), ("svr", {"kernel": "linear"})],
)
def test_sklearn_estimators_restore_exactly(name, params):
    x, y = _data()
    est = ESTIMATORS.build(name, **params).fit(x, y)
    x_new, _ = _data(40, seed=1)
    reference = est.fitted.predict(x_new)
    np.testing.assert_allclose(est.predict(x_new), reference, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(_restored(est).predict(x_new), reference, rtol=1e-10, atol=1e-10)


def test_svr_kernel_is_computed_from_saved_arrays():
    x, y = _data()
    est = ESTIMATORS.build("svr").fit(x, y)
    restored = _restored(est)
    assert restored.fitted is None  # nothing but arrays
    assert restored.support.shape == est.fitted.support_vectors_.shape
    assert restored.gamma == pytest.approx(est.fitted._gamma)


def test_lightgbm_restores_from_model_text():
    x, y = _data()
    est = ESTIMATORS.build("lightgbm", num_boost_round=30).fit(x, y)
    state, arrays = est.to_state()
    assert isinstance(state["model"], str) and arrays == {}
    x_new, _ = _data(40, seed=2)
    np.testing.assert_array_equal(_restored(est).predict(x_new), est.booster.predict(x_new))
    assert np.corrcoef(est.predict(x), y)[0, 1] > 0.8


def test_unknown_kernel_and_estimator():
    with pytest.raises(ConfigError, match="kernel expected one of rbf, linear, got 'poly'"):
        ESTIMATORS.build("svr", kernel="poly")
    with pytest.raises(ConfigError, match="unknown estimator 'xgb'"):
        ESTIMATORS.build("xgb")
