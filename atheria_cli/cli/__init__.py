"""The command line: the only package that imports typer and rich."""

from atheria_cli.cli.app import app, main

__all__ = ["app", "main"]
