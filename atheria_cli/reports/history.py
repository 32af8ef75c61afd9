"""``atheria history``: sessions, episodes and convergence of one agent's run."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from atheria_cli.config import ExperimentConfig
from atheria_cli.metrics import (
    Goal,
    Quantity,
    Verdict,
    best_record,
    improvement,
    main_quantity,
    percent_of,
    quantities,
    value_of,
    verdict,
)
from atheria_cli.reports.evaluations import committed_evaluations
from atheria_cli.reports.output import check_output_path, check_plot_path
from atheria_cli.reports.runs import AgentRun, check_agent, committed_snapshots, read_run, require_run
from atheria_cli.run.atomic import atomic_write_bytes
from atheria_cli.run.formats import EpisodeRecord, EvaluationRecord, SessionRecord, SnapshotEntry
from atheria_cli.run.seeds import run_seeds, seed_config
from atheria_cli.run.store import RunState


@dataclass(frozen=True)
class SessionRow:
    session: int
    start_episode: int
    end_episode: int
    episodes: int
    device: str
    duration_seconds: float
    timestamp: str
    resumed_from: str | None
    eval_seconds: float = 0.0  # part of duration_seconds spent evaluating (train.eval)
    forked_from: str | None = None  # "RUN/AGENT/episode_XXXX.pt (run <run id>)" for a fork's first session
    adopted_from: str | None = None  # "FILE.zip (SB3, N timesteps)" for an adopted run's first session (not exact)


@dataclass  # not frozen: --all and --json build one per episode, and frozen __init__ is 3x slower
class EpisodeRow:
    episode: int
    session: int | None
    timesteps: int
    reward: float | None
    length: int
    metrics: dict[str, float | None]
    seconds: float


@dataclass(frozen=True)
class SessionMean:
    """One quantity's mean over one session, and its change from the previous session's."""

    session: int
    start_episode: int
    end_episode: int
    mean: float | None
    change: float | None = None
    change_percent: float | None = None
    verdict: Verdict | None = None


@dataclass(frozen=True)
class Convergence:
    quantity: str
    goal: Goal
    sessions: list[SessionMean]


@dataclass(frozen=True)
class HistoryReport:
    agent: str
    experiment: str
    folder: str
    total_episodes: int
    total_timesteps: int
    quantities: list[Quantity]
    sessions: list[SessionRow]
    convergence: list[Convergence]
    records: list[EpisodeRecord] = field(repr=False)
    written: list[str] = field(default_factory=list)
    evaluations: list[EvaluationRecord] = field(default_factory=list)
    snapshots: list[SnapshotEntry] = field(default_factory=list)  # committed (train.snapshots), oldest first

    @property
    def metrics(self) -> list[str]:
        return [quantity.name for quantity in self.quantities[1:]]

    def episodes(self, last: int | None = None) -> list[EpisodeRow]:
        """Rows of the last ``last`` episodes (every one when None). Built on demand: a long run
        has far more episodes than a table shows."""
        records = self.records if last is None else self.records[-last:] if last > 0 else []
        return episode_rows(records, self.sessions, self.metrics)


def history_report(
    config: ExperimentConfig, agent: str, *, csv_path: Path | None = None, plot_path: Path | None = None
) -> HistoryReport:
    """Sessions, episodes and convergence of an agent's run; writes the CSV and plot when asked.

    Output paths are checked before anything is read, so a typo fails at once.
    """
    if csv_path is not None:
        check_output_path(csv_path, "--csv")
    if plot_path is not None:
        check_plot_path(plot_path)
    report = build_history(config, require_run(config, agent))
    written = []
    if csv_path is not None:
        atomic_write_bytes(csv_path, episodes_csv(report))
        written.append(str(csv_path))
    if plot_path is not None:
        # matplotlib loads only here: it costs more than the rest of the command.
        from atheria_cli.reports.plotting import learning_curve

        atomic_write_bytes(plot_path, learning_curve(report, plot_path.suffix.lower().lstrip(".")))
        written.append(str(plot_path))
    return replace(report, written=written)


def build_history(config: ExperimentConfig, run: AgentRun) -> HistoryReport:
    assert run.history is not None and run.latest is not None
    measured = quantities(config)
    sessions = session_rows(run.history.trainings)
    numbers = session_numbers(run.records, sessions)
    return HistoryReport(
        agent=run.agent,
        experiment=config.experiment,
        folder=str(run.folder),
        total_episodes=run.history.total_episodes,
        total_timesteps=run.latest.timesteps,
        quantities=measured,
        sessions=sessions,
        convergence=[convergence(run.records, numbers, sessions, quantity) for quantity in measured],
        records=run.records,
        evaluations=committed_evaluations(run.history, run.latest),
        snapshots=committed_snapshots(run),
    )


@dataclass(frozen=True)
class SeedSummary:
    """One seed's run of an agent in a line: how far it got and its main metric."""

    seed: int
    state: RunState
    folder: str
    episodes: int
    timesteps: int
    sessions: int
    evaluations: int  # committed evaluations (train.eval)
    last_value: float | None  # the main metric of the last episode
    best_value: float | None
    best_episode: int | None


