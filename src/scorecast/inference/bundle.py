"""The scorer bundle: a folder that holds a trained scorer, loadable without running any code.

::

    bundle/
      scorecast.json          format_version, scorecast_version, resolved recipe, targets, encoders
                              (spec + identity + feature name + dim), members [{file, kind, weight,
                              state}], stacker, metrics summary, sha256 of every other file
      members/NN.safetensors  each member's tensors: weights or estimator coefficients, and its feature
                              normalisation (norm.*); LightGBM model text lives in the member's state
      MODEL_CARD.md           data, targets, model, CV figures

Loading reads JSON and safetensors only (never pickle, never ``torch.load``), verifies every file's
checksum, the format version and the scorecast major version.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scorecast.config import EncoderSpec, Recipe, TargetSpec
from scorecast.data.features import FeatureSet
from scorecast.errors import BundleError, ScorecastError
from scorecast.inference.bundle_check import (
    check_manifest,
    check_member,
    check_members_fit,
    check_tensors,
    inside,
    member_weight,
)
from scorecast.jsonsafe import clean_json, json_differences
from scorecast.version import __version__

FORMAT_VERSION = 1
MANIFEST = "scorecast.json"
MODEL_CARD = "MODEL_CARD.md"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_encoder_identity(expected: dict[str, Any], actual: dict[str, Any], what: str = "encoder") -> None:
    """Raise BundleError listing every key (dotted for nested dicts) whose value differs, with both values."""
    diffs = [f"{key}: bundle has {exp!r}, got {act!r}" for key, exp, act in json_differences(expected, actual)]
    if diffs:
        raise BundleError(
            f"{what} does not match the one the scorer was trained with; differences:\n  " + "\n  ".join(diffs)
        )


@dataclass
class Bundle:
    """A loaded scorer. ``predict_features(fs)`` -> Prediction (scores clipped to each target's range)."""

    path: Path
    recipe: Recipe
    members: list
    weights: np.ndarray
    encoder_identities: dict[str, dict[str, Any]]
    feature_dims: dict[str, int]
    stacker: Any = None
    metrics: dict[str, Any] | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    #: the training features' profile (scorecast.inference.novelty); None in bundles written before it
    input_profile: dict[str, Any] | None = None

    @property
    def targets(self) -> list[TargetSpec]:
        return list(self.recipe.targets)

    @property
    def target_names(self) -> list[str]:
        return [t.name for t in self.recipe.targets]

    @property
    def encoder_specs(self) -> list[EncoderSpec]:
        return list(self.recipe.encoders)

    @property
    def model_card(self) -> str:
        card = self.path / MODEL_CARD
        return card.read_text() if card.is_file() else ""

    def predict_features(self, features: FeatureSet, clip: bool = True):
        """Prediction(mean (N, T), std (N, T) | None) of the ensemble on encoded features."""
        from scorecast.inference.ensemble import combine

        preds = [m.predict(features) for m in self.members]
        out = self.stacker.predict(preds) if self.stacker is not None else combine(preds, self.weights)
        if clip:
            low = np.array([t.low for t in self.targets])
            high = np.array([t.high for t in self.targets])
            out.mean = np.clip(out.mean, low, high)
        return out


def save_bundle(
    path: str | Path,
    recipe: Recipe,
    members: list,
    weights,
    encoder_identities: dict[str, dict[str, Any]],
    feature_dims: dict[str, int],
    metrics: dict[str, Any] | None = None,
    stacker=None,
    data_summary: dict[str, Any] | None = None,
    ensemble: dict[str, Any] | None = None,
    input_profile: dict[str, Any] | None = None,
) -> Path:
    """Write a bundle folder at ``path`` (created; existing member files are replaced). Returns it.

    ``encoder_identities`` maps each feature name to its encoder's identity dict; ``metrics`` is the
    run's metrics.json content (summarised in the manifest and the model card). ``ensemble``
    (``scorecast ensemble``) records the runs the members came from: ``{"kind", "metric", "runs":
    [{"run", "name", "members", "weight", "fusion", "head", "encoders", "recipe"}]}``; it goes into
    the manifest and the model card.
    """
    from safetensors.torch import save_file

    root = Path(path)
    (root / "members").mkdir(parents=True, exist_ok=True)
    for stale in (root / "members").glob("*.safetensors"):  # a rewrite must not keep old members
        stale.unlink()
    weights = np.asarray(weights, dtype=float).reshape(-1)
    if len(weights) != len(members):
        raise BundleError(f"save_bundle: expected one weight per member ({len(members)}), got {len(weights)}")
    entries = []
    for i, member in enumerate(members):
        info, tensors = member.to_state()
        rel = f"members/{i:02d}.safetensors"
        save_file(
            {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()},
            str(root / rel),
            metadata={"format": "pt"},
        )
        entries.append({"file": rel, "kind": info["kind"], "weight": float(weights[i]), "state": info})
    specs = {spec.feature_name: spec for spec in recipe.encoders}
    encoders = [
        {
            "feature": name,
            "dim": int(dim),
            "spec": specs[name].model_dump(mode="json") if name in specs else None,
            "identity": encoder_identities.get(name),
        }
        for name, dim in feature_dims.items()
    ]
    (root / MODEL_CARD).write_text(model_card(recipe, len(members), feature_dims, metrics, data_summary, ensemble))
    files = {
        str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "scorecast_version": __version__,
        "recipe": recipe.model_dump(mode="json"),
        "targets": [t.model_dump(mode="json") for t in recipe.targets],
        "encoders": encoders,
        "normalisation": "per member: tensors norm.mean.<feature> / norm.std.<feature> in its safetensors file",
        "members": entries,
        "stacker": stacker.to_json() if stacker is not None else None,
        "metrics": metrics_summary(metrics),
        "data": data_summary or {},
        **({"ensemble": ensemble} if ensemble else {}),
        **({"input_profile": input_profile} if input_profile else {}),
        "files": files,
    }
    (root / MANIFEST).write_text(json.dumps(clean_json(manifest), indent=2))
    return root


def load_bundle(path: str | Path) -> Bundle:
    """Load and verify a bundle folder (or its scorecast.json)."""
    from pydantic import ValidationError
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from scorecast.inference.ensemble import Stacker
    from scorecast.inference.members import member_from_state

    root = Path(path)
    if root.is_file() and root.name == MANIFEST:
        root = root.parent
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"not a scorer bundle: expected {MANIFEST} in {root}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise BundleError(
            f"{manifest_path}: expected a JSON object (the bundle manifest), got a JSON {type(manifest).__name__}"
        )
    _check_versions(manifest, manifest_path)
    check_manifest(manifest, root, manifest_path)
    files = manifest["files"]
    for rel, digest in files.items():
        fpath = inside(root, rel, f"{manifest_path}: files")
        if not fpath.is_file():
            raise BundleError(f"bundle {root}: file {rel} is missing")
        got = sha256_file(fpath)
        if got != digest:
            raise BundleError(
                f"bundle {root}: file {rel} was altered or truncated (sha256 expected {digest[:16]}..., got {got[:16]}...)"
            )
    try:
        recipe = Recipe.model_validate(manifest["recipe"])
    except (KeyError, ValidationError) as exc:
        raise BundleError(f"{manifest_path}: the saved recipe is invalid: {exc}") from exc
    members, weights = [], []
    for i, entry in enumerate(manifest["members"]):
        rel = entry.get("file")
        if rel not in files:
            raise BundleError(f"{manifest_path}: member {i} file {rel!r} has no checksum in 'files'")
        where = f"bundle {root}: member {i} ({rel})"
        try:
            tensors = load_file(str(inside(root, rel, where)))
        except (SafetensorError, OSError) as exc:
            raise BundleError(f"bundle {root}: cannot read {rel}: {exc}") from exc
        check_tensors(tensors, where)
        try:
            member = member_from_state(entry["state"], tensors)
        except ScorecastError as exc:
            raise BundleError(f"{where}: {exc}") from exc
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BundleError(f"{where}: malformed member state ({type(exc).__name__}: {exc})") from exc
        check_member(member, entry["state"], tensors, where)
        members.append(member)
        weights.append(member_weight(entry, i, str(manifest_path)))
    if recipe.cache_dir is not None and not Path(recipe.cache_dir).expanduser().is_absolute():
        # a relative cache_dir named a folder where training ran; from a bundle it would land in whatever
        # folder predict or serve runs in, so the user cache ($SCORECAST_CACHE or ~/.cache/scorecast) is used
        recipe.cache_dir = None
    encoders = manifest.get("encoders") or []
    identities = {e["feature"]: e.get("identity") for e in encoders}
    dims = {e["feature"]: int(e["dim"]) for e in encoders}
    check_members_fit(members, recipe, dims, str(manifest_path))
    stacker = Stacker.from_json(manifest["stacker"]) if manifest.get("stacker") else None
    if stacker is not None and any(not 0 <= m < len(members) for col in stacker.columns for m in col):
        raise BundleError(f"{manifest_path}: stacker: its columns name members outside 0..{len(members) - 1}")
    if stacker is not None and not (np.isfinite(stacker.coef).all() and np.isfinite(stacker.intercept).all()):
        raise BundleError(f"{manifest_path}: stacker: expected finite coefficients, got NaN or infinite values")
    profile = manifest.get("input_profile")
    if profile is not None and not _valid_profile(profile):
        raise BundleError(
            f"{manifest_path}: input_profile: expected {{feature: {{mean, std, q995, max, n}}}} with a finite mean "
            "and a positive std per dimension"
        )
    return Bundle(
        root,
        recipe,
        members,
        np.asarray(weights),
        identities,
        dims,
        stacker,
        manifest.get("metrics"),
        manifest,
        profile,
    )


