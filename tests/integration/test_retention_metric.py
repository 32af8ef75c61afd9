"""Retention's ``best`` on a metric that is not the main one, through real training."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from atheria_cli.cli import app
from tests.conftest import TINY_AGENTS, listing, tiny_config, write_config

runner = CliRunner()
EPISODES = 6


def test_training_keeps_the_best_checkpoint_by_a_non_main_metric_s_own_goal(in_tmp: Path) -> None:
    # co2_kg is the main metric; energy_kwh (goal min) is the one retention ranks by.
    env = {
        "id": "atheria/BuildingCO2-v0",
        "kwargs": {"days": 1},
        "metrics": [{"name": "co2_kg", "goal": "min"}, {"name": "energy_kwh", "goal": "min"}],
    }
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]}, env=env)
    config["train"]["keep"] = {"best": 1, "metric": "energy_kwh"}
    path = write_config(in_tmp / "exp.yaml", config)
    result = runner.invoke(app, ["train", "--config", str(path), "--episodes", str(EPISODES)])
    assert result.exit_code == 0, result.output
    folder = in_tmp / "checkpoints/test/A2C"
    energy = [json.loads(line)["metrics"]["energy_kwh"] for line in (folder / "episodes.jsonl").read_text().splitlines()]
    lowest = min(range(1, EPISODES + 1), key=lambda episode: (energy[episode - 1], -episode))
    highest = max(range(1, EPISODES + 1), key=lambda episode: (energy[episode - 1], episode))
    # Keeping the highest instead (goal max) would leave another listing only if they differ.
    assert lowest != highest, energy
    assert [name for name in listing(folder) if name.endswith(".pt")] == sorted(
        f"episode_{episode:04d}.pt" for episode in (lowest, EPISODES)
    )
