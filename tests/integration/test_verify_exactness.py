"""``atheria verify --resume-exactness``: T episodes uninterrupted vs N then a resume in a fresh
process, in a scratch folder; the verdict, the first difference named, and the real run left
alone but for the verdict in its metadata.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from atheria_cli.cli import app
from atheria_cli.config import ExperimentConfig
from atheria_cli.run.locking import AgentLock
from atheria_cli.training.exactness import NOT_EXACT, ExactnessReport, record_verdict
from tests.conftest import TINY_AGENTS, listing, tiny_config, write_config
from tests.integration.helpers import agent_dir, train

pytestmark = pytest.mark.integration

runner = CliRunner()


def trainer_config(trainer: str = "tests.trainers:Shuffler") -> dict[str, Any]:
    return {
        "experiment": "test",
        "checkpoints_dir": "checkpoints",
        "seed": 7,
        "device": "cpu",
        "agents": {"fit": {"trainer": trainer, "kwargs": {"hidden": 8}, "metrics": [{"name": "loss", "goal": "min"}, "lr"]}},
        "train": {"allow_import": True},
    }


def verify(*args: str) -> Any:
    return runner.invoke(app, ["verify", "--resume-exactness", "--config", "exp.yaml", *args])


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by its relative path, with its bytes."""
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_a_tiny_sb3_agent_resumes_exactly(in_tmp: Path) -> None:
    write_config(in_tmp / "exp.yaml", tiny_config({"A2C": TINY_AGENTS["A2C"]}))
    result = verify("--episodes", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout == "A2C: exact\n"
    assert listing(in_tmp) == ["exp.yaml"]  # no run: nothing written, nothing recorded


def test_a_trainer_resumes_exactly_and_the_real_run_changes_by_its_verdict_only(in_tmp: Path) -> None:
    config = trainer_config()
    write_config(in_tmp / "exp.yaml", config)
    train(config, in_tmp / "checkpoints", episodes=2)
    before = _files(in_tmp)
    status_before = runner.invoke(app, ["status", "--config", "exp.yaml"]).stdout

    result = verify()
    assert result.exit_code == 0, result.output
    assert result.stdout == "fit: exact\n"

    after = _files(in_tmp)
    metadata = agent_dir(in_tmp / "checkpoints", "fit") / "metadata.json"
    changed = [name for name in after if after[name] != before.get(name)]
    assert sorted(after) == sorted(before) and changed == [str(metadata.relative_to(in_tmp))]
    old, new = json.loads(before[changed[0]]), json.loads(after[changed[0]])
    verdict = new.pop("resume_exactness")
    assert old.pop("resume_exactness") is None and new == old
    assert {key: verdict[key] for key in ("verdict", "exact", "episodes", "split", "repeat", "difference")} == {
        "verdict": "exact",
        "exact": True,
        "episodes": 4,
        "split": 2,
        "repeat": False,
        "difference": None,
    }
    status_after = runner.invoke(app, ["status", "--config", "exp.yaml"]).stdout
    day = verdict["checked"][:10]
    *table, line = status_after.splitlines()  # the table as before (but Disk: metadata.json grew), then the verdict
    assert len(table) == len(status_before.splitlines())
    assert line == f"fit: resume exactness exact (4 episodes, resumed after 2; checked {day})"
    document = json.loads(runner.invoke(app, ["status", "--config", "exp.yaml", "--json"]).stdout)
    assert document["agents"][0]["resume_exactness"] == f"exact (4 episodes, resumed after 2; checked {day})"


def test_a_verdict_checked_on_other_settings_says_so_in_status(in_tmp: Path) -> None:
    # A verdict outlived a change of the settings it checked: status said "exact" for a config
    # that had never been checked.
    config = trainer_config()
    write_config(in_tmp / "exp.yaml", config)
    train(config, in_tmp / "checkpoints", episodes=1)
    assert verify("--episodes", "2", "--split", "1").exit_code == 0
    line = runner.invoke(app, ["status", "--config", "exp.yaml"]).stdout.splitlines()[-1]
    assert line.startswith("fit: resume exactness exact (2 episodes, resumed after 1; checked ") and line.endswith(")")
    config["agents"]["fit"]["kwargs"] = {"hidden": 6}
    write_config(in_tmp / "exp.yaml", config)
    changed = runner.invoke(app, ["status", "--config", "exp.yaml"]).stdout.splitlines()[-1]
    assert changed == line[:-1] + "; the config's settings changed since: check again)"
    config["train"]["keep"] = {"last": 1}  # not a training setting: the verdict still holds for it
    config["agents"]["fit"]["kwargs"] = {"hidden": 8}
    write_config(in_tmp / "exp.yaml", config)
    assert runner.invoke(app, ["status", "--config", "exp.yaml"]).stdout.splitlines()[-1] == line


def test_a_tensor_left_out_of_state_dict_fails_naming_the_key(in_tmp: Path) -> None:
    write_config(in_tmp / "exp.yaml", trainer_config("tests.trainers:ForgetsPsi"))
    result = verify("--split", "1", "--episodes", "2")
    assert result.exit_code == 1, result.output
    first, *details = result.stdout.splitlines()
    assert first == "fit: not exact"
    assert details[0].startswith("  episode 2: loss ")
    assert details[1].startswith("  state.model.0.weight[0, 0] ")
    assert "  the trainer's psi differs after a round trip through a fresh instance: is it in state_dict?" in details
    assert "  something that decides the future was not restored: is it in state_dict?" in details


def test_repeat_on_an_exact_trainer_says_it_is_deterministic(in_tmp: Path) -> None:
    write_config(in_tmp / "exp.yaml", trainer_config())
    result = verify("--repeat", "--episodes", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout == "fit: exact\n  deterministic: two uninterrupted runs agree\n"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--split", "4"], "atheria: error: --split must be between 1 and 3 for --episodes 4 (got 4)"),
        (["--split", "0", "--episodes", "3"], "atheria: error: --split must be between 1 and 2 for --episodes 3 (got 0)"),
        (["--episodes", "1"], "atheria: error: --episodes must be at least 2 to split a run (got 1)"),
    ],
)
def test_a_bad_split_exits_2_with_one_line_and_writes_nothing(in_tmp: Path, args: list[str], line: str) -> None:
    write_config(in_tmp / "exp.yaml", trainer_config())
    result = verify(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr == line + "\n" and result.stdout == ""
    assert listing(in_tmp) == ["exp.yaml"]


def test_the_verdict_is_not_recorded_while_a_training_holds_the_lock(tmp_path: Path) -> None:
    config = {**trainer_config(), "checkpoints_dir": str(tmp_path)}
    train(config, tmp_path, episodes=1)
    metadata = agent_dir(tmp_path, "fit") / "metadata.json"
    before = metadata.read_bytes()
    experiment = ExperimentConfig.model_validate(config)
    report = ExactnessReport("fit", 4, 2, False, NOT_EXACT, ["episode 3: loss 1.0 != 2.0"])
    lock = AgentLock(experiment.run_dir, "fit")
    lock.acquire()
    try:
        assert record_verdict(experiment, report) == "the run is being trained (locked); not recorded"
    finally:
        lock.release()
    assert metadata.read_bytes() == before
    assert record_verdict(experiment, report) is None
    recorded = json.loads(metadata.read_text())["resume_exactness"]
    assert (recorded["verdict"], recorded["exact"], recorded["difference"]) == ("not exact", False, "episode 3: loss 1.0 != 2.0")
