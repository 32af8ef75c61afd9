"""Reports on committed runs: sessions, episodes, convergence, status and comparison.

Silent and torch-free: everything here reads the JSON files of a run (``metadata.json``,
``history.json``, ``episodes.jsonl``) and returns plain dataclasses that ``json.dumps`` takes
after :func:`dataclasses.asdict`. ``atheria history`` must answer at once on runs of thousands
of episodes, so the common path neither imports :mod:`atheria_cli.run.store` (it pulls in NumPy)
nor validates every checkpoint entry of ``metadata.json`` (see :class:`CommitRecord`).
"""

from __future__ import annotations

import json

import io
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from atheria_cli.run.atomic import atomic_write_bytes
from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import DamagedFileError, UsageError
from atheria_cli.run.formats import (
    METADATA_SCHEMA_VERSION,
    CheckpointEntry,
    EpisodeRecord,
    EvaluationRecord,
    History,
    SessionRecord,
    _Document,
    read_document,
    read_episodes,
    read_history,
)
from atheria_cli.reports.evaluations import committed_evaluations, pooled
from atheria_cli.run.layout import REFERENCES_DIR, AgentLayout

Goal = Literal["min", "max"]
Verdict = Literal["better", "worse", "same"]
RunState = Literal["no run", "uncommitted", "committed"]
REWARD = "reward"
PLOT_FORMATS = (".png", ".svg", ".pdf")


# --- what is measured -------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantity:
    """Reward or a configured metric, with the direction that counts as better."""

    name: str
    goal: Goal


def quantities(config: ExperimentConfig) -> list[Quantity]:
    """Reward (always ``max``) then every configured metric, in config order."""
    return [Quantity(REWARD, "max"), *(Quantity(metric.name, metric.goal) for metric in config.env.metrics)]


def main_quantity(config: ExperimentConfig) -> Quantity:
    """The first configured metric, else reward: what status and compare rank agents by."""
    measured = quantities(config)
    return measured[1] if len(measured) > 1 else measured[0]


def quantity_named(config: ExperimentConfig, name: str | None) -> Quantity:
    if name is None:
        return main_quantity(config)
    measured = quantities(config)
    for quantity in measured:
        if quantity.name == name:
            return quantity
    known = ", ".join(quantity.name for quantity in measured)
    raise UsageError(f"unknown metric {name!r}: the experiment records {known}")


def value_of(record: EpisodeRecord, name: str) -> float | None:
    return record.reward if name == REWARD else record.metrics.get(name)


def verdict(change: float, goal: Goal) -> Verdict:
    if change == 0:
        return "same"
    return "better" if (change > 0) == (goal == "max") else "worse"


def percent_of(change: float, reference: float) -> float | None:
    """``change`` as a percentage of ``|reference|``; None when the reference is 0."""
    return change / abs(reference) * 100 if reference != 0 else None


# --- reading a run ----------------------------------------------------------------------------


class CommitRecord(_Document):
    """``metadata.json`` as these commands read it: what :func:`read_document` checks (JSON,
    ``schema_version``) and the latest checkpoint entry, validated in full.

    The other entries stay unvalidated on purpose (even as a ``list[Any]``, which pydantic would
    walk): a long run lists one per episode, and checking 10,000 of them would cost more than
    everything else ``atheria history`` does. ``train --resume`` validates the whole file.
    """

    schema_version: int
    agent: str
    checkpoints: Any = Field(default_factory=list)


def read_latest_entry(path: Path) -> CheckpointEntry | None:
    """The latest committed checkpoint entry of ``metadata.json`` (None when it lists none)."""
    checkpoints = read_document(path, CommitRecord, METADATA_SCHEMA_VERSION).checkpoints
    if not isinstance(checkpoints, list):
        raise DamagedFileError(path, "checkpoints: Input should be a valid list")
    if not checkpoints:
        return None
    # AgentStore.commit appends each new entry last (retention only removes entries), so the
    # last one is Metadata.latest, the newest by timesteps.
    index = len(checkpoints) - 1
    try:
        return CheckpointEntry.model_validate(checkpoints[index])
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in ("checkpoints", index, *first["loc"]))
        raise DamagedFileError(path, f"{where}: {first['msg']}") from None


