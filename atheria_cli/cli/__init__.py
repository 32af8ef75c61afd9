"""The command line: the only package that imports typer and rich.

``atheria --version`` is answered here, before typer, rich and pydantic load (they are most of
a command's start-up); every other command line goes to the Typer app in :mod:`atheria_cli.cli.app`.
"""

from __future__ import annotations

import gc
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
    # Start-up creates ~50,000 objects (modules, classes, functions, pydantic's schemas) that live
    # until exit; each garbage collection would walk them again, which is 6-7 % of `atheria
    # history`. So the collector is off until the command runs, and then leaves them out
    # (gc.freeze: the pattern Python's gc docs give for forking servers); see collect_from_here.
    gc.disable()
    from atheria_cli.cli.app import main as run_app

    run_app()


def collect_from_here() -> None:
    """Called as the command starts: the objects of start-up are frozen out of every later
    collection, and collection resumes for what the command creates. Only where :func:`main`
    turned the collector off: the app run in-process (tests, CliRunner) leaves it alone."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


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

__all__ = ["app", "collect_from_here", "main"]
