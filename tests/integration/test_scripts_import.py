"""Every script under ``scripts/`` still imports: the benchmarks are how speed targets are checked,
and one that broke with a refactor (bench_export.py importing what had moved) measured nothing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPTS = sorted((Path(__file__).resolve().parents[2] / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[path.stem for path in SCRIPTS])
def test_the_script_imports(script: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(script.parent))  # scripts import their neighbours
    spec = importlib.util.spec_from_file_location(f"script_{script.stem}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    if "__main__" in script.read_text(encoding="utf-8"):  # a command, not a helper module of one
        assert callable(getattr(module, "main", None)), f"{script.name} has no main()"
