"""Trackers without their extra: exit 2 naming it, nothing written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atheria_cli.cli import app
from tests.conftest import TINY_AGENTS, tiny_config, write_config

runner = CliRunner()


@pytest.mark.parametrize(
    ("section", "settings"),
    [("mlflow", {"tracking_uri": "sqlite:///x.db"}), ("wandb", {"mode": "offline"}), ("tensorboard", True)],
)
def test_a_tracker_without_its_extra_is_refused_naming_it(
    section: str, settings: object, in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]})
    config["train"][section] = settings
    write_config(in_tmp / "exp.yaml", config)
    monkeypatch.setitem(sys.modules, section, None)  # as if the package were not installed
    result = runner.invoke(app, ["train", "--config", "exp.yaml", "--episodes", "1"])
    assert result.exit_code == 2
    assert result.stderr == f"atheria: error: train.{section} needs the '{section}' extra: pip install 'atheria-cli[{section}]'\n"
    assert not (in_tmp / "checkpoints").exists()
