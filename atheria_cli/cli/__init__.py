"""The command line: the only package that imports typer and rich.

``atheria --version`` is answered here, before typer, rich and pydantic load (they are most of
a command's start-up); every other command line goes to the Typer app in :mod:`atheria_cli.cli.app`.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

# pydantic looks for plugins by scanning every installed distribution's entry points the first
# time it builds a model; atheria uses none, and the scan is a tenth of a JSON-only command's
# start-up. The CLI process only: importing atheria_cli as a library changes nothing.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def main() -> None:
    """The ``atheria`` console script."""
    if sys.argv[1:] == ["--version"]:
        from atheria_cli import __version__

        sys.stdout.write(f"atheria {__version__}\n")
        return
    from atheria_cli.cli.app import main as run_app

    run_app()


class _Package(types.ModuleType):
    """``atheria_cli.cli.app`` is the Typer app, loaded on first use.

    A property, because importing the submodule of the same name makes the import system bind
    the module here (``setattr(package, "app", module)``): the setter ignores that binding.
    """

    @property
    def app(self) -> Any:
        from atheria_cli.cli.app import app

        return app

    @app.setter
    def app(self, value: Any) -> None:
        pass


sys.modules[__name__].__class__ = _Package

__all__ = ["app", "main"]
