"""A misspelled ``env.metrics`` name is bad input: exit 2 before anything on disk changes."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from atheria_cli.cli import app
from tests.conftest import TINY_AGENTS, tiny_config, write_config

runner = CliRunner()
BUILDING_DAY = {"id": "atheria/BuildingCO2-v0", "kwargs": {"days": 1}, "max_episode_steps": 24}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_fresh_with_a_misspelled_metric_exits_2_and_moves_nothing(in_tmp: Path) -> None:
    env = {**BUILDING_DAY, "metrics": [{"name": "co2_kgg", "goal": "min"}]}
    config = write_config(in_tmp / "exp.yaml", tiny_config({"A2C": TINY_AGENTS["A2C"]}, env=env))
    old_run = in_tmp / "checkpoints/test/A2C"
    old_run.mkdir(parents=True)
    (old_run / "episode_0001.pt").write_bytes(b"the old run's checkpoint")
    (old_run / "metadata.json").write_text("{}")
    before = _tree(in_tmp)
    result = runner.invoke(app, ["train", "--config", str(config), "--episodes", "1", "--fresh"])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "atheria: error: env.metrics: 'co2_kgg' is not in the final info dict of atheria/BuildingCO2-v0 episodes "
        "(did you mean 'co2_kg'? keys there: baseline_co2_kg, co2_kg, energy_kwh)\n"
    )
    assert _tree(in_tmp) == before


def test_a_metric_missing_from_the_final_info_is_refused_before_training(in_tmp: Path) -> None:
    # Pendulum reports no info keys: the probe plays its first 50-step episode to the end.
    env = {"id": "Pendulum-v1", "max_episode_steps": 50, "metrics": ["co2_kg"]}
    config = write_config(in_tmp / "exp.yaml", tiny_config({"A2C": TINY_AGENTS["A2C"]}, env=env))
    result = runner.invoke(app, ["train", "--config", str(config), "--episodes", "1"])
    assert result.exit_code == 2
    assert result.stderr == (
        "atheria: error: env.metrics: 'co2_kg' is not in the final info dict of Pendulum-v1 episodes (keys there: none)\n"
    )
    assert list(in_tmp.iterdir()) == [in_tmp / "exp.yaml"]
