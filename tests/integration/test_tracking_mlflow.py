"""MLflow tracking (local SQLite store): every committed step logged exactly once, through a
SIGKILL and a resume, a backfill and a --fresh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TINY_AGENTS, tiny_config, write_config
from tests.integration.helpers import agent_dir, episodes, kill_after_commits, train

pytestmark = pytest.mark.integration

mlflow_tracking = pytest.importorskip("mlflow.tracking")


def tracked_config(root: Path, **train_settings: Any) -> dict[str, Any]:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]}, env={"id": "tests.envs:EmissionsEnv", "metrics": ["co2_kg"]})
    config["train"] = {**config["train"], "eval": {"every": 3, "episodes": 1}, **train_settings}
    return config


def mlflow_settings(root: Path) -> dict[str, str]:
    return {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}"}


def tracked_runs(root: Path) -> tuple[Any, list[Any]]:
    client = mlflow_tracking.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("test")
    return client, client.search_runs([experiment.experiment_id])


def assert_logged_exactly_once(root: Path, checkpoints: Path) -> None:
    client, runs = tracked_runs(root)
    run_id = json.loads((agent_dir(checkpoints, "A2C") / "metadata.json").read_text())["run_id"]
    (run,) = [run for run in runs if run.data.tags["atheria.run_id"] == run_id]
    steps = {key: [metric.step for metric in client.get_metric_history(run.info.run_id, key)] for key in run.data.metrics}
    committed = episodes(checkpoints, "A2C")
    assert sorted(steps["episode/reward"]) == [record.timesteps for record in committed]
    assert sorted(steps["episode/co2_kg"]) == [record.timesteps for record in committed]
    history = json.loads((agent_dir(checkpoints, "A2C") / "history.json").read_text())
    assert sorted(steps.get("eval/reward_mean", [])) == [item["timesteps"] for item in history["evaluations"]]
    assert any(key.startswith("train/") for key in steps)
    for key, logged in steps.items():
        assert len(logged) == len(set(logged)), f"{key}: a step logged twice"
    assert run.data.params["config.env.id"] == "tests.envs:EmissionsEnv" and "versions.torch" in run.data.params


def test_sigkill_then_resume_logs_each_committed_step_exactly_once(tmp_path: Path) -> None:
    config = tracked_config(tmp_path, mlflow=mlflow_settings(tmp_path))
    write_config(tmp_path / "exp.yaml", {**config, "checkpoints_dir": str(tmp_path / "checkpoints")})
    killed_at = kill_after_commits(tmp_path, "A2C", commits=7)
    assert 7 <= killed_at < 400
    observer = train(config, tmp_path / "checkpoints", episodes=4, resume=True)
    assert observer.outcome.exit_code == 0
    assert len(episodes(tmp_path / "checkpoints", "A2C")) == killed_at + 4
    assert_logged_exactly_once(tmp_path, tmp_path / "checkpoints")


def test_committed_but_untracked_episodes_are_backfilled_and_fresh_starts_another_run(tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    train(tracked_config(tmp_path), checkpoints, episodes=4)  # no tracker: nothing logged
    tracked = tracked_config(tmp_path, mlflow=mlflow_settings(tmp_path))
    train(tracked, checkpoints, episodes=2, resume=True)
    assert_logged_exactly_once(tmp_path, checkpoints)
    train(tracked, checkpoints, episodes=1, fresh=True)
    _, runs = tracked_runs(tmp_path)
    assert len({run.data.tags["atheria.run_id"] for run in runs}) == 2
    assert_logged_exactly_once(tmp_path, checkpoints)
