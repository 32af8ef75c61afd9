"""The trainer seam's import boundary: ``training/``, ``deploy/`` and ``tracking/`` import no
Stable-Baselines3 (nor sb3-contrib) at module level; only the SB3 trainer does
(:mod:`atheria_cli.trainers.sb3`, its implementation :mod:`atheria_cli.agents`, and
:mod:`atheria_cli.envs`, whose envs are SB3 VecEnvs).

Checked on the source with ``ast``: every top-level import statement of every module of those
packages, a new module included the day it is added. Imports inside functions (run only when an
SB3 trainer is used) and under ``if TYPE_CHECKING:`` (for the type checker only) are allowed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import atheria_cli

PACKAGE = Path(atheria_cli.__path__[0])
BOUNDED = ("training", "deploy", "tracking")
SB3_LIBRARIES = ("stable_baselines3", "sb3_contrib")
# The SB3 trainer: its adapter, its implementation, and the envs it trains on.
SB3_TRAINER = ("trainers/sb3", "agents", "envs")


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


def test_deploy_is_covered_to_its_last_module() -> None:
    """export, eval of a checkpoint and every format, sb3's included, are under the boundary."""
    names = {str(path.relative_to(PACKAGE)) for path in _modules("deploy")}
    assert {"deploy/export.py", "deploy/evaluation.py", "deploy/loading.py", "deploy/formats/sb3.py"} <= names


def test_only_the_sb3_trainer_imports_sb3_at_module_level() -> None:
    """Across the whole package, not only the bounded packages: a new package is covered too."""
    importers = {str(path.relative_to(PACKAGE)) for path in sorted(PACKAGE.rglob("*.py")) if sb3_imports(path)}
    outside = sorted(name for name in importers if not name.startswith(tuple(f"{part}/" for part in SB3_TRAINER)))
    assert outside == []
    assert "trainers/sb3/deploy.py" in importers  # the check sees the trainer's own modules


def test_importing_deploy_loads_no_sb3() -> None:
    """deploy/ reaches SB3 only through the checkpoint's trainer kind, when it loads a checkpoint:
    importing any of its modules loads no SB3, not even through another atheria module."""
    modules = [
        "atheria_cli." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        for path in _modules("deploy")
    ]
    code = (
        "import importlib, sys\n"
        f"for module in {modules!r}:\n"
        "    importlib.import_module(module)\n"
        f"    loaded = [name for name in {SB3_LIBRARIES!r} if name in sys.modules]\n"
        "    if loaded:\n"
        "        print(module, ','.join(loaded))\n"
        "        break\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout == ""
