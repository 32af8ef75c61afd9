"""The torch-free packages must not pull in torch, SB3, gymnasium or numpy.

``history``, ``status`` and ``compare`` import only these packages, which is what lets them
answer in a fraction of a second. Every module of each package is checked, not a list of
names: a new module in ``run/`` or ``reports/`` is covered the day it is added.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import atheria_cli

TORCH_FREE_PACKAGES = ("config", "run", "reports", "cli")
TORCH_FREE_MODULES = (
    "atheria_cli",
    "atheria_cli.metrics",
    "atheria_cli.errors",
    "atheria_cli.envs_registration",
    "atheria_cli.agents.names",  # the algorithm table config validates against
    "atheria_cli.agents.checkpoint",  # its header check reports a damaged file before torch loads
    "atheria_cli.deploy.sidecar",
    "atheria_cli.deploy.formats",
    # what `atheria tune --report` reads a study with (Optuna itself loads only when used)
    *(
        f"atheria_cli.tune.{name}"
        for name in ("extra", "layout", "objective", "plots", "record", "report", "space", "storage", "views")
    ),
)
HEAVY = ("torch", "stable_baselines3", "gymnasium", "numpy")


def torch_free_modules() -> list[str]:
    names = list(TORCH_FREE_MODULES)
    for package in TORCH_FREE_PACKAGES:
        names.append(f"atheria_cli.{package}")
        path = [f"{atheria_cli.__path__[0]}/{package}"]
        names += [f"atheria_cli.{package}.{module.name}" for module in pkgutil.iter_modules(path)]
    return names


def test_every_torch_free_package_is_covered() -> None:
    modules = torch_free_modules()
    assert {"atheria_cli.run.store", "atheria_cli.reports.history", "atheria_cli.cli.train"} <= set(modules)
    # atheria report: every part of it, matplotlib being imported only when a figure is drawn.
    report = {"report", "report_data", "report_document", "report_sections", "report_figures", "report_html", "report_markdown"}
    assert {f"atheria_cli.reports.{name}" for name in report} | {"atheria_cli.cli.report"} <= set(modules)


@pytest.mark.parametrize("module", torch_free_modules())
def test_module_imports_without_heavy_libraries(module: str) -> None:
    code = f"import sys, {module}\nprint(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == ""
