"""Checks a bundle must pass before it scores anything (used by :func:`scorecast.inference.bundle.load_bundle`).

A bundle is data a user may have been handed: every check names the file, the member and the field.

* ``check_manifest``: ``scorecast.json`` is an object with only the keys this version writes; member
  and encoder entries too; ensemble weights are finite numbers >= 0 (not all zero); every file the
  bundle names is a relative path that stays inside the bundle folder.
* ``check_member``: a member's tensors are finite, its ``norm.std`` tensors positive, and it holds
  exactly the tensors and header keys its kind writes (nothing unknown, nothing left over).
"""

from __future__ import annotations

import math
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from scorecast.errors import BundleError

MANIFEST_KEYS = {
    "format_version",
    "scorecast_version",
    "recipe",
    "targets",
    "encoders",
    "normalisation",
    "members",
    "stacker",
    "metrics",
    "data",
    "ensemble",
    "files",
    "input_profile",
}
MEMBER_KEYS = {"file", "kind", "weight", "state"}
ENCODER_KEYS = {"feature", "dim", "spec", "identity"}


def _unknown(found: dict[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(found) - known)
    if extra:
        raise BundleError(f"{where}: unknown key(s) {', '.join(extra)}; expected only: {', '.join(sorted(known))}")


def inside(root: Path, rel: Any, where: str) -> Path:
    """``root / rel`` for a relative path that stays inside ``root``; BundleError otherwise."""
    if not isinstance(rel, str) or not rel:
        raise BundleError(f"{where}: expected a relative file path inside the bundle, got {rel!r}")
    if PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).is_absolute() or PureWindowsPath(rel).drive:
        raise BundleError(f"{where}: expected a relative file path inside the bundle, got the absolute path {rel!r}")
    if ".." in PurePosixPath(rel.replace("\\", "/")).parts:
        raise BundleError(f"{where}: expected a file path inside the bundle, got {rel!r}, which climbs out with '..'")
    path = root / rel
    resolved, base = path.resolve(), root.resolve()
    if not resolved.is_relative_to(base):
        raise BundleError(f"{where}: {rel!r} resolves to {resolved}, outside the bundle folder {base} (a link?)")
    return path


def member_weight(entry: dict[str, Any], i: int, where: str) -> float:
    """A member's ensemble weight: a finite number >= 0."""
    weight = entry.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise BundleError(f"{where}: members[{i}].weight: expected a number >= 0, got {weight!r}")
    if not math.isfinite(weight) or weight < 0:
        raise BundleError(f"{where}: members[{i}].weight: expected a finite number >= 0, got {weight!r}")
    return float(weight)


def check_manifest(manifest: Any, root: Path, where: Path) -> None:
    """The structure of ``scorecast.json`` (see the module docstring)."""
    if not isinstance(manifest, dict):
        raise BundleError(
            f"{where}: expected a JSON object (the bundle manifest), got a JSON {type(manifest).__name__}"
        )
    _unknown(manifest, MANIFEST_KEYS, str(where))
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise BundleError(f"{where}: 'files': expected an object of file path -> sha256, got {type(files).__name__}")
    for rel in files:
        inside(root, rel, f"{where}: files")
    members = manifest.get("members")
    if not isinstance(members, list) or not members:
        raise BundleError(f"{where}: 'members': expected a non-empty list of member entries, got {members!r:.60}")
    weights = []
    for i, entry in enumerate(members):
        if not isinstance(entry, dict):
            raise BundleError(f"{where}: members[{i}]: expected an object, got {type(entry).__name__}")
        _unknown(entry, MEMBER_KEYS, f"{where}: members[{i}]")
        inside(root, entry.get("file"), f"{where}: members[{i}].file")
        if not isinstance(entry.get("state"), dict):
            raise BundleError(
                f"{where}: members[{i}].state: expected an object, got {type(entry.get('state')).__name__}"
            )
        weights.append(member_weight(entry, i, str(where)))
    if manifest.get("stacker") is None and sum(weights) <= 0:
        raise BundleError(f"{where}: members' weights: expected at least one weight > 0, got all zero")
    encoders = manifest.get("encoders") or []
    if not isinstance(encoders, list):
        raise BundleError(f"{where}: 'encoders': expected a list, got {type(encoders).__name__}")
    for i, entry in enumerate(encoders):
        if not isinstance(entry, dict):
            raise BundleError(f"{where}: encoders[{i}]: expected an object, got {type(entry).__name__}")
        _unknown(entry, ENCODER_KEYS, f"{where}: encoders[{i}]")
        dim = entry.get("dim")
        if not isinstance(entry.get("feature"), str) or isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise BundleError(
                f"{where}: encoders[{i}]: expected 'feature' (a name) and 'dim' (an integer >= 1), "
                f"got {entry.get('feature')!r} and {dim!r}"
            )


def check_tensors(tensors: dict[str, Any], where: str) -> None:
    """Every floating tensor finite; every ``norm.std``/``norm.seq_std`` tensor positive."""
    for name, tensor in tensors.items():
        arr = tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).sum())
            raise BundleError(f"{where}: tensor '{name}' holds {bad} NaN or infinite value(s); expected finite numbers")
        if name.startswith(("norm.std.", "norm.seq_std.")) and not (arr > 0).all():
            raise BundleError(
                f"{where}: tensor '{name}' holds {int((arr <= 0).sum())} value(s) <= 0; a feature's standard "
                "deviation must be positive (features would be divided by zero)"
            )


def check_member(member: Any, state: dict[str, Any], tensors: dict[str, Any], where: str) -> None:
    """The member as rebuilt writes back exactly the header keys and tensors it was loaded from."""
    info, written = member.to_state()
    extra_keys = sorted(set(state) - set(info))
    if extra_keys:
        raise BundleError(f"{where}: unknown key(s) {', '.join(extra_keys)} in the member's state")
    extra = sorted(set(tensors) - set(written))
    if extra:
        shown = ", ".join(extra[:5]) + (f" (and {len(extra) - 5} more)" if len(extra) > 5 else "")
        raise BundleError(f"{where}: unknown tensor(s) {shown}; a {member.kind} member does not use them")


def check_members_fit(members: list, recipe: Any, dims: dict[str, int], where: str) -> None:
    """Every member predicts the recipe's targets, in order (a member reading a feature the encoders do not
    give is refused when it predicts, by ``Member.check_features``)."""
    names = [t.name for t in recipe.targets]
    for i, member in enumerate(members):
        got = [t.name for t in member.targets]
        if got != names:
            raise BundleError(f"{where}: members[{i}] predicts targets {got}; the recipe's are {names}")