@dataclass(frozen=True)
class AgentRun:
    """What is committed in one agent's folder (nothing unless ``state`` is committed)."""

    agent: str
    folder: Path
    state: RunState
    latest: CheckpointEntry | None = None
    history: History | None = None
    records: list[EpisodeRecord] = field(default_factory=list)


def check_agent(config: ExperimentConfig, agent: str) -> None:
    if agent not in config.agents:
        raise UsageError(f"unknown agent {agent!r}: the experiment has {', '.join(config.agents)}")


def read_run(config: ExperimentConfig, agent: str) -> AgentRun:
    """Read an agent's committed run; damaged files raise :class:`DamagedFileError`."""
    layout = AgentLayout.of(config.run_dir, agent)
    root = layout.root
    if not _has_entries(root):
        return AgentRun(agent, root, "no run")
    latest = read_latest_entry(layout.metadata) if layout.metadata.exists() else None
    if latest is None:
        return AgentRun(agent, root, "uncommitted")
    history = read_history(layout.history)
    if history.total_episodes > latest.episode:
        # A crash between history.json and metadata.json: history runs one commit ahead.
        # Rare, so the store (and the NumPy it imports) loads only then.
        from atheria_cli.run.store import AgentStore

        history = AgentStore(layout).history_up_to(history, latest.episode, latest.timesteps)
    records = read_episodes(root / history.episodes_file, history.episodes_bytes, history.total_episodes)
    return AgentRun(agent, root, "committed", latest, history, records)


def _has_entries(folder: Path) -> bool:
    """Whether ``folder`` exists and is not empty; stops at the first entry (a long run's folder
    holds one checkpoint per episode, and ``Path.iterdir`` would list them all first)."""
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is not None
    except (FileNotFoundError, NotADirectoryError):
        return False


def require_run(config: ExperimentConfig, agent: str) -> AgentRun:
    """The committed run of an agent of the experiment, or a usage error saying how to get one."""
    check_agent(config, agent)
    run = read_run(config, agent)
    if run.state == "no run":
        raise UsageError(f"{agent} has no run in {run.folder}; start one with: atheria train --agent {agent}")
    if run.state == "uncommitted":
        raise UsageError(
            f"{agent} has files but no committed checkpoint in {run.folder}; "
            f"start over with: atheria train --agent {agent} --fresh"
        )
    return run


# --- atheria history --------------------------------------------------------------------------


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
        for record, session in zip(records, session_numbers(records, sessions))
    ]


def convergence(
    records: Sequence[EpisodeRecord], numbers: Sequence[int | None], sessions: Sequence[SessionRow], quantity: Quantity
) -> Convergence:
    """Mean per session, each compared with the previous session that has one."""
    values: dict[int, list[float]] = {session.session: [] for session in sessions}
    for record, number in zip(records, numbers):
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
        session.session, session.start_episode, session.end_episode, mean, change, percent_of(change, previous), verdict(change, goal)
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
        "written": report.written,
    }


def episodes_csv(report: HistoryReport) -> bytes:
    """Every episode, one row each; empty cells where a value is missing (NaN or infinite).
    Written from the records directly: a long run has too many episodes to build rows for."""
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["episode", "session", "timesteps", "reward", "length", *report.metrics, "seconds"])
    for record, session in zip(report.records, session_numbers(report.records, report.sessions)):
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


def check_output_path(path: Path, option: str) -> None:
    """An output file must go into an existing folder and must not be a folder itself."""
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"{option} {path}: folder {path.parent} does not exist")


