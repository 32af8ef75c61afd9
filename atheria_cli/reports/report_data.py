"""``atheria report``, part one: everything the document shows, read from the run's JSON files.

Torch-free and silent. Each agent's run (each seed's, in a multi-seed experiment) is read as
:mod:`.runs` reads it for ``history``: only what ``metadata.json`` commits, so a run that is
still training is shown as of its last commit (``episodes.jsonl`` lines past the committed
bytes are ignored). The comparison is ``compare``'s own (:mod:`.compare`, :mod:`.seeds`), and
"best" is ``--checkpoint best`` (:mod:`atheria_cli.deploy.selection`): one home each.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from atheria_cli import __version__
from atheria_cli.config import ExperimentConfig, config_to_dict
from atheria_cli.deploy.selection import select_checkpoint
from atheria_cli.deploy.sidecar import check_file_matches, parse_sidecar
from atheria_cli.errors import DamagedFileError, UsageError
from atheria_cli.metrics import Quantity, main_quantity, quantities, value_of
from atheria_cli.reports.compare import CompareReport, compare_report
from atheria_cli.reports.evaluations import evaluation_scores
from atheria_cli.reports.history import HistoryReport, SessionRow, build_history, session_rows
from atheria_cli.reports.runs import AgentRun, read_run
from atheria_cli.reports.seeds import SeedsCompareReport, seeds_compare_report
from atheria_cli.run.formats import CheckpointEntry, ResourceSummary, SessionRecord
from atheria_cli.run.layout import CONFIG_FILE, HISTORY_FILE, METADATA_FILE, AgentLayout
from atheria_cli.run.seeds import run_seeds, seed_config
from atheria_cli.run.store import AgentStore, RunState
from atheria_cli.tune.layout import StudyLayout

COMPARE_WINDOW = 10  # the comparison's window: `atheria compare`'s default
RUN_FILES = (HISTORY_FILE, METADATA_FILE, CONFIG_FILE)  # JSON files of a run that are not sidecars


@dataclass(frozen=True)
class SessionInfo:
    """One training session with its throughput (``history``'s row plus what it leaves out)."""

    row: SessionRow
    threads: int | None
    atheria_version: str | None
    episodes_per_hour: float | None  # over the session's wall time, evaluations included
    resources: ResourceSummary | None = None  # the monitor's readings, when train.monitor_every ran


@dataclass(frozen=True)
class CheckpointInfo:
    entry: CheckpointEntry
    score: float | None  # the main metric: its evaluation mean, else the training episode's value
    scored_by: Literal["evaluation", "episode"] | None


@dataclass(frozen=True)
class ExportInfo:
    """An exported policy found by its sidecar in the agent's folder, and whether it still matches."""

    sidecar: str
    state: Literal["ok", "changed", "missing", "unreadable"]
    problem: str | None = None
    format: str | None = None
    file: str | None = None
    size: int | None = None
    sha256: str | None = None
    source_checkpoint: str | None = None
    source_sha256: str | None = None
    max_abs_diff: float | None = None
    exported: str | None = None


@dataclass(frozen=True)
class RunInfo:
    """One agent's run (one seed's, with seeds) as the report shows it."""

    agent: str
    algo: str
    seed: int | None  # None: a single-seed experiment
    folder: str
    state: RunState
    run: AgentRun = field(repr=False)
    history: HistoryReport | None = None  # committed runs only
    sessions: list[SessionInfo] = field(default_factory=list)
    latest: CheckpointInfo | None = None
    best: CheckpointInfo | None = None
    checkpoints: int = 0  # committed checkpoints kept in the folder
    versions: dict[str, str] = field(default_factory=dict)  # the libraries of the last session
    exports: list[ExportInfo] = field(default_factory=list)
    training_now: str | None = None  # who holds the agent's lock, while a session trains it


@dataclass(frozen=True)
class StudyInfo:
    """An ``atheria tune`` study of the experiment, as its own report files left it (no Optuna needed)."""

    study: str
    folder: str
    columns: list[str]  # trials.csv's header
    rows: list[list[str]]  # trials.csv's rows: every Optuna trial, interrupted attempts included
    best_yaml: str | None  # best.yaml as written, its header comment naming trial, value and seeds
    figures: dict[str, bytes] = field(default_factory=dict)  # history.png, importance.png where drawn


@dataclass(frozen=True)
class ExperimentReport:
    experiment: str
    run_dir: str
    generated: str
    atheria_version: str
    config: dict[str, Any]
    seeds: list[int]
    main: Quantity
    quantities: list[Quantity]
    # One comparison per quantity (the main one first), as `atheria compare --metric NAME`.
    comparisons: list[CompareReport | SeedsCompareReport]
    runs: list[RunInfo]
    monitor_every: int | None
    study: StudyInfo | None = None  # the config's tune study, once `atheria tune` has reported on it

    @property
    def committed(self) -> list[RunInfo]:
        return [run for run in self.runs if run.state is RunState.COMMITTED]

    def runs_of(self, agent: str) -> list[RunInfo]:
        return [run for run in self.runs if run.agent == agent]


def gather_report(config: ExperimentConfig) -> ExperimentReport:
    """Everything the document shows; a usage error when no agent has a committed run."""
    seeds = run_seeds(config)
    replicates = [(seed, seed_config(config, seed)) for seed in seeds] if seeds else [(None, config)]
    runs = [run_info(each, agent, seed) for agent in config.agents for seed, each in replicates]
    study = study_info(config)
    if not any(run.state is RunState.COMMITTED for run in runs) and study is None:
        raise UsageError(
            f"{config.experiment} has no committed run in {config.run_dir}: nothing to report; train one with: atheria train"
        )
    measured = quantities(config)
    main = main_quantity(config)
    ordered = [main, *(quantity for quantity in measured if quantity != main)]
    return ExperimentReport(
        experiment=config.experiment,
        run_dir=str(config.run_dir),
        generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        atheria_version=__version__,
        config=config_to_dict(config),
        seeds=seeds,
        main=main,
        quantities=measured,
        comparisons=[_comparison(config, quantity, bool(seeds)) for quantity in ordered],
        runs=runs,
        monitor_every=config.train.monitor_every,
        study=study,
    )


def study_info(config: ExperimentConfig) -> StudyInfo | None:
    """The tune study's trials.csv, best.yaml and plots, as its last report wrote them."""
    if config.tune is None:
        return None
    layout = StudyLayout.of(config.checkpoints_dir, config.experiment, config.tune.study)
    try:
        lines = list(csv.reader(io.StringIO(layout.trials_csv.read_text(encoding="utf-8"))))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DamagedFileError(layout.trials_csv, f"cannot be read ({exc}); rewrite it with: atheria tune --report") from None
    best = layout.best_yaml.read_text(encoding="utf-8") if layout.best_yaml.is_file() else None
    figures = {path.name: path.read_bytes() for path in (layout.history_png, layout.importance_png) if path.is_file()}
    header, *rows = lines or [[]]
    return StudyInfo(config.tune.study, str(layout.root), header, rows, best, figures)


def _comparison(config: ExperimentConfig, quantity: Quantity, over_seeds: bool) -> CompareReport | SeedsCompareReport:
    if over_seeds:
        return seeds_compare_report(config, window=COMPARE_WINDOW, metric=quantity.name)
    return compare_report(config, window=COMPARE_WINDOW, metric=quantity.name)


def run_info(config: ExperimentConfig, agent: str, seed: int | None) -> RunInfo:
    """What the report shows of one run; only committed runs have more than their state."""
    run = read_run(config, agent)
    base = RunInfo(agent, config.algo_of(agent), seed, str(run.folder), run.state, run, training_now=training_now(config, agent))
    if run.state is not RunState.COMMITTED or run.history is None or run.latest is None:
        return base
    store = AgentStore(AgentLayout.of(config.run_dir, agent))
    metadata = store.metadata()
    # metadata.json may have moved on since read_run (a session is training): keep what
    # read_run committed to, so every table of this run speaks of the same commit.
    committed = [entry for entry in metadata.checkpoints if entry.timesteps <= run.latest.timesteps]
    return replace(
        base,
        history=build_history(config, run),
        sessions=session_infos(run.history.trainings),
        latest=checkpoint_info(run, run.latest, config),
        best=_best(store, run, config),
        checkpoints=len(committed),
        versions=dict(metadata.versions),
        exports=exports_in(run.folder),
    )


def session_infos(trainings: list[SessionRecord]) -> list[SessionInfo]:
    ordered = sorted(trainings, key=lambda session: session.start_episode)  # session_rows' order
    return [
        SessionInfo(
            row=row,
            threads=record.threads,
            atheria_version=record.atheria_version,
            episodes_per_hour=record.episodes_count / record.duration_seconds * 3600.0 if record.duration_seconds > 0 else None,
            resources=record.resources,
        )
        for row, record in zip(session_rows(ordered), ordered, strict=True)
    ]


def checkpoint_info(run: AgentRun, entry: CheckpointEntry, config: ExperimentConfig) -> CheckpointInfo:
    """The checkpoint with its main-metric score, by the rule ``--checkpoint best`` ranks by."""
    assert run.history is not None
    name = main_quantity(config).name
    evaluated = evaluation_scores(run.history, name, run.latest)
    if evaluated:
        return CheckpointInfo(entry, evaluated.get(entry.episode), "evaluation" if entry.episode in evaluated else None)
    record = next((record for record in run.records if record.episode == entry.episode), None)
    score = value_of(record, name) if record is not None and not entry.partial else None
    return CheckpointInfo(entry, score, "episode" if score is not None else None)


def _best(store: AgentStore, run: AgentRun, config: ExperimentConfig) -> CheckpointInfo | None:
    try:
        entry = select_checkpoint(store, run.agent, "best", config)
    except UsageError:  # no checkpoint has a value of the main metric to rank by
        return None
    return checkpoint_info(run, entry, config)


def exports_in(folder: Path) -> list[ExportInfo]:
    """Every export sidecar in the agent's folder (``atheria export`` writes them there unless
    ``--output`` names another place), each checked against its file's sha256."""
    found = []
    for side in sorted(folder.glob("*.json")):
        if side.name in RUN_FILES:
            continue
        try:
            document = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # not JSON: not a sidecar
        if isinstance(document, dict) and "source_checkpoint" in document:
            found.append(export_info(side, document))
    return found


def export_info(side: Path, document: dict[str, Any]) -> ExportInfo:
    try:
        described = parse_sidecar(document, side)
    except DamagedFileError as exc:
        return ExportInfo(str(side), "unreadable", exc.problem, format=str(document.get("format")))
    exported = side.parent / described.file if described.file else None
    state: Literal["ok", "changed", "missing"] = "ok"
    problem = None
    if exported is not None and not exported.is_file():
        state, problem = "missing", f"{described.file} is not in the folder"
    elif exported is not None:
        try:
            check_file_matches(exported, described)
        except DamagedFileError as exc:
            state, problem = "changed", exc.problem
    return ExportInfo(
        sidecar=str(side),
        state=state,
        problem=problem,
        format=described.format,
        file=described.file,
        size=described.size,
        sha256=described.sha256,
        source_checkpoint=described.source_checkpoint,
        source_sha256=described.source_sha256,
        max_abs_diff=described.verification.max_abs_diff if described.verification else None,
        exported=described.exported,
    )


def training_now(config: ExperimentConfig, agent: str) -> str | None:
    """``pid N on HOST`` while a session holds the agent's lock (:mod:`atheria_cli.run.locking`).

    Read without locking: taking the lock, even shared, could make a session that starts at
    that moment fail. The file exists only while held, or after a holder was killed; a dead
    holder on this host is told apart by its pid.
    """
    path = Path(config.run_dir) / f".{agent}.lock"
    try:
        holder = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    words = holder.split()
    if len(words) == 4 and words[0] == "pid" and words[2] == "on" and words[3] == socket.gethostname():
        if not _alive(int(words[1]) if words[1].isdigit() else -1):
            return None
    return holder or "unknown"


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
