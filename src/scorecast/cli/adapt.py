"""``scorecast adapt RECIPE``: adapt an encoder to the recipe's data before training.

``--method simcse`` (default): unsupervised SimCSE on the texts of ``--field`` (e.g. ``text.response``)
for the recipe's ``sentence`` encoder of that field (or ``--model``); writes a new sentence-transformers
folder ``--out`` with its own identity. ``--method finetune``: end-to-end fine-tuning of the encoders
whose params set ``finetune_top_k`` (``hf-audio`` / ``hf-text`` / ``sentence``; the two sides of a pair
with the same params share one model), with the recipe's fusion, head and
losses; writes the adapted encoders, the head and a recipe using them under ``--out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scorecast.cli.train import CacheOpt, DataOpt, RecipeArg, SetOpt, VariantOpt, VarOpt
from scorecast.errors import ConfigError

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

    from scorecast.adapt.simcse import adapt_field

    settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "max_steps": max_steps, "dropout": dropout}
    run = adapt_field(recipe, items, out, field, model=model, seed=seed, **settings)
    console = Console()
    console.print(
        f"adapted [bold]{run.source}[/] on {run.record.get('num_texts')} texts of {field} "
        f"({run.record.get('steps')} steps) -> [bold]{run.folder}[/]"
    )
    if run.encoder_index is not None:
        console.print(f"use it: --set encoders.{run.encoder_index}.params.model={run.folder}")


def _finetune(recipe, items, out, epochs, batch_size, seed, cache) -> None:
    from rich.console import Console
    from rich.table import Table

    from scorecast.adapt.finetune import finetune_recipe
    from scorecast.cli.feedback import training_lines

    with training_lines():
        result = finetune_recipe(recipe, items, out, epochs=epochs, batch_size=batch_size, seed=seed, cache_dir=cache)
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
