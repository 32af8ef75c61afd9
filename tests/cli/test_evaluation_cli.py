"""An experiment with train.eval: evaluations in `history` (table, --json, --plot) and `compare`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atheria_cli.cli import app
from tests.conftest import TINY_AGENTS, tiny_config, write_config

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture(scope="module")
def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evalcli")
    config = tiny_config(
        {"A2C": TINY_AGENTS["A2C"]},
        env={"id": "tests.envs:EmissionsEnv", "metrics": [{"name": "co2_kg", "goal": "min"}]},
        baseline={"co2_kg": 200.0},
    )
    config["train"] = {**config["train"], "save_every": 5, "eval": {"every": 2, "episodes": 2, "seed": 3}}
    write_config(root / "exp.yaml", config)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        result = runner.invoke(app, ["train", "--config", "exp.yaml", "--episodes", "4"])
        assert result.exit_code == 0, result.output
        assert "A2C evaluation at episode 2 (2 episodes): reward=" in result.stderr and "co2_kg=" in result.stderr
    return root


def invoke(root: Path, *args: str):  # type: ignore[no-untyped-def]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        return runner.invoke(app, [*args, "--config", "exp.yaml"])


def test_history_shows_evaluations_and_their_time(run_root: Path) -> None:
    result = invoke(run_root, "history", "A2C")
    assert result.exit_code == 0, result.output
    assert "Evaluations (train.eval)" in result.stdout and "co2_kg mean ± std" in result.stdout
    assert "Evaluation" in result.stdout and "Training" in result.stdout  # the session's time, split
    document = json.loads(invoke(run_root, "history", "A2C", "--json").stdout)
    assert [(item["episode"], item["seeds"]) for item in document["evaluations"]] == [(2, [3, 4]), (4, [3, 4])]
    assert document["sessions"][0]["eval_seconds"] > 0


def test_compare_says_it_uses_evaluations(run_root: Path) -> None:
    result = invoke(run_root, "compare")
    assert result.exit_code == 0, result.output
    assert "A2C (eval)" in result.stdout and "A2C: scored by the last evaluation (train.eval)" in result.stdout
    document = json.loads(invoke(run_root, "compare", "--json", "--eval-window", "2").stdout)
    (row,) = document["agents"]
    assert (row["source"], row["evaluations"], row["episodes"], row["first_episode"], row["last_episode"]) == (
        "evaluation",
        2,
        4,
        2,
        4,
    )
    assert document["eval_window"] == 2


def test_plot_draws_evaluations(run_root: Path) -> None:
    from atheria_cli.config import load_config
    from atheria_cli.reports import plotting
    from atheria_cli.reports.history import history_report

    drawn: list[str] = []
    original = plotting._plot_evaluations

    def spy(ax, report, name):  # type: ignore[no-untyped-def]
        original(ax, report, name)
        drawn.extend(f"{name}:{line.get_label()}" for line in ax.get_lines() if "evaluation" in line.get_label())
        drawn.extend(f"{name}:{container.get_label()}" for container in ax.containers)

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(run_root)
        patch.setattr(plotting, "_plot_evaluations", spy)
        config = load_config(Path("exp.yaml"))
        history_report(config, "A2C", plot_path=run_root / "curve.png")
    assert (run_root / "curve.png").stat().st_size > 1000
    assert "reward:evaluation (mean ± std)" in drawn and "co2_kg:evaluation (mean ± std)" in drawn