def _valid_profile(profile: Any) -> bool:
    if not isinstance(profile, dict):
        return False
    for entry in profile.values():  # (a feature the members do not read is simply never consulted)
        if not isinstance(entry, dict) or set(entry) != {"mean", "std", "q995", "max", "n"}:
            return False
        try:
            mean, std = np.asarray(entry["mean"], dtype=float), np.asarray(entry["std"], dtype=float)
            limits = np.asarray([entry["q995"], entry["max"]], dtype=float)
        except (TypeError, ValueError):
            return False
        if mean.ndim != 1 or std.shape != mean.shape or not np.isfinite(mean).all():
            return False
        if not (std > 0).all() or not np.isfinite(std).all() or not np.isfinite(limits).all():
            return False
    return True


def _check_versions(manifest: dict[str, Any], where: Path) -> None:
    fmt = manifest.get("format_version")
    if fmt != FORMAT_VERSION:
        raise BundleError(
            f"{where}: bundle format_version {fmt!r} is not supported (this scorecast reads {FORMAT_VERSION})"
        )
    saved = str(manifest.get("scorecast_version", ""))
    if saved.split(".")[0] != __version__.split(".")[0]:
        raise BundleError(
            f"{where}: bundle written by scorecast {saved or '(unknown)'}, this is {__version__}; "
            "the major versions must match"
        )


