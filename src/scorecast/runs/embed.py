"""Encoding a table, or every encoder of a recipe, into the embedding cache: what ``scorecast embed``
runs (one shard of the items, a worker pool or Lightning DDP across devices; packs the cache
afterwards where asked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scorecast.errors import ConfigError


def _accelerator(device: str | None, accelerator: str | None) -> str:
    if accelerator is not None:
        return accelerator
    if device is None or device == "cpu":
        return "cpu"
    return "gpu" if device.startswith("cuda") or device == "auto" else device


def run_embed(
    table: Path | None,
    recipe_path: Path | None,
    reader: str,
    options: dict[str, Any],
    encoder: str | None,
    input_: str,
    params: dict[str, Any],
    alias: str | None,
    sequence: bool,
    cache_dir: Path | None,
    float16: bool,
    batch_size: int | None,
    workers: int | None,
    device: str | None,
    shard: str | None,
    devices: int,
    accelerator: str | None,
    on_error: str,
    pack: bool,
    progress: bool,
    variables: dict[str, str] | None = None,
    overrides: list[str] | None = None,
) -> tuple[list[tuple[str, Any, int]], Path]:
    """Read items, encode each spec through the cache.

    Returns ([(label, EncodeResult, rows the reader left out)], cache root)."""
    from scorecast.cache.store import EmbeddingCache
    from scorecast.config import DataConfig, EncoderSpec, load_recipe
    from scorecast.data.readers import read_items
    from scorecast.encoders.pipeline import encode_items, parse_shard

    if on_error not in ("raise", "skip"):
        raise ConfigError(f"--on-error: expected 'raise' or 'skip', got '{on_error}'")
    shard_tuple = parse_shard(shard)
    if shard_tuple is not None and devices > 1:
        raise ConfigError(
            "--shard and --devices > 1 do not combine: shard across machines, or use several devices on one"
        )
    datasets = []
    if recipe_path is not None:
        if encoder is not None or params or options:
            raise ConfigError(
                "--recipe: the recipe names the data and encoders; drop --encoder/--param/--option (or drop --recipe)"
            )
        recipe = load_recipe(recipe_path, variables=variables, overrides=overrides)
        if not recipe.encoders:
            raise ConfigError(f"{recipe_path}: the recipe lists no encoders; expected at least one under 'encoders'")
        data = recipe.data.model_copy(update={"path": str(table)} if table is not None else {})
        data.on_error = on_error if on_error == "skip" else data.on_error
        datasets.append(data)
        if recipe.test_data is not None and table is None:
            datasets.append(recipe.test_data)
        specs = list(recipe.encoders)
        cache_dir = cache_dir or (Path(recipe.cache_dir) if recipe.cache_dir else None)
    else:
        if table is None or encoder is None:
            raise ConfigError(
                "embed: expected a TABLE and --encoder NAME (or --recipe RECIPE), got "
                f"{'no table' if table is None else 'no --encoder'}"
            )
        datasets.append(DataConfig(reader=reader, path=str(table), options=options, on_error=on_error))
        specs = [EncoderSpec(name=encoder, input=input_, params=params, alias=alias, sequence=sequence)]
    cache = EmbeddingCache(cache_dir, dtype="float16" if float16 else "float32")
    results = []
    for data in datasets:
        items = read_items(data)
        label = Path(data.path).name if data.path else data.reader
        for spec in specs:
            if devices > 1:
                from scorecast.encoders.distributed import encode_items_distributed

                res = encode_items_distributed(
                    items,
                    spec,
                    cache,
                    devices=devices,
                    accelerator=_accelerator(device, accelerator),
                    batch_size=batch_size or 16,
                    on_error=on_error,
                    progress=progress,
                )
            else:
                res = encode_items(
                    items,
                    spec,
                    cache,
                    batch_size=batch_size,
                    workers=workers,
                    device=device,
                    on_error=on_error,
                    progress=progress,
                    shard=shard_tuple,
                )
            packed = (cache.root / res.identity_hash / "pack.json").is_file()
            if pack and shard_tuple is None and res.rank == 0 and (res.encoded or (res.cached and not packed)):
                cache.pack(res.identity_hash)
            name = f"{label}: {spec.feature_name}" if len(datasets) > 1 else spec.feature_name
            results.append((name, res, len(items.skipped)))
    return results, cache.root
