"""Observer events as typed values: how a job's progress crosses a process boundary.

A job that runs away from the caller's observer (a ``--jobs`` child, a Ray actor) observes
through an :class:`EventSender`: each :class:`~atheria_cli.training.session.TrainObserver` call
becomes one frozen, picklable event, which the job hands to its channel (a pipe, the Ray hub).
The receiving side calls :func:`dispatch`, one ``match`` case per event, so mypy checks every
event against the observer's declared methods; there is no proxy that answers to any name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, assert_never

from atheria_cli.run.formats import CheckpointEntry, EpisodeRecord, EvaluationRecord

if TYPE_CHECKING:
    from atheria_cli.training.session import TrainObserver


@dataclass(frozen=True)
class AgentStarted:
    agent: str
    first_episode: int
    episodes: int | None
    resumed_from: str | None


@dataclass(frozen=True)
class EpisodeFinished:
    agent: str
    record: EpisodeRecord


@dataclass(frozen=True)
class EvaluationFinished:
    agent: str
    record: EvaluationRecord


@dataclass(frozen=True)
class CheckpointCommitted:
    agent: str
    entry: CheckpointEntry


@dataclass(frozen=True)
class Resources:
    agent: str
    line: str


@dataclass(frozen=True)
class AgentFinished:
    agent: str


@dataclass(frozen=True)
class Warned:
    message: str


AgentEvent = AgentStarted | EpisodeFinished | EvaluationFinished | CheckpointCommitted | Resources | AgentFinished
Event = AgentEvent | Warned


class EventSender:
    """A :class:`TrainObserver` that turns each call into an :data:`Event` and hands it to ``send``."""

    def __init__(self, send: Callable[[Event], None]) -> None:
        self._send = send

    def agent_started(self, agent: str, first_episode: int, episodes: int | None, resumed_from: str | None) -> None:
        self._send(AgentStarted(agent, first_episode, episodes, resumed_from))

    def episode_finished(self, agent: str, record: EpisodeRecord) -> None:
        self._send(EpisodeFinished(agent, record))

    def evaluation_finished(self, agent: str, record: EvaluationRecord) -> None:
        self._send(EvaluationFinished(agent, record))

    def checkpoint_committed(self, agent: str, entry: CheckpointEntry) -> None:
        self._send(CheckpointCommitted(agent, entry))

    def resources(self, agent: str, line: str) -> None:
        self._send(Resources(agent, line))

    def agent_finished(self, agent: str) -> None:
        self._send(AgentFinished(agent))

    def warn(self, message: str) -> None:
        self._send(Warned(message))


def dispatch(event: Event, observer: TrainObserver) -> None:
    """Call the observer method that ``event`` stands for."""
    match event:
        case AgentStarted():
            observer.agent_started(event.agent, event.first_episode, event.episodes, event.resumed_from)
        case EpisodeFinished():
            observer.episode_finished(event.agent, event.record)
        case EvaluationFinished():
            observer.evaluation_finished(event.agent, event.record)
        case CheckpointCommitted():
            observer.checkpoint_committed(event.agent, event.entry)
        case Resources():
            observer.resources(event.agent, event.line)
        case AgentFinished():
            observer.agent_finished(event.agent)
        case Warned():
            observer.warn(event.message)
        case _:
            assert_never(event)


def run_label(agent: str, seed: int | None) -> str:
    """``SAC``, or ``seed_3/SAC`` for seed 3 of a multi-seed experiment."""
    return agent if seed is None else f"seed_{seed}/{agent}"


def relabelled(event: Event, seed: int | None) -> Event:
    """The event as the caller names it: in a multi-seed experiment, ``seed_<S>/`` before the agent
    (a warning's text starts with the agent's name)."""
    if seed is None:
        return event
    if isinstance(event, Warned):
        return Warned(run_label(event.message, seed))
    return dataclasses.replace(event, agent=run_label(event.agent, seed))


def labelled(observer: TrainObserver, seed: int | None) -> EventSender:
    """An observer that passes every event on to ``observer``, relabelled for ``seed``."""
    return EventSender(lambda event: dispatch(relabelled(event, seed), observer))
