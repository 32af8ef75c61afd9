"""The trainer seam's import boundary: ``training/``, ``deploy/`` and ``tracking/`` import no
Stable-Baselines3 (nor sb3-contrib) at module level; only the SB3 trainer does
(:mod:`atheria_cli.trainers.sb3` and its implementation, :mod:`atheria_cli.agents`).

Checked on the source with ``ast``: every top-level import statement of every module of those
packages, a new module included the day it is added. Imports inside functions (run only when an
SB3 trainer is used) and under ``if TYPE_CHECKING:`` (for the type checker only) are allowed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import atheria_cli

PACKAGE = Path(atheria_cli.__path__[0])
BOUNDED = ("training", "deploy", "tracking")
SB3_LIBRARIES = ("stable_baselines3", "sb3_contrib")


def _modules(package: str) -> list[Path]:
    return sorted((PACKAGE / package).rglob("*.py"))


def _module_level_imports(statements: list[ast.stmt]) -> Iterator[str]:
    """The modules imported by statements run at import time (a ``try`` or a plain ``if`` too)."""
    for statement in statements:
        if isinstance(statement, ast.Import):
            yield from (alias.name for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom) and statement.module and statement.level == 0:
            yield statement.module
        elif isinstance(statement, ast.If):
            test = statement.test
            if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
            ):
                yield from _module_level_imports(statement.orelse)
            else:
                yield from _module_level_imports(statement.body + statement.orelse)
        elif isinstance(statement, ast.Try):
            bodies = statement.body + statement.orelse + statement.finalbody
            yield from _module_level_imports(bodies + [line for handler in statement.handlers for line in handler.body])
        elif isinstance(statement, ast.With):
            yield from _module_level_imports(statement.body)


def sb3_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [name for name in _module_level_imports(tree.body) if name.split(".")[0] in SB3_LIBRARIES]


def test_every_bounded_package_is_covered() -> None:
    names = {str(path.relative_to(PACKAGE)) for package in BOUNDED for path in _modules(package)}
    assert {"training/session.py", "training/planning.py", "deploy/export.py", "tracking/__init__.py"} <= names


def test_the_check_sees_the_sb3_trainer_importing_sb3() -> None:
    """The SB3 trainer itself imports SB3 at module level: the check finds it (it can fail)."""
    assert "stable_baselines3.common.base_class" in sb3_imports(PACKAGE / "trainers" / "sb3" / "__init__.py")


@pytest.mark.parametrize("module", [str(path.relative_to(PACKAGE)) for package in BOUNDED for path in _modules(package)])
def test_no_module_level_sb3_import_outside_the_sb3_trainer(module: str) -> None:
    assert sb3_imports(PACKAGE / module) == [], f"{module} imports SB3 at module level; import it where it is used"
