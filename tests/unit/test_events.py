"""Observer events cross process boundaries as typed values: each TrainObserver method has one,
it survives pickling, and dispatch calls the same method with the same arguments."""

from __future__ import annotations

import inspect
import pickle
from typing import Any

import pytest

from atheria_cli.run.formats import CheckpointEntry, EpisodeRecord, EvaluationRecord, Stat
from atheria_cli.training.events import Event, EventSender, dispatch, labelled
from atheria_cli.training.session import TrainObserver

EPISODE = EpisodeRecord(episode=3, reward=-1.5, length=50, timesteps=150, seconds=0.1)
STAT = Stat(mean=-1.0, std=0.5)
EVALUATION = EvaluationRecord(episode=4, timesteps=200, episodes=2, seeds=[7, 8], seconds=0.2, reward=STAT, length=STAT)
ENTRY = CheckpointEntry(file="episode_0003.pt", episode=3, timesteps=150, size=10, sha256="0" * 64, created="now")
CALLS: dict[str, tuple[Any, ...]] = {
    "agent_started": ("SAC", 1, 8, None),
    "episode_finished": ("SAC", EPISODE),
    "evaluation_finished": ("SAC", EVALUATION),
    "checkpoint_committed": ("SAC", ENTRY),
    "resources": ("SAC", "cpu 12 %"),
    "agent_finished": ("SAC",),
    "warn": ("SAC: a warning",),
}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def agent_started(self, agent: str, first_episode: int, episodes: int | None, resumed_from: str | None) -> None:
        self.calls.append(("agent_started", (agent, first_episode, episodes, resumed_from)))

    def episode_finished(self, agent: str, record: EpisodeRecord) -> None:
        self.calls.append(("episode_finished", (agent, record)))

    def evaluation_finished(self, agent: str, record: EvaluationRecord) -> None:
        self.calls.append(("evaluation_finished", (agent, record)))

    def checkpoint_committed(self, agent: str, entry: CheckpointEntry) -> None:
        self.calls.append(("checkpoint_committed", (agent, entry)))

    def resources(self, agent: str, line: str) -> None:
        self.calls.append(("resources", (agent, line)))

    def agent_finished(self, agent: str) -> None:
        self.calls.append(("agent_finished", (agent,)))

    def warn(self, message: str) -> None:
        self.calls.append(("warn", (message,)))


def _protocol_methods() -> set[str]:
    return {name for name, _ in inspect.getmembers(TrainObserver, inspect.isfunction) if not name.startswith("_")}


def test_the_observer_protocol_declares_every_event_including_evaluation() -> None:
    assert _protocol_methods() == set(CALLS)


@pytest.mark.parametrize("method", list(CALLS))
def test_each_observer_call_crosses_a_process_boundary_as_one_event_and_back(method: str) -> None:
    sent: list[Event] = []
    getattr(EventSender(sent.append), method)(*CALLS[method])
    (event,) = sent
    recorder = Recorder()
    dispatch(pickle.loads(pickle.dumps(event)), recorder)
    assert recorder.calls == [(method, CALLS[method])]


def test_the_sender_answers_only_to_declared_methods() -> None:
    # A proxy that answered any name would take a misspelt event and fail far away, in the driver.
    assert not hasattr(EventSender(print), "evaluation_finishd")


def test_a_seed_labels_every_event_as_the_run_is_named() -> None:
    recorder = Recorder()
    observer = labelled(recorder, 3)
    for method, args in CALLS.items():
        getattr(observer, method)(*args)
    assert [args[0] for _, args in recorder.calls] == ["seed_3/SAC"] * 6 + ["seed_3/SAC: a warning"]
    unlabelled = Recorder()
    labelled(unlabelled, None).warn("SAC: a warning")
    assert unlabelled.calls == [("warn", ("SAC: a warning",))]
