"""W&B tracking in offline mode (WANDB_DIR in tmp), read back from its .wandb files: every
committed step logged exactly once, through a SIGKILL and a resume, a backfill and a --fresh."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TINY_AGENTS, tiny_config, write_config
from tests.integration.helpers import agent_dir, episodes, kill_after_commits, train

pytestmark = pytest.mark.integration

pytest.importorskip("wandb")


@pytest.fixture(autouse=True)
def wandb_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "wandb_dir"
    folder.mkdir()
    monkeypatch.setenv("WANDB_DIR", str(folder))
    monkeypatch.setenv("WANDB_MODE", "offline")
    return folder


def tracked_config(tracked: bool = True) -> dict[str, Any]:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]}, env={"id": "tests.envs:EmissionsEnv", "metrics": ["co2_kg"]})
    config["train"] = {**config["train"], "eval": {"every": 3, "episodes": 1}}
    if tracked:
        config["train"]["wandb"] = {"project": "atheria-test", "mode": "offline"}
    return config


def logged_steps(wandb_dir: Path, run_id: str) -> dict[str, list[int]]:
    from atheria_cli.tracking.wandb_adapter import read_offline_history

    steps: dict[str, list[int]] = {}
    files = sorted(wandb_dir.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert files, f"no offline W&B run {run_id}"
    for path in files:
        for step, values in read_offline_history(path):
            for key in values:
                steps.setdefault(key, []).append(step)
    return steps


def assert_logged_exactly_once(wandb_dir: Path, checkpoints: Path) -> None:
    run_id = json.loads((agent_dir(checkpoints, "A2C") / "metadata.json").read_text())["run_id"]
    steps = logged_steps(wandb_dir, run_id)
    committed = episodes(checkpoints, "A2C")
    assert sorted(steps["episode/reward"]) == [record.timesteps for record in committed]
    assert sorted(steps["episode/co2_kg"]) == [record.timesteps for record in committed]
    history = json.loads((agent_dir(checkpoints, "A2C") / "history.json").read_text())
    assert sorted(steps.get("eval/reward_mean", [])) == [item["timesteps"] for item in history["evaluations"]]
    assert any(key.startswith("train/") for key in steps)
    for key, logged in steps.items():
        assert len(logged) == len(set(logged)), f"{key}: a step logged twice"


def test_sigkill_then_resume_logs_each_committed_step_exactly_once(tmp_path: Path, wandb_dir: Path) -> None:
    config = tracked_config()
    write_config(tmp_path / "exp.yaml", {**config, "checkpoints_dir": str(tmp_path / "checkpoints")})
    killed_at = kill_after_commits(tmp_path, "A2C", commits=7)
    assert 7 <= killed_at < 400
    time.sleep(1.0)  # the killed process's W&B service writes what it had received
    observer = train(config, tmp_path / "checkpoints", episodes=4, resume=True)
    assert observer.outcome.exit_code == 0
    assert len(episodes(tmp_path / "checkpoints", "A2C")) == killed_at + 4
    assert_logged_exactly_once(wandb_dir, tmp_path / "checkpoints")


def test_committed_but_untracked_episodes_are_backfilled_and_fresh_starts_another_run(tmp_path: Path, wandb_dir: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    train(tracked_config(tracked=False), checkpoints, episodes=4)  # no tracker: nothing logged
    first_id = json.loads((agent_dir(checkpoints, "A2C") / "metadata.json").read_text())["run_id"]
    train(tracked_config(), checkpoints, episodes=2, resume=True)
    assert_logged_exactly_once(wandb_dir, checkpoints)
    train(tracked_config(), checkpoints, episodes=1, fresh=True)
    second_id = json.loads((agent_dir(checkpoints, "A2C") / "metadata.json").read_text())["run_id"]
    assert second_id != first_id and len(logged_steps(wandb_dir, first_id)["episode/reward"]) == 6
    assert_logged_exactly_once(wandb_dir, checkpoints)
