"""The command line: the only package that imports typer and rich.

``atheria --version`` is answered here, before typer, rich and pydantic load (they are most of
a command's start-up); every other command line goes to the Typer app in :mod:`atheria_cli.cli.app`.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from typing import Any

# pydantic looks for plugins by scanning every installed distribution's entry points the first
# time it builds a model; atheria uses none, and the scan is a tenth of a JSON-only command's
# start-up. The CLI process only: importing atheria_cli as a library changes nothing.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
_PLUGINS_OFF = ("__all__", "1", "true")  # the values pydantic reads as "no plugins at all"
_PLUGIN_LOADER = "pydantic.plugin._loader"


def main() -> None:
    """The ``atheria`` console script."""
    if sys.argv[1:] == ["--version"]:
        from atheria_cli import __version__

        sys.stdout.write(f"atheria {__version__}\n")
        return
    _answer_pydantic_plugin_lookups()
    from atheria_cli.cli.app import main as run_app

    run_app()


def _answer_pydantic_plugin_lookups() -> None:
    """Stand in for pydantic's plugin loader while plugins are off.

    pydantic imports its loader, and with it ``importlib.metadata`` (~15 ms of a JSON-only
    command), the first time it builds a validator, only to read PYDANTIC_DISABLE_PLUGINS and
    find no plugins. The stand-in gives that answer without the import, and hands over to the
    real loader should the variable be changed to let plugins in.
    """
    if _PLUGIN_LOADER in sys.modules or os.environ.get("PYDANTIC_DISABLE_PLUGINS") not in _PLUGINS_OFF:
        return
    stand_in = types.ModuleType(_PLUGIN_LOADER, _answer_pydantic_plugin_lookups.__doc__)

    def get_plugins() -> Any:
        if os.environ.get("PYDANTIC_DISABLE_PLUGINS") in _PLUGINS_OFF:
            return ()
        del sys.modules[_PLUGIN_LOADER]
        return importlib.import_module(_PLUGIN_LOADER).get_plugins()

    stand_in.get_plugins = get_plugins  # type: ignore[attr-defined]
    sys.modules[_PLUGIN_LOADER] = stand_in


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
