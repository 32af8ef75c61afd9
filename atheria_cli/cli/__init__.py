"""The command line: the only package that imports typer and rich."""

import os

# pydantic looks for plugins by scanning every installed distribution's entry points the first
# time it builds a model; atheria uses none, and the scan is a tenth of a JSON-only command's
# start-up. The CLI process only: importing atheria_cli as a library changes nothing.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from atheria_cli.cli.app import app, main  # noqa: E402

__all__ = ["app", "main"]
