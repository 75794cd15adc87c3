"""Members: trained models (neural or estimator) that predict from a FeatureSet and save to
JSON + tensors (never pickle).

``Member.predict(features) -> Prediction(mean (N, T), std (N, T) | None)`` applies the member's own
feature standardisation; ``Member.to_state() -> (json dict, {name: tensor})`` and
``member_from_state(json, tensors)`` round-trip it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from scorecast.config import ModelConfig, TargetSpec
from scorecast.data.features import FeatureSet
from scorecast.errors import BundleError, DataError
from scorecast.models.datasets import FeatureScaler, ScoreDataset, collate


@dataclass
class Prediction:
    """Scores (N, T) in target units, and a predicted standard deviation (N, T) where there is one."""

    mean: np.ndarray
    std: np.ndarray | None = None
    #: per item, what makes it unlike the training data (scorecast.inference.novelty); None: not checked
    flags: list[list[str]] | None = None


class Member:
    """A trained model. Subclasses set ``kind`` and implement ``_predict`` / ``_state`` / ``_restore``."""

    kind: ClassVar[str] = ""

    def __init__(self, targets: list[TargetSpec], feature_dims: dict[str, int], scaler: FeatureScaler) -> None:
        self.targets = list(targets)
        self.feature_dims = dict(feature_dims)
        self.scaler = scaler
        self.history: list[dict[str, float]] = []  # learning curve of the fit (not saved)
        self.fit_info: dict[str, int] = {}  # how the fit ran: steps per epoch, patience, epochs (not saved)

    def check_features(self, features: FeatureSet) -> None:
        for name, dim in self.feature_dims.items():
            if name not in features.pooled:
                raise DataError(f"scorer needs feature '{name}' (dimension {dim}); the features hold {features.names}")
            got = features.pooled[name].shape[1]
            if got != dim:
                raise DataError(f"feature '{name}': expected dimension {dim} (as in training), got {got}")

    def predict(self, features: FeatureSet, batch_size: int = 256) -> Prediction:
        self.check_features(features)
        used = FeatureSet(
            list(features.ids),
            {k: features.pooled[k] for k in self.feature_dims},
            {k: v for k, v in features.sequences.items() if k in self.feature_dims},
        )
        return self._predict(self.scaler.transform(used), batch_size)

    def _predict(self, features: FeatureSet, batch_size: int) -> Prediction:
        raise NotImplementedError

    def to_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        info, tensors = self._state()
        header = {
            "kind": self.kind,
            "targets": [t.model_dump(mode="json") for t in self.targets],
            "feature_dims": self.feature_dims,
        }
        return {**header, **info}, {**tensors, **self.scaler.to_tensors()}

    def _state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        raise NotImplementedError

    @staticmethod
    def from_state(info: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Member:
        """Rebuild a member of any kind from ``to_state``'s output (see :func:`member_from_state`)."""
        return member_from_state(info, tensors)


MEMBER_KINDS: dict[str, type[Member]] = {}


def _kind(cls: type[Member]) -> type[Member]:
    MEMBER_KINDS[cls.kind] = cls
    return cls


