"""``scorecast adapt RECIPE``: adapt an encoder to the recipe's data before training.

``--method simcse`` (default): unsupervised SimCSE on the texts of ``--field`` (e.g. ``text.response``)
for the recipe's ``sentence`` encoder of that field (or ``--model``); writes a new sentence-transformers
folder ``--out`` with its own identity. ``--method finetune``: end-to-end fine-tuning of the encoders
whose params set ``finetune_top_k`` (``hf-audio`` / ``hf-text``), with the recipe's fusion, head and
losses; writes the adapted encoders, the head and a recipe using them under ``--out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scorecast.cli.train import CacheOpt, DataOpt, RecipeArg, SetOpt, VariantOpt, VarOpt
from scorecast.errors import ConfigError, DataError

METHODS = ("simcse", "finetune")


def register(app: typer.Typer) -> None:
    @app.command("adapt")
    def adapt(
        recipe: RecipeArg,
        out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the adapted encoder(s) to.")],
        method: Annotated[
            str,
            typer.Option(
                "--method", help="simcse (sentence encoder, texts only) or finetune (top layers, end to end)."
            ),
        ] = "simcse",
        field: Annotated[
            str | None, typer.Option("--field", help="SimCSE: the text input to adapt on, e.g. text.response.")
        ] = None,
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                help="SimCSE: source sentence-transformers folder (default: the recipe's sentence encoder of --field).",
            ),
        ] = None,
        epochs: Annotated[
            int | None, typer.Option("--epochs", help="Epochs (SimCSE default 1; finetune: training.max_epochs).")
        ] = None,
        batch_size: Annotated[
            int | None,
            typer.Option("--batch-size", help="Batch size (SimCSE default 32; finetune: training.batch_size)."),
        ] = None,
        lr: Annotated[float | None, typer.Option("--lr", help="SimCSE learning rate (default 3e-5).")] = None,
        max_steps: Annotated[
            int | None, typer.Option("--max-steps", help="SimCSE: stop after this many steps.")
        ] = None,
        dropout: Annotated[
            float | None, typer.Option("--dropout", help="SimCSE: dropout during training (default: the model's own).")
        ] = None,
        seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
        var: VarOpt = None,
        set_: SetOpt = None,
        variant: VariantOpt = None,
        cache: CacheOpt = None,
        data: DataOpt = None,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Delete an existing folder --out first (refused otherwise).")
        ] = False,
    ) -> None:
        """Adapt an encoder to the data: SimCSE on a text field, or fine-tune top encoder layers end to end."""
        from scorecast.cli.train import parse_vars
        from scorecast.config import load_recipe
        from scorecast.data.readers import read_items
        from scorecast.runs.outdir import emptied_output_dir

        if method not in METHODS:
            raise ConfigError(f"--method: expected one of {', '.join(METHODS)}, got '{method}'")
        emptied_output_dir(out, overwrite)  # the adapted recipe names paths inside --out: never a mix of two runs
        loaded = load_recipe(recipe, variables=parse_vars(var), overrides=list(set_ or []), variant=variant)
        if data is not None:
            loaded.data.path = str(data)
        items = read_items(loaded.data)
        if method == "simcse":
            _simcse(loaded, items, out, field, model, epochs, batch_size, lr, max_steps, dropout, seed)
        else:
            for name, value in (
                ("--field", field),
                ("--model", model),
                ("--lr", lr),
                ("--max-steps", max_steps),
                ("--dropout", dropout),
            ):
                if value is not None:
                    raise ConfigError(
                        f"{name}: only used by --method simcse (fine-tuning reads the recipe's encoder params)"
                    )
            _finetune(loaded, items, out, epochs, batch_size, seed, cache)


def _simcse(recipe, items, out, field, model, epochs, batch_size, lr, max_steps, dropout, seed) -> None:
    from rich.console import Console

    from scorecast.adapt.simcse import adapt_simcse, simcse_config

    if field is None or not field.startswith("text.") or len(field) <= 5:
        raise ConfigError(f"--field: expected the text input to adapt on, e.g. text.response, got {field!r}")
    index, spec = next(
        ((i, s) for i, s in enumerate(recipe.encoders) if s.input == field and s.name == "sentence"), (None, None)
    )
    source = model or (spec.params.get("model") if spec is not None else None)
    if source is None and spec is None:
        listed = ", ".join(f"{s.name} on {s.input}" for s in recipe.encoders) or "none"
        raise ConfigError(
            f"--field {field}: the recipe has no 'sentence' encoder reading it (encoders: {listed}); pass --model FOLDER"
        )
    if source is None:
        from scorecast.encoders.sentence import default_model_dir

        source = str(default_model_dir())
    name = field.split(".", 1)[1]
    texts = [item.texts.get(name) for item in items]
    if not any(texts):
        have = sorted({k for item in items for k in item.texts}) or ["none"]
        raise DataError(
            f"--field {field}: no item has text '{name}' (text fields: {', '.join(have)})", file=items.source or None
        )
    settings = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "max_steps": max_steps,
        "dropout": dropout,
        "max_seq_length": spec.params.get("max_seq_length") if spec is not None else None,
    }
    cfg = simcse_config(seed=seed, **{k: v for k, v in settings.items() if v is not None})
    folder = adapt_simcse(source, texts, out, cfg, field=field)
    from scorecast.adapt.common import read_adaptation

    record = read_adaptation(folder) or {}
    console = Console()
    console.print(
        f"adapted [bold]{source}[/] on {record.get('num_texts')} texts of {field} "
        f"({record.get('steps')} steps) -> [bold]{folder}[/]"
    )
    if index is not None:
        console.print(f"use it: --set encoders.{index}.params.model={folder}")


def _finetune(recipe, items, out, epochs, batch_size, seed, cache) -> None:
    from rich.console import Console
    from rich.table import Table

    from scorecast.adapt.finetune import fit_finetune

    updates = {"seed": seed}
    if epochs is not None:
        updates["max_epochs"] = epochs
    if batch_size is not None:
        updates["batch_size"] = batch_size
    from scorecast.config import load_recipe

    recipe = load_recipe(recipe.model_dump(mode="json"), overrides={f"training.{k}": v for k, v in updates.items()})
    embedding_cache = None
    if cache is not None:
        from scorecast.cache.store import EmbeddingCache

        embedding_cache = EmbeddingCache(cache)
    from scorecast.cli.feedback import training_lines

    with training_lines():
        result = fit_finetune(recipe, items, out, cache=embedding_cache)
    console = Console()
    table = Table(title="scorecast adapt: fine-tuned parameter groups")
    table.add_column("group")
    table.add_column("lr", justify="right")
    for group in result.param_groups:
        table.add_row(group["name"], f"{group['lr']:.3g}")
    console.print(table)
    last = result.history[-1] if result.history else {}
    shown = ", ".join(
        f"{k}={v:.4f}" for k, v in last.items() if k.startswith(("train_loss", "val_")) and isinstance(v, float)
    )
    if shown:
        console.print(f"last epoch: {shown}")
    for name, folder in result.encoder_dirs.items():
        console.print(f"{name} -> [bold]{folder}[/]")
    console.print(
        f"recipe using them: [bold]{result.out_dir / 'recipe.yaml'}[/] (scorecast cv {result.out_dir / 'recipe.yaml'})"
    )