def check_plot_path(path: Path) -> None:
    if path.suffix.lower() not in PLOT_FORMATS:
        supported = f"{', '.join(PLOT_FORMATS[:-1])} or {PLOT_FORMATS[-1]}"
        raise UsageError(f"--plot {path}: unsupported image type {path.suffix or '(none)'!r}; use {supported}")
    check_output_path(path, "--plot")


# --- atheria status ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusRow:
    agent: str
    state: RunState
    episodes: int
    timesteps: int
    last_value: float | None
    best_value: float | None
    best_episode: int | None
    last_checkpoint: str | None
    disk_bytes: int
    resumable: bool
    # Why the run cannot be resumed (None when it can).
    resume_problem: str | None


@dataclass(frozen=True)
class StatusReport:
    experiment: str
    run_dir: str
    metric: Quantity
    agents: list[StatusRow]


def status_report(config: ExperimentConfig) -> StatusReport:
    metric = main_quantity(config)
    rows = [status_row(read_run(config, agent), metric) for agent in config.agents]
    return StatusReport(config.experiment, str(config.run_dir), metric, rows)


def status_row(run: AgentRun, metric: Quantity) -> StatusRow:
    disk = folder_bytes(run.folder)
    latest = run.latest
    if latest is None:
        why = "no run" if run.state == "no run" else "no committed checkpoint"
        return StatusRow(run.agent, run.state, 0, 0, None, None, None, None, disk, False, why)
    best = best_record(run.records, metric)
    problem = resume_problem(run.folder / latest.file, latest.size)
    return StatusRow(
        agent=run.agent,
        state=run.state,
        episodes=latest.episode,
        timesteps=latest.timesteps,
        last_value=value_of(run.records[-1], metric.name) if run.records else None,
        best_value=value_of(best, metric.name) if best is not None else None,
        best_episode=best.episode if best is not None else None,
        last_checkpoint=str(run.folder / latest.file),
        disk_bytes=disk,
        resumable=problem is None,
        resume_problem=problem,
    )


def best_record(records: Sequence[EpisodeRecord], metric: Quantity) -> EpisodeRecord | None:
    """The episode with the best value (the first one on ties); None when no episode has one."""
    sign = 1.0 if metric.goal == "max" else -1.0
    scored = [(sign * value, record) for record in records if (value := value_of(record, metric.name)) is not None]
    return max(scored, key=lambda pair: pair[0])[1] if scored else None


