"""``scorecast cache info|verify|prune|pack``: inspect and maintain the embedding cache."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from scorecast.errors import ConfigError

CacheOpt = Annotated[
    Path | None, typer.Option("--cache", help="Cache folder (default: $SCORECAST_CACHE or ~/.cache/scorecast).")
]


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _age(ts: float | None) -> str:
    if ts is None:
        return "never"
    days = (time.time() - ts) / 86400
    return f"{days:.1f} d ago" if days >= 1 else f"{days * 24:.1f} h ago"


def _describe(identity: dict | None) -> str:
    if not identity:
        return "(no identity.json)"
    shown = {k: v for k, v in identity.items() if k != "name" and v is not None}
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def _recipe_hashes(paths: list[Path], variables: dict[str, str] | None = None) -> set[str]:
    from scorecast.cache.store import hash_identity
    from scorecast.config import load_recipe
    from scorecast.encoders.pipeline import spec_identity

    return {hash_identity(spec_identity(spec)) for p in paths for spec in load_recipe(p, variables=variables).encoders}


def register(app: typer.Typer) -> None:
    cache_app = typer.Typer(help="Inspect and maintain the embedding cache.", no_args_is_help=True)
    app.add_typer(cache_app, name="cache")

    @cache_app.command("info")
    def info(
        cache: CacheOpt = None, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
    ) -> None:
        """Entries, bytes and last use per encoder identity."""
        from scorecast.cache.store import EmbeddingCache

        store = EmbeddingCache(cache)
        infos = store.info()
        if as_json:
            typer.echo(
                json.dumps({"root": str(store.root), "identities": [vars(i) for i in infos]}, indent=2, default=str)
            )
            return
        from rich.console import Console
        from rich.markup import escape

        # one block per identity rather than a wide table: readable at any terminal width
        console = Console()
        console.print(f"embedding cache [bold]{escape(str(store.root))}[/]", highlight=False)
        for i in infos:
            console.print(
                f"[bold]{i.identity_hash}[/]  {escape(i.encoder or '?')}: {i.entries} entries "
                f"({i.packed_rows} packed), {_size(i.bytes)}, last used {_age(i.last_used)}",
                highlight=False,
            )
            console.print(f"    {escape(_describe(i.identity))}", highlight=False)
        console.print(
            f"{len(infos)} identities, {sum(i.entries for i in infos)} entries, {_size(sum(i.bytes for i in infos))}"
        )

    @cache_app.command("verify")
    def verify(
        cache: CacheOpt = None,
        keep_corrupt: Annotated[
            bool, typer.Option("--keep-corrupt", help="Report corrupt entries without removing them.")
        ] = False,
    ) -> None:
        """Read every entry and check it; remove corrupt ones (they are recomputed on the next run). Exit 1 if any was corrupt."""
        from scorecast.cache.store import EmbeddingCache

        store = EmbeddingCache(cache)
        report = store.verify(remove=not keep_corrupt)
        for line in report.corrupt + report.bad_packs:
            typer.echo(f"corrupt: {line}")
        action = "kept" if keep_corrupt else "removed"
        typer.echo(
            f"checked {report.checked} entries: {len(report.corrupt)} corrupt ({action}), {len(report.bad_packs)} bad packs, "
            f"{report.removed_tmp} stale temporary files{'' if keep_corrupt else ' removed'}"
        )
        if report.corrupt or report.bad_packs:
            raise typer.Exit(1)

    @cache_app.command("prune")
    def prune(
        cache: CacheOpt = None,
        keep: Annotated[
            list[str] | None, typer.Option("--keep", help="Identity hash to keep; repeatable (others go).")
        ] = None,
        keep_recipe: Annotated[
            list[Path] | None,
            typer.Option("--keep-recipe", help="Keep the identities this recipe's encoders use; repeatable."),
        ] = None,
        var: Annotated[
            list[str] | None,
            typer.Option(
                "--var", help="Variable NAME=VALUE for the --keep-recipe recipes (fills ${NAME}); repeatable."
            ),
        ] = None,
        older_than: Annotated[
            float | None, typer.Option("--older-than", help="Remove identities not used for this many days.")
        ] = None,
        encoder: Annotated[
            str | None, typer.Option("--encoder", help="Remove identities of this encoder name.")
        ] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go; remove nothing.")] = False,
    ) -> None:
        """Remove whole encoder identities matching every criterion given."""
        from scorecast.cache.store import EmbeddingCache
        from scorecast.cli.train import parse_vars

        variables = parse_vars(var)
        keep_set = set(keep or []) | (_recipe_hashes(list(keep_recipe), variables) if keep_recipe else set())
        if not keep_set and older_than is None and encoder is None:
            raise ConfigError(
                "cache prune: expected --keep/--keep-recipe, --older-than or --encoder; got none (nothing would be selected)"
            )
        store = EmbeddingCache(cache)
        removed = store.prune(keep=keep_set or None, older_than_days=older_than, encoder=encoder, dry_run=dry_run)
        verb = "would remove" if dry_run else "removed"
        for i in removed:
            typer.echo(f"{verb} {i.identity_hash} ({i.encoder or '?'}: {i.entries} entries, {_size(i.bytes)})")
        typer.echo(f"{verb} {len(removed)} identities, {_size(sum(i.bytes for i in removed))}")

    @cache_app.command("pack")
    def pack(
        identity: Annotated[list[str] | None, typer.Argument(help="Identity hashes (default: all).")] = None,
        cache: CacheOpt = None,
    ) -> None:
        """Pack pooled vectors into one memory-mapped matrix per identity for fast bulk reads."""
        from scorecast.cache.store import EmbeddingCache

        store = EmbeddingCache(cache)
        for ih in identity or store.identities():
            if ih not in store.identities():
                raise ConfigError(
                    f"cache pack: unknown identity '{ih}'; expected one of: {', '.join(store.identities()) or '(none)'}"
                )
            typer.echo(f"{ih}: {store.pack(ih)} rows")