@dataclass(frozen=True)
class SeedsHistoryReport:
    """``atheria history AGENT`` of a multi-seed experiment without ``--seed``: a row per seed."""

    agent: str
    experiment: str
    metric: Quantity
    seeds: list[SeedSummary]
    written: list[str] = field(default_factory=list)


def seeds_history_report(config: ExperimentConfig, agent: str, *, plot_path: Path | None = None) -> SeedsHistoryReport:
    """A summary row per seed of ``agent``'s runs, seeds without a run included; with
    ``plot_path``, also every seed's learning curve in one figure (the path checked first)."""
    check_agent(config, agent)
    if plot_path is not None:
        check_plot_path(plot_path)
    metric = main_quantity(config)
    rows = [seed_summary(seed, read_run(seed_config(config, seed), agent), metric) for seed in run_seeds(config)]
    written = []
    if plot_path is not None:
        from atheria_cli.reports.compare_plot import seeds_history_plot  # matplotlib: only when asked

        atomic_write_bytes(plot_path, seeds_history_plot(config, agent, plot_path.suffix.lower().lstrip(".")))
        written.append(str(plot_path))
    return SeedsHistoryReport(agent, config.experiment, metric, rows, written)


def seed_summary(seed: int, run: AgentRun, metric: Quantity) -> SeedSummary:
    if run.history is None or run.latest is None:
        return SeedSummary(seed, run.state, str(run.folder), 0, 0, 0, 0, None, None, None)
    best = best_record(run.records, metric)
    return SeedSummary(
        seed=seed,
        state=run.state,
        folder=str(run.folder),
        episodes=run.history.total_episodes,
        timesteps=run.latest.timesteps,
        sessions=len(run.history.trainings),
        evaluations=len(committed_evaluations(run.history, run.latest)),
        last_value=value_of(run.records[-1], metric.name) if run.records else None,
        best_value=value_of(best, metric.name) if best is not None else None,
        best_episode=best.episode if best is not None else None,
    )


def session_rows(trainings: Sequence[SessionRecord]) -> list[SessionRow]:
    ordered = sorted(trainings, key=lambda session: session.start_episode)
    return [
        SessionRow(
            session=number,
            start_episode=record.start_episode,
            end_episode=record.end_episode,
            episodes=record.episodes_count,
            device=record.device,
            duration_seconds=record.duration_seconds,
            timestamp=record.session_timestamp,
            resumed_from=record.resumed_from,
            eval_seconds=record.eval_seconds,
            forked_from=f"{record.forked_from.file} (run {record.forked_from.run_id})" if record.forked_from else None,
            adopted_from=f"{record.adopted_from.file} (SB3, {record.adopted_from.num_timesteps} timesteps)"
            if record.adopted_from
            else None,
        )
        for number, record in enumerate(ordered, start=1)
    ]


