"""The scorecast command line: the Typer app (app) and one module per verb: parse arguments and print, nothing else."""
