"""The config fuzzer (scripts/fuzz_config.py), a bounded run: bad input is exit 2, one line, nothing written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration  # a few of the mutated configs are valid and train one tiny episode
def test_mutated_configs_exit_0_or_2_with_one_line_and_nothing_written(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import fuzz_config
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    report = fuzz_config.run(cases=40, seed=20, workdir=tmp_path, timeout=30.0)
    problems = [f"case {o.case} ({'; '.join(o.mutations)}): {o.problem} | {o.stderr.strip()[-300:]}" for o in report.failures]
    assert problems == []
    counts = report.counts()
    # The run exercised both sides of the promise: configs refused at planning and configs that train.
    assert counts["exit 2"] >= 20 and counts["exit 0"] >= 1, counts
