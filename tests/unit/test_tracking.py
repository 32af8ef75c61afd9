"""The trackers of one session: a tracker that refuses a commit keeps no other from logging it."""

from __future__ import annotations

import pytest

from atheria_cli.errors import StorageError
from atheria_cli.run.formats import EpisodeRecord
from atheria_cli.tracking import Rows, RunTracking


class Recording:
    def __init__(self, name: str, refuse: bool = False) -> None:
        self.name, self.refuse = name, refuse
        self.logged: list[Rows] = []

    def last_steps(self) -> dict[str, int]:
        return {}

    def log(self, rows: Rows) -> None:
        if self.refuse:
            raise StorageError(f"{self.name} is unreachable")
        self.logged.append(rows)

    def close(self) -> None:
        pass


def record(episode: int, timesteps: int) -> EpisodeRecord:
    return EpisodeRecord(episode=episode, timesteps=timesteps, length=10, reward=1.0, seconds=0.1)


def test_a_refusing_tracker_keeps_no_other_from_logging_the_commit() -> None:
    refusing, tensorboard = Recording("mlflow", refuse=True), Recording("tensorboard")
    tracking = RunTracking(trackers=[refusing, tensorboard], last=[{}, {}])
    with pytest.raises(StorageError, match="mlflow is unreachable"):
        tracking.committed([record(1, 10)], [], timesteps=10)
    assert [sorted(rows) for rows in tensorboard.logged] == [[10]]
    refusing.refuse = False
    tracking.committed([record(2, 20)], [], timesteps=20)
    assert [sorted(rows) for rows in tensorboard.logged] == [[10], [20]]
    assert [sorted(rows) for rows in refusing.logged] == [[20]]  # the refused commit waits for the next session's backfill
