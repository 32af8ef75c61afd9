"""TensorBoard as a tracker, read back with TensorBoard's own EventAccumulator: every committed
step shown exactly once, through a SIGKILL and a resume, and a backfill."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TINY_AGENTS, tiny_config, write_config
from tests.integration.helpers import agent_dir, episodes, kill_after_commits, train

pytestmark = pytest.mark.integration

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def tracked_config(tensorboard: bool = True) -> dict[str, Any]:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]}, env={"id": "tests.envs:EmissionsEnv", "metrics": ["co2_kg"]})
    config["train"] = {**config["train"], "eval": {"every": 3, "episodes": 1}, "tensorboard": tensorboard}
    return config


def shown_steps(checkpoints: Path) -> dict[str, list[int]]:
    """Each scalar tag's steps as TensorBoard shows them (purges applied, every point kept)."""
    events = event_accumulator.EventAccumulator(
        str(agent_dir(checkpoints, "A2C") / "tensorboard"), size_guidance={event_accumulator.SCALARS: 0}
    )
    events.Reload()
    return {tag: [event.step for event in events.Scalars(tag)] for tag in events.Tags()[event_accumulator.SCALARS]}


def assert_shown_exactly_once(checkpoints: Path) -> None:
    steps = shown_steps(checkpoints)
    committed = [record.timesteps for record in episodes(checkpoints, "A2C")]
    assert steps["episode/reward"] == committed
    assert steps["episode/co2_kg"] == committed
    history = json.loads((agent_dir(checkpoints, "A2C") / "history.json").read_text())
    assert sorted(steps["eval/reward_mean"]) == [item["timesteps"] for item in history["evaluations"]]
    assert any(tag.startswith("train/") for tag in steps)
    assert "train/n_updates" not in steps  # SB3 logs it with exclude="tensorboard"
    for tag, shown in steps.items():
        assert len(shown) == len(set(shown)), f"{tag}: a step shown twice"
        assert max(shown) <= committed[-1], f"{tag}: a step after the last commit"


def test_a_run_killed_after_n_commits_and_resumed_shows_each_committed_step_exactly_once_in_tensorboard(
    tmp_path: Path,
) -> None:
    config = tracked_config()
    write_config(tmp_path / "exp.yaml", {**config, "checkpoints_dir": str(tmp_path / "checkpoints")})
    killed_at = kill_after_commits(tmp_path, "A2C", commits=7)
    assert 7 <= killed_at < 400
    shown_before = shown_steps(tmp_path / "checkpoints")["episode/reward"]
    assert shown_before == [record.timesteps for record in episodes(tmp_path / "checkpoints", "A2C")][: len(shown_before)]
    observer = train(config, tmp_path / "checkpoints", episodes=4, resume=True)
    assert observer.outcome.exit_code == 0
    assert len(episodes(tmp_path / "checkpoints", "A2C")) == killed_at + 4
    assert_shown_exactly_once(tmp_path / "checkpoints")


def test_committed_episodes_missing_from_tensorboard_are_backfilled_once(tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    train(tracked_config(tensorboard=False), checkpoints, episodes=4)  # no tracker: nothing shown
    assert not (agent_dir(checkpoints, "A2C") / "tensorboard").exists()
    train(tracked_config(), checkpoints, episodes=2, resume=True)
    assert_shown_exactly_once(checkpoints)
    train(tracked_config(), checkpoints, episodes=1, resume=True)
    assert_shown_exactly_once(checkpoints)


def test_a_session_resumed_within_the_second_of_the_last_one_writes_a_file_read_after_it(tmp_path: Path) -> None:
    """TensorBoard reads a folder's event files in name order (second, host, pid): a resumed
    session's file opened in the second of its killed predecessor's, with a smaller pid, was read
    first (the full suite saw a run's points shown as 160, 180, 20, 40, ...)."""
    from torch.utils.tensorboard import SummaryWriter

    from atheria_cli.tracking.tensorboard_adapter import TensorBoardTracker

    folder = tmp_path / "tensorboard"
    killed = SummaryWriter(log_dir=str(tmp_path / "killed"))
    killed.add_scalar("episode/reward", 1.0, 20)
    killed.close()
    # The killed session's file as named by a process on this host whose pid sorts after ours, in
    # the second that starts next (so this test does not depend on when the second turns).
    folder.mkdir()
    (source,) = (tmp_path / "killed").glob("events.out.tfevents.*")
    source.rename(folder / f"events.out.tfevents.{int(time.time()) + 1}.{socket.gethostname()}.99999999.0")
    tracker = TensorBoardTracker(tmp_path, resumed_timesteps=20)
    tracker.log({40: {"episode/reward": 2.0}})
    tracker.close()
    assert f".{os.getpid()}." in sorted(path.name for path in folder.glob("events.out.tfevents.*"))[-1]
    assert shown_steps_in(folder)["episode/reward"] == [20, 40]


def shown_steps_in(folder: Path) -> dict[str, list[int]]:
    events = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.SCALARS: 0})
    events.Reload()
    return {tag: [event.step for event in events.Scalars(tag)] for tag in events.Tags()[event_accumulator.SCALARS]}
