"""Make ``import atheria_cli`` register the built-in environments without importing gymnasium.

Gymnasium 1.x dropped its plugin entry points, so a package cannot ask gymnasium to load it.
Importing gymnasium here would cost every torch-free command (``--version``, ``history``) the
import of gymnasium and numpy. Instead: if gymnasium is already imported, register now; if not,
a one-shot import hook registers right after gymnasium's own ``__init__`` has run.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType


def register_when_gymnasium_loads() -> None:
    if "gymnasium" in sys.modules:
        _register()
    elif not any(isinstance(finder, _AfterGymnasium) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterGymnasium())


def _register() -> None:
    import atheria_cli.envs  # noqa: F401  (its import registers the ids)


class _AfterGymnasium(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the real loader of ``gymnasium`` so registration follows it."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "gymnasium":
            return None
        sys.meta_path.remove(self)  # one shot; the real finders locate gymnasium
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        load = loader.exec_module

        def exec_then_register(module: ModuleType) -> None:
            load(module)
            _register()

        loader.exec_module = exec_then_register  # type: ignore[method-assign]
        return spec
