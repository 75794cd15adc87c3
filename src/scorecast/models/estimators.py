"""Non-neural baselines on the same features: ridge, SVR and LightGBM (one model per target).

Chosen when ``recipe.model.head.name`` names one of them (params from ``model.head.params``); they
see the concatenation of the standardised pooled features. Each saves WITHOUT pickle: ridge as its
coefficients, SVR as its support vectors, dual coefficients, intercept and gamma (prediction
recomputes the kernel from those), LightGBM as its model text.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from scorecast.errors import BundleError, ConfigError
from scorecast.registry import Registry


class Estimator:
    """One single-target regressor. ``fit(X (N, D), y (N,))``, ``predict(X) -> (N,)``;
    ``to_state() -> (json dict, {name: float64 array})`` and ``from_state(json, arrays)`` restore it."""

    registry_name: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)

    def fit(self, x: np.ndarray, y: np.ndarray) -> Estimator:
        raise NotImplementedError

    def predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> Estimator:
        raise NotImplementedError


ESTIMATORS: Registry[type[Estimator]] = Registry("estimator")


def _need(arrays: dict[str, np.ndarray], key: str, who: str) -> np.ndarray:
    if key not in arrays:
        raise BundleError(f"{who}: saved state lacks array '{key}' (got {sorted(arrays)})")
    return np.asarray(arrays[key], dtype=np.float64)


@ESTIMATORS.register("ridge")
class RidgeEstimator(Estimator):
    """sklearn ``Ridge`` (params: ``alpha``, default 1.0); saved as ``coef`` (D,) and ``intercept`` (1,)."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__(alpha=alpha)
        self.coef: np.ndarray | None = None
        self.intercept = 0.0
        self.fitted: Any = None

    def fit(self, x, y):
        from sklearn.linear_model import Ridge

        self.fitted = Ridge(alpha=self.params["alpha"]).fit(x, y)
        self.coef = np.asarray(self.fitted.coef_, dtype=np.float64).reshape(-1)
        self.intercept = float(self.fitted.intercept_)
        return self

    def predict(self, x):
        return np.asarray(x, dtype=np.float64) @ self.coef + self.intercept

    def to_state(self):
        return {"params": self.params}, {"coef": self.coef, "intercept": np.array([self.intercept])}

    @classmethod
    def from_state(cls, state, arrays):
        est = cls(**state.get("params", {}))
        est.coef = _need(arrays, "coef", "ridge")
        est.intercept = float(_need(arrays, "intercept", "ridge")[0])
        return est


@ESTIMATORS.register("svr")
class SVREstimator(Estimator):
    """sklearn ``SVR`` with an ``rbf`` or ``linear`` kernel (params: ``C``, ``epsilon``, ``gamma``,
    ``kernel``). Saved as support vectors (S, D), dual coefficients (S,), intercept and gamma;
    ``predict`` computes ``sum_s dual_s * k(x, sv_s) + intercept`` itself."""

    KERNELS = ("rbf", "linear")

    def __init__(self, C: float = 1.0, epsilon: float = 0.1, gamma: str | float = "scale", kernel: str = "rbf") -> None:
        if kernel not in self.KERNELS:
            raise ConfigError(f"estimator 'svr': kernel expected one of {', '.join(self.KERNELS)}, got '{kernel}'")
        super().__init__(C=C, epsilon=epsilon, gamma=gamma, kernel=kernel)
        self.support: np.ndarray | None = None
        self.dual: np.ndarray | None = None
        self.intercept = 0.0
        self.gamma = 0.0
        self.fitted: Any = None

    def fit(self, x, y):
        from sklearn.svm import SVR

        p = self.params
        self.fitted = SVR(kernel=p["kernel"], C=p["C"], epsilon=p["epsilon"], gamma=p["gamma"]).fit(x, y)
        self.support = np.asarray(self.fitted.support_vectors_, dtype=np.float64)
        self.dual = np.asarray(self.fitted.dual_coef_, dtype=np.float64).reshape(-1)
        self.intercept = float(np.asarray(self.fitted.intercept_).reshape(-1)[0])
        self.gamma = float(getattr(self.fitted, "_gamma", 0.0))
        return self

    def kernel(self, x: np.ndarray) -> np.ndarray:
        """(N, S) kernel between ``x`` (N, D) and the support vectors."""
        x = np.asarray(x, dtype=np.float64)
        dot = x @ self.support.T
        if self.params["kernel"] == "linear":
            return dot
        sq = (x**2).sum(1)[:, None] + (self.support**2).sum(1)[None, :] - 2.0 * dot
        return np.exp(-self.gamma * np.maximum(sq, 0.0))

    def predict(self, x):
        return self.kernel(x) @ self.dual + self.intercept

    def to_state(self):
        arrays = {
            "support_vectors": self.support,
            "dual_coef": self.dual,
            "intercept": np.array([self.intercept]),
            "gamma": np.array([self.gamma]),
        }
        return {"params": self.params}, arrays

    @classmethod
    def from_state(cls, state, arrays):
        est = cls(**state.get("params", {}))
        est.support = _need(arrays, "support_vectors", "svr")
        est.dual = _need(arrays, "dual_coef", "svr")
        est.intercept = float(_need(arrays, "intercept", "svr")[0])
        est.gamma = float(_need(arrays, "gamma", "svr")[0])
        return est


@ESTIMATORS.register("lightgbm")
class LightGBMEstimator(Estimator):
    """LightGBM gradient-boosted trees (params: any ``lightgbm.train`` parameter, plus
    ``num_boost_round``, default 200). Saved as the booster's model text."""

    def __init__(self, num_boost_round: int = 200, **params: Any) -> None:
        defaults = {
            "objective": "regression",
            "learning_rate": 0.05,
            "num_leaves": 15,
            "min_data_in_leaf": 5,
            "verbosity": -1,
            "seed": 0,
            "deterministic": True,
            "num_threads": 1,
        }
        super().__init__(num_boost_round=num_boost_round, **{**defaults, **params})
        self.booster: Any = None

    def fit(self, x, y):
        import lightgbm

        params = {k: v for k, v in self.params.items() if k != "num_boost_round"}
        data = lightgbm.Dataset(np.asarray(x, dtype=np.float64), label=np.asarray(y, dtype=np.float64))
        try:
            self.booster = lightgbm.train(params, data, num_boost_round=int(self.params["num_boost_round"]))
        except lightgbm.basic.LightGBMError as exc:
            raise ConfigError(f"estimator 'lightgbm': cannot train with params {params}: {exc}") from exc
        return self

    def predict(self, x):
        return np.asarray(self.booster.predict(np.asarray(x, dtype=np.float64)), dtype=np.float64)

    def to_state(self):
        return {"params": self.params, "model": self.booster.model_to_string()}, {}

    @classmethod
    def from_state(cls, state, arrays):
        import lightgbm

        if "model" not in state:
            raise BundleError("lightgbm: saved state lacks the model text ('model')")
        est = cls(**state.get("params", {}))
        est.booster = lightgbm.Booster(model_str=state["model"])
        return est


def is_estimator(head_name: str) -> bool:
    """True when a recipe's head names a non-neural estimator rather than a neural head."""
    return head_name in ESTIMATORS