def metrics_summary(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """{target: {level: {metric: value}}} from a metrics.json dict."""
    if not metrics:
        return {}
    out: dict[str, Any] = {}
    for target, levels in (metrics.get("targets") or {}).items():
        out[target] = {
            level: {name: entry.get("value") for name, entry in table.items()}
            for level, table in levels.items()
            if isinstance(table, dict) and level in ("utterance", "system")
        }
    return out


def model_card(
    recipe: Recipe,
    n_members: int,
    feature_dims: dict[str, int],
    metrics: dict[str, Any] | None,
    data_summary: dict[str, Any] | None,
    ensemble: dict[str, Any] | None = None,
) -> str:
    """A short markdown card: what the scorer predicts, from what, trained how, and how well."""
    lines = [f"# {recipe.name}", ""]
    if recipe.description:
        lines += [recipe.description, ""]
    lines += ["## Data", "", f"- source: `{recipe.data.path}` (reader `{recipe.data.reader}`)"]
    for key, value in (data_summary or {}).items():
        lines.append(f"- {key}: {value}")
    lines += ["", "## Targets", "", "| target | low | high | step |", "|---|---|---|---|"]
    lines += [f"| {t.name} | {t.low:g} | {t.high:g} | {t.step:g} |" for t in recipe.targets]
    lines += ["", "## Model", ""]
    for spec in recipe.encoders:
        lines.append(
            f"- encoder `{spec.name}` on `{spec.input}` -> feature `{spec.feature_name}` (dim {feature_dims.get(spec.feature_name, '?')})"
        )
    if ensemble:
        lines += [
            f"- ensemble of {len(ensemble.get('runs', []))} runs ({n_members} member(s)), weights `{ensemble.get('kind')}`",
            "",
            "| run | name | fusion | head | encoders | members | weight |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in ensemble.get("runs", []):
            lines.append(
                f"| {r.get('run')} | {r.get('name')} | {r.get('fusion')} | {r.get('head')} | "
                f"{', '.join(r.get('encoders', []))} | {r.get('members')} | {_fmt_weight(r.get('weight'))} |"
            )
    else:
        lines.append(f"- fusion `{recipe.model.fusion.name}`, head `{recipe.model.head.name}`")
        lines.append("- losses: " + ", ".join(f"{t.weight:g} x {t.name}" for t in recipe.losses))
        lines.append(f"- ensemble: {n_members} member(s), `{recipe.cv.ensemble}`")
    summary = metrics_summary(metrics)
    if summary:
        lines += [
            "",
            "## Cross-validation figures",
            "",
            "| target | level | metric | value | 95% interval |",
            "|---|---|---|---|---|",
        ]
        full = metrics.get("targets", {}) if metrics else {}
        for target, levels in full.items():
            for level in ("utterance", "system"):
                for name, entry in (levels.get(level) or {}).items():
                    value, low, high = entry.get("value"), entry.get("low"), entry.get("high")
                    interval = (
                        f"[{low:.3f}, {high:.3f}]"
                        if low is not None and high is not None and math.isfinite(low)
                        else ""
                    )
                    shown = f"{value:.4f}" if value is not None and math.isfinite(value) else "n/a"
                    lines.append(f"| {target} | {level} | {name} | {shown} | {interval} |")
    from scorecast.inference.card_checks import check_lines

    lines += check_lines(metrics)
    lines += ["", f"Written by scorecast {__version__}.", ""]
    return "\n".join(lines)


def _fmt_weight(weight: Any) -> str:
    """A run's weight in the model card: one number, or one per target (ridge stack)."""
    if isinstance(weight, (list, tuple)):
        return ", ".join(f"{float(w):.3f}" for w in weight)
    return f"{float(weight):.3f}" if weight is not None else ""
