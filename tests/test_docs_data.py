"""docs/data.md is executed: every example table is written as printed, read with the example's
``data`` section, and its first item compared with the ``# expect:`` line; every registered reader
and every option of the ``table`` reader is described there."""

from __future__ import annotations

import inspect
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from scorecast.config import DataConfig
from scorecast.data.readers import READERS, read_items
from scorecast.data.readers.table import TableReader

DOC = Path(__file__).resolve().parents[1] / "docs" / "data.md"
BLOCK = re.compile(r'```(\w+)(?: title="([^"]+)")?\n(.*?)```', re.S)


def examples() -> list[tuple[str, str, str, dict]]:
    """(file name, table text, data YAML, expectation) for every example of docs/data.md."""
    out, table = [], None
    for lang, title, body in BLOCK.findall(DOC.read_text()):
        if title:
            table = (title, body)
        elif lang == "yaml" and "# expect:" in body:
            assert table is not None, f"docs/data.md: a YAML example without a table before it:\n{body}"
            expect = yaml.safe_load(body.split("# expect:", 1)[1])
            out.append((table[0], table[1], body, expect))
            table = None
    return out


EXAMPLES = examples()


def test_docs_hold_an_example_per_table_option_and_name_every_reader():
    text = DOC.read_text()
    options = [p for p in inspect.signature(TableReader).parameters]
    described = set(re.findall(r"^### (.+)$", text, re.M))
    headed = {o.strip("` ") for h in described for o in h.split(",")}
    headed |= {w.strip("` ") for h in described for w in h.split(" and ")}
    missing = [o for o in options if o not in headed]
    assert not missing, f"docs/data.md has no section on table option(s) {missing}"
    for name in READERS.names():
        assert f"| `{name}` |" in text, f"docs/data.md does not describe reader '{name}'"
    assert len(EXAMPLES) >= 14


@pytest.mark.parametrize("name, table, data_yaml, expect", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_each_example_reads_as_documented(tmp_path, name, table, data_yaml, expect):
    (tmp_path / name).write_text(table)
    data = yaml.safe_load(data_yaml)["data"]
    options = data.get("options", {})
    audio_col = options.get("audio")
    if audio_col:  # empty stand-ins for the audio files the table names
        base = tmp_path / options.get("audio_dir", ".")
        for line in table.splitlines()[1:]:
            cell = line.split(",")[table.splitlines()[0].split(",").index(audio_col)]
            if cell:
                (base / cell).parent.mkdir(parents=True, exist_ok=True)
                (base / cell).write_bytes(b"")
    if "audio_dir" in options:
        options["audio_dir"] = str(tmp_path / options["audio_dir"])
    config = DataConfig(**{**data, "path": str(tmp_path / data["path"])})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # on_error: skip warns; the count is checked below
        items = read_items(config)
    first = items[0]
    for key, want in expect.items():
        if key == "n":
            assert len(items) == want
        elif key == "id":
            assert first.id == want
        elif key == "audio":
            assert first.audio == want
        elif key == "audio_name":
            assert Path(first.audio).name == want
        elif key == "audio_folder":
            assert Path(first.audio).parent.name == want
        elif key == "texts":
            assert first.texts == want
        elif key == "targets":
            assert first.targets == pytest.approx(want)
        elif key == "vectors":
            assert set(first.vectors) == set(want)
            for k, v in want.items():
                np.testing.assert_allclose(first.vectors[k], v, rtol=1e-6)
        elif key == "ratings":
            assert {k: list(r.values) for k, r in first.ratings.items()} == want
        elif key == "raters":
            assert {k: r.raters for k, r in first.ratings.items()} == want
        elif key == "group":
            assert first.group == want
        elif key == "meta":
            assert {k: first.meta[k] for k in want} == pytest.approx(want) or {k: str(first.meta[k]) for k in want} == {
                k: str(v) for k, v in want.items()
            }
        else:
            raise AssertionError(f"docs/data.md: unknown expectation key {key!r}")
