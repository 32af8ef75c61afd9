"""``import atheria_cli`` registers the built-in environments, yet imports no heavy library."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


ORDERS = ["import atheria_cli, gymnasium", "import gymnasium, atheria_cli", "import atheria_cli, gymnasium.spaces"]


@pytest.mark.parametrize("imports", ORDERS)
def test_importing_atheria_cli_registers_the_building_env(imports: str) -> None:
    code = (
        f"{imports}\n"
        "import gymnasium\n"
        "env = gymnasium.make('atheria/BuildingCO2-v0')\n"
        "print(type(env.unwrapped).__name__, 'atheria/BuildingCO2Discrete-v0' in gymnasium.registry)\n"
    )
    assert _run(code) == "BuildingCO2Env True"


def test_importing_atheria_cli_alone_imports_no_heavy_library() -> None:
    code = (
        "import sys, atheria_cli\n"
        "print(sorted(m for m in ('torch', 'stable_baselines3', 'gymnasium', 'numpy') if m in sys.modules))\n"
    )
    assert _run(code) == "[]"