def resume_problem(checkpoint: Path, recorded_size: int) -> str | None:
    """Cheap check (no sha256: that is ``train --resume``'s job): present, with its recorded size."""
    try:
        size = checkpoint.stat().st_size
    except FileNotFoundError:
        return f"{checkpoint.name} is missing"
    if size != recorded_size:
        return f"{checkpoint.name} is {size} bytes, metadata.json records {recorded_size}"
    return None


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder`` (0 when it does not exist)."""
    total = 0
    for directory, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except FileNotFoundError:  # removed while we walk (a commit pruning replay segments)
                pass
    return total


# --- atheria compare --------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareRow:
    agent: str
    state: RunState
    episodes: int  # how many of the last-window episodes have a value
    first_episode: int | None
    last_episode: int | None
    mean: float | None
    std: float | None  # population standard deviation over the window
    # Versus the baseline: positive is better whatever the goal.
    improvement: float | None
    improvement_percent: float | None
    verdict: Verdict | None
    kind: Literal["agent", "reference"] = "agent"  # reference: a rule-based policy scored by `atheria eval`
    # "evaluation": mean ± std over the episodes of the last evaluation(s) (train.eval), which
    # first_episode/last_episode then name; "episodes": over the last training episodes.
    source: Literal["episodes", "evaluation"] = "episodes"
    evaluations: int = 0


@dataclass(frozen=True)
class CompareReport:
    experiment: str
    metric: Quantity
    window: int
    baseline: float | None
    agents: list[CompareRow]
    best_agent: str | None
    eval_window: int = 1


def compare_report(config: ExperimentConfig, *, window: int = 10, metric: str | None = None, eval_window: int = 1) -> CompareReport:
    if window < 1:
        raise UsageError(f"--window must be at least 1 (got {window})")
    if eval_window < 1:
        raise UsageError(f"--eval-window must be at least 1 (got {eval_window})")
    quantity = quantity_named(config, metric)
    baseline = config.baseline.get(quantity.name)
    rows = [compare_row(read_run(config, agent), quantity, window, baseline, eval_window) for agent in config.agents]
    best = best_agent(rows, quantity.goal)
    rows += reference_rows(config, quantity, baseline)
    return CompareReport(config.experiment, quantity, window, baseline, rows, best, eval_window)


def reference_rows(config: ExperimentConfig, metric: Quantity, baseline: float | None) -> list[CompareRow]:
    """Reference policies scored by ``atheria eval <name>`` (``<run_dir>/references/<name>.json``)."""
    folder = config.run_dir / REFERENCES_DIR
    rows = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            summary = document["summary"].get(metric.name) or {}
            count = len(document["seeds"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DamagedFileError(path, f"unreadable reference score: {exc}") from None
        mean, std = summary.get("mean"), summary.get("std")
        improvement = None if baseline is None or mean is None else (mean - baseline if metric.goal == "max" else baseline - mean)
        rows.append(
            CompareRow(
                agent=path.stem, state="committed", episodes=count, first_episode=None, last_episode=None,
                mean=mean, std=std, improvement=improvement,
                improvement_percent=None if improvement is None or baseline is None else percent_of(improvement, baseline),
                verdict=None if improvement is None else verdict(improvement, "max"), kind="reference",
            )
        )
    return rows


def compare_row(run: AgentRun, metric: Quantity, window: int, baseline: float | None, eval_window: int = 1) -> CompareRow:
    evaluations = committed_evaluations(run.history, run.latest)[-eval_window:] if run.history is not None else []
    summary = pooled(evaluations, metric.name)
    if summary is not None:
        # Evaluations score the policy as deployed on fixed seeds: they, not exploring training
        # episodes, say how good the agent is.
        mean, std, _ = summary
        improvement = None if baseline is None else (mean - baseline if metric.goal == "max" else baseline - mean)
        return CompareRow(
            agent=run.agent, state=run.state, episodes=sum(item.episodes for item in evaluations),
            first_episode=evaluations[0].episode, last_episode=evaluations[-1].episode, mean=mean, std=std,
            improvement=improvement,
            improvement_percent=None if baseline is None or improvement is None else percent_of(improvement, baseline),
            verdict=None if improvement is None else verdict(improvement, "max"), source="evaluation", evaluations=len(evaluations),
        )
    recent = [(record.episode, value) for record in run.records[-window:] if (value := value_of(record, metric.name)) is not None]
    if not recent:
        return CompareRow(run.agent, run.state, 0, None, None, None, None, None, None, None)
    values = [value for _, value in recent]
    mean = math.fsum(values) / len(values)
    std = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / len(values))
    improvement = None if baseline is None else (mean - baseline if metric.goal == "max" else baseline - mean)
    return CompareRow(
        agent=run.agent,
        state=run.state,
        episodes=len(values),
        first_episode=recent[0][0],
        last_episode=recent[-1][0],
        mean=mean,
        std=std,
        improvement=improvement,
        improvement_percent=None if baseline is None or improvement is None else percent_of(improvement, baseline),
        verdict=None if improvement is None else verdict(improvement, "max"),
    )


def best_agent(rows: Sequence[CompareRow], goal: Goal) -> str | None:
    sign = 1.0 if goal == "max" else -1.0
    scored = [(sign * row.mean, row.agent) for row in rows if row.mean is not None]
    return max(scored, key=lambda pair: pair[0])[1] if scored else None
