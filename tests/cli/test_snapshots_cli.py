"""``train.snapshots`` through the CLI: bad settings and agents that cannot take snapshots exit 2
with one line and write nothing; ``history`` lists the committed snapshots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from atheria_cli.cli import app
from tests.conftest import TINY_AGENTS, listing, tiny_config, write_config

pytestmark = pytest.mark.integration

runner = CliRunner()


def trainer_config(trainer: str = "tests.trainers:Snapshotter", snapshots: Any = None) -> dict[str, Any]:
    return {
        "experiment": "test",
        "checkpoints_dir": "checkpoints",
        "seed": 7,
        "device": "cpu",
        "agents": {"fit": {"trainer": trainer, "kwargs": {"hidden": 8}, "metrics": [{"name": "loss", "goal": "min"}, "lr"]}},
        "train": {"allow_import": True, "snapshots": snapshots if snapshots is not None else {"every": 2, "keep": 2}},
    }


def refused(in_tmp: Path, config: dict[str, Any]) -> str:
    """The one error line of ``atheria train`` on ``config``; nothing may be written."""
    write_config(in_tmp / "exp.yaml", config)
    result = runner.invoke(app, ["train", "--config", "exp.yaml", "--episodes", "2"])
    assert result.exit_code == 2, result.output
    assert listing(in_tmp) == ["exp.yaml"]
    assert result.stdout == "" and "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    return line


@pytest.mark.parametrize(
    ("snapshots", "message"),
    [
        ({"every": 0, "keep": 2}, "train.snapshots.every: Input should be greater than 0"),
        ({"every": 2, "keep": 0}, "train.snapshots.keep: Input should be greater than 0"),
        ({"every": -3}, "train.snapshots.every: Input should be greater than 0"),
        ({"keep": 2}, "train.snapshots.every: Field required"),
        ({"every": 1.5}, "train.snapshots.every: Input should be a valid integer, got a number with a fractional part"),
        ({"every": 2, "kept": 2}, "train.snapshots.kept: unknown field (did you mean 'keep'?)"),
    ],
)
def test_bad_snapshot_settings_exit_2_with_one_line(in_tmp: Path, snapshots: dict[str, Any], message: str) -> None:
    assert refused(in_tmp, trainer_config(snapshots=snapshots)) == f"atheria: error: exp.yaml: {message}"


def test_a_trainer_class_without_snapshot_is_refused_before_anything_is_written(in_tmp: Path) -> None:
    assert refused(in_tmp, trainer_config("tests.trainers:Shuffler")) == (
        "atheria: error: train.snapshots: agents.fit: tests.trainers:Shuffler has no snapshot() "
        "(it returns the tensors to persist, docs/trainers.md); define it or remove train.snapshots"
    )


def test_an_sb3_agent_takes_no_snapshots(in_tmp: Path) -> None:
    config = tiny_config({"PPO": TINY_AGENTS["PPO"]})
    config["train"]["snapshots"] = {"every": 1}
    assert refused(in_tmp, config) == (
        "atheria: error: train.snapshots: agents.PPO: the sb3 trainer kind takes no snapshots "
        "(only a trainer class that defines snapshot(), docs/trainers.md); remove train.snapshots"
    )


def test_history_lists_the_committed_snapshots(in_tmp: Path) -> None:
    write_config(in_tmp / "exp.yaml", trainer_config())
    trained = runner.invoke(app, ["train", "--config", "exp.yaml", "--episodes", "5"])
    assert trained.exit_code == 0, trained.output
    metadata = json.loads((in_tmp / "checkpoints/test/fit/metadata.json").read_text())
    assert [entry["file"] for entry in metadata["snapshots"]] == ["snapshots/snapshot_0002.pt", "snapshots/snapshot_0004.pt"]

    result = runner.invoke(app, ["history", "fit", "--config", "exp.yaml"])
    assert result.exit_code == 0, result.output
    table = result.stdout.split("Snapshots (train.snapshots)\n", 1)[1].split("Convergence", 1)[0]
    sizes = [f"{entry['size'] / 1000:.1f} KB" for entry in metadata["snapshots"]]
    assert table.splitlines()[3:5] == [
        f"│       2 │         2 │ snapshots/snapshot_0002.pt │ psi, step │ {sizes[0]} │",
        f"│       4 │         4 │ snapshots/snapshot_0004.pt │ psi, step │ {sizes[1]} │",
    ]
    document = json.loads(runner.invoke(app, ["history", "fit", "--config", "exp.yaml", "--json"]).stdout)
    assert document["snapshots"] == metadata["snapshots"]
