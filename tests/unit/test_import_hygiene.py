"""Modules that only read configs and JSON must not pull in torch, SB3 or gymnasium."""

from __future__ import annotations

import subprocess
import sys

import pytest

LIGHT_MODULES = [
    "atheria_cli",
    "atheria_cli.config",
    "atheria_cli.agents.names",
    "atheria_cli.run.formats",
    "atheria_cli.run.layout",
    "atheria_cli.run.atomic",
    "atheria_cli.run.segments",
    "atheria_cli.run.store",
    "atheria_cli.cli",
]


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_module_imports_without_heavy_libraries(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "heavy = sorted(m for m in ('torch', 'stable_baselines3', 'gymnasium', 'numpy') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == ""