@_kind
class NeuralMember(Member):
    """A ScoreModel (fusion + head). Saved as the model config, input shapes and its state dict."""

    kind = "neural"

    def __init__(
        self,
        model: torch.nn.Module,
        model_cfg: ModelConfig,
        targets: list[TargetSpec],
        feature_dims: dict[str, int],
        sequence_features: list[str],
        scaler: FeatureScaler,
    ) -> None:
        super().__init__(targets, feature_dims, scaler)
        self.model = model.cpu().eval()
        self.model_cfg = model_cfg
        self.sequence_features = list(sequence_features)

    def _predict(self, features: FeatureSet, batch_size: int) -> Prediction:
        data = ScoreDataset(features)
        means, stds = [], []
        self.model.eval()
        with torch.no_grad():
            for start in range(0, len(data), batch_size):
                batch = collate([data[i] for i in range(start, min(start + batch_size, len(data)))])
                out = self.model(batch["pooled"], batch["sequences"], batch["masks"])
                means.append(out["mean"].float().cpu())
                std = head_std(out)
                if std is not None:
                    stds.append(std.float().cpu())
        mean = torch.cat(means).numpy() if means else np.zeros((0, len(self.targets)), np.float32)
        std_arr = torch.cat(stds).numpy() if stds and len(stds) == len(means) else None
        return Prediction(mean.astype(np.float64), std_arr.astype(np.float64) if std_arr is not None else None)

    def _state(self):
        seq_dims = {n: s.frame_dim for n, s in getattr(self.model, "inputs", {}).items() if s.has_sequence}
        info = {
            "model": self.model_cfg.model_dump(mode="json"),
            "sequence_features": self.sequence_features,
            "sequence_dims": seq_dims,
        }
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        return info, tensors

    @classmethod
    def _restore(cls, info, tensors, targets, dims, scaler) -> NeuralMember:
        from scorecast.models.base import FeatureShape
        from scorecast.models.scorer import build_model

        model_cfg = ModelConfig.model_validate(info["model"])
        seq = list(info.get("sequence_features", []))
        seq_dims = {str(k): int(v) for k, v in (info.get("sequence_dims") or {}).items()}
        shapes = {name: FeatureShape(dim, name in seq, seq_dims.get(name)) for name, dim in dims.items()}
        model = build_model(model_cfg, shapes, targets)
        state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BundleError(f"neural member: saved weights do not fit the model its config builds: {exc}") from exc
        return cls(model, model_cfg, targets, dims, seq, scaler)


def head_std(out: dict) -> torch.Tensor | None:
    """The predicted standard deviation (B, T) of a HeadOutput: ``std``, or from ``log_var``."""
    if out.get("std") is not None:
        return out["std"]
    if out.get("log_var") is not None:
        return torch.exp(0.5 * out["log_var"])
    return None


@_kind
class EstimatorMember(Member):
    """One non-neural estimator per target over the concatenated standardised pooled features."""

    kind = "estimator"

    def __init__(self, name: str, estimators: list, targets, feature_dims, scaler) -> None:
        super().__init__(targets, feature_dims, scaler)
        self.name = name
        self.estimators = list(estimators)

    def design_matrix(self, features: FeatureSet) -> np.ndarray:
        """(N, sum D) concatenated pooled features in the member's feature order."""
        return np.concatenate([np.asarray(features.pooled[k], dtype=np.float64) for k in self.feature_dims], axis=1)

    def _predict(self, features: FeatureSet, batch_size: int) -> Prediction:
        x = self.design_matrix(features)
        return Prediction(np.stack([est.predict(x) for est in self.estimators], axis=1), None)

    def _state(self):
        info: dict[str, Any] = {"estimator": self.name, "estimators": []}
        tensors = {}
        for t, est in enumerate(self.estimators):
            state, arrays = est.to_state()
            info["estimators"].append(state)
            for key, arr in arrays.items():
                tensors[f"est.{t}.{key}"] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64))
        return info, tensors

    @classmethod
    def _restore(cls, info, tensors, targets, dims, scaler) -> EstimatorMember:
        from scorecast.models.estimators import ESTIMATORS

        est_cls = ESTIMATORS.get(info["estimator"])
        estimators = []
        for t, state in enumerate(info["estimators"]):
            prefix = f"est.{t}."
            arrays = {k[len(prefix) :]: v.numpy() for k, v in tensors.items() if k.startswith(prefix)}
            estimators.append(est_cls.from_state(state, arrays))
        return cls(info["estimator"], estimators, targets, dims, scaler)


def member_from_state(info: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Member:
    """Rebuild a member saved by ``Member.to_state``."""
    kind = info.get("kind")
    if kind not in MEMBER_KINDS:
        raise BundleError(f"member kind: expected one of {sorted(MEMBER_KINDS)}, got {kind!r}")
    try:
        targets = [TargetSpec.model_validate(t) for t in info["targets"]]
        dims = {str(k): int(v) for k, v in info["feature_dims"].items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"member: malformed header ({exc})") from exc
    scaler = FeatureScaler.from_tensors(tensors)
    return MEMBER_KINDS[kind]._restore(info, tensors, targets, dims, scaler)