def session_numbers(records: Sequence[EpisodeRecord], sessions: Sequence[SessionRow]) -> list[int | None]:
    """The session each record belongs to; one merge pass, both lists being in episode order."""
    numbers: list[int | None] = []
    index = 0
    for record in records:
        while index < len(sessions) and sessions[index].end_episode < record.episode:
            index += 1
        inside = index < len(sessions) and sessions[index].start_episode <= record.episode
        numbers.append(sessions[index].session if inside else None)
    return numbers


def episode_rows(records: Sequence[EpisodeRecord], sessions: Sequence[SessionRow], metrics: Sequence[str]) -> list[EpisodeRow]:
    return [
        EpisodeRow(
            episode=record.episode,
            session=session,
            timesteps=record.timesteps,
            reward=record.reward,
            length=record.length,
            metrics={name: record.metrics.get(name) for name in metrics},
            seconds=record.seconds,
        )
        for record, session in zip(records, session_numbers(records, sessions), strict=True)
    ]


def convergence(
    records: Sequence[EpisodeRecord], numbers: Sequence[int | None], sessions: Sequence[SessionRow], quantity: Quantity
) -> Convergence:
    """Mean per session, each compared with the previous session that has one."""
    values: dict[int, list[float]] = {session.session: [] for session in sessions}
    for record, number in zip(records, numbers, strict=True):
        value = value_of(record, quantity.name)
        if number is not None and value is not None:
            values[number].append(value)
    means: list[SessionMean] = []
    previous: float | None = None
    for session in sessions:
        in_session = values[session.session]
        mean = math.fsum(in_session) / len(in_session) if in_session else None
        means.append(_session_mean(session, mean, previous, quantity.goal))
        previous = mean if mean is not None else previous
    return Convergence(quantity.name, quantity.goal, means)


def _session_mean(session: SessionRow, mean: float | None, previous: float | None, goal: Goal) -> SessionMean:
    if mean is None or previous is None:
        return SessionMean(session.session, session.start_episode, session.end_episode, mean)
    change = mean - previous
    return SessionMean(
        session.session,
        session.start_episode,
        session.end_episode,
        mean,
        change,
        percent_of(change, previous),
        verdict(improvement(mean, previous, goal)),
    )


def history_json(report: HistoryReport, last: int | None) -> dict[str, Any]:
    """The JSON document of ``atheria history --json``: episodes limited like the table."""
    episodes = [vars(row) for row in report.episodes(last)]  # flat rows: no asdict deep copy
    return {
        "agent": report.agent,
        "experiment": report.experiment,
        "folder": report.folder,
        "total_episodes": report.total_episodes,
        "total_timesteps": report.total_timesteps,
        "quantities": [asdict(quantity) for quantity in report.quantities],
        "sessions": [asdict(session) for session in report.sessions],
        "episodes_shown": len(episodes),
        "episodes": episodes,
        "convergence": [asdict(trend) for trend in report.convergence],
        "evaluations": [item.model_dump(mode="json") for item in report.evaluations],
        "snapshots": [item.model_dump(mode="json") for item in report.snapshots],
        "written": report.written,
    }


def episodes_csv(report: HistoryReport) -> bytes:
    """Every episode, one row each; empty cells where a value is missing (NaN or infinite).
    Written from the records directly: a long run has too many episodes to build rows for."""
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["episode", "session", "timesteps", "reward", "length", *report.metrics, "seconds"])
    for record, session in zip(report.records, session_numbers(report.records, report.sessions), strict=True):
        metrics = [record.metrics.get(name) for name in report.metrics]
        cells = [record.episode, session, record.timesteps, record.reward, record.length, *metrics, record.seconds]
        writer.writerow(["" if cell is None else cell for cell in cells])
    return buffer.getvalue().encode("utf-8")


def rolling_mean(values: Sequence[float | None], window: int) -> list[float | None]:
    """Trailing mean over the last ``window`` values, skipping missing ones (shorter at the start)."""
    means: list[float | None] = []
    total, count = 0.0, 0
    for index, value in enumerate(values):
        if value is not None:
            total, count = total + value, count + 1
        dropped = values[index - window] if index >= window else None
        if dropped is not None:
            total, count = total - dropped, count - 1
        means.append(total / count if count else None)
    return means
