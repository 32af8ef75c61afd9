"""Every experiment under configs/ is valid as shipped: the README and the docs tell users to run
them (`atheria tune --config configs/tune_default.yaml`, `--config configs/qca.yaml`), and a
field renamed in the models would otherwise break one unnoticed until a user ran it."""

from __future__ import annotations

from pathlib import Path

import pytest

from atheria_cli.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_the_repository_ships_configs() -> None:
    assert {path.name for path in CONFIGS} >= {"default.yaml", "tune_default.yaml", "tune_cartpole.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=[path.stem for path in CONFIGS])
def test_a_shipped_config_validates(path: Path) -> None:
    config = load_config(path, check_extras=False)
    assert config.agents
