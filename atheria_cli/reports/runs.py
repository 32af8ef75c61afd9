"""Reading one agent's committed run for the reports, cheaply (see :class:`CommitRecord`)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, TypeAdapter, ValidationError

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import DamagedFileError, UsageError
from atheria_cli.run.formats import (
    METADATA_SCHEMA_VERSION,
    CheckpointEntry,
    Document,
    EpisodeRecord,
    ExactnessVerdict,
    History,
    SnapshotEntry,
    read_document,
    read_episodes,
    read_history,
)
from atheria_cli.run.layout import METADATA_FILE, AgentLayout
from atheria_cli.run.store import AgentStore, RunState


class CommitRecord(Document):
    """``metadata.json`` as these commands read it: what :func:`read_document` checks (JSON,
    ``schema_version``) and the latest checkpoint entry, validated in full.

    The other entries stay unvalidated on purpose (even as a ``list[Any]``, which pydantic would
    walk): a long run lists one per episode, and checking 10,000 of them would cost more than
    everything else ``atheria history`` does. ``train --resume`` validates the whole file.
    """

    schema_version: int
    agent: str
    checkpoints: Any = Field(default_factory=list)
    resume_exactness: ExactnessVerdict | None = None  # the last verify --resume-exactness
    snapshots: Any = Field(default_factory=list)  # validated by committed_snapshots, for the commands that show them


def read_latest_entry(path: Path) -> CheckpointEntry | None:
    """The latest committed checkpoint entry of ``metadata.json`` (None when it lists none)."""
    return latest_entry(read_document(path, CommitRecord, METADATA_SCHEMA_VERSION), path)


def latest_entry(record: CommitRecord, path: Path) -> CheckpointEntry | None:
    """The latest checkpoint entry of a read ``metadata.json`` at ``path``, validated."""
    checkpoints = record.checkpoints
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


def committed_snapshots(run: AgentRun) -> list[SnapshotEntry]:
    """The run's committed snapshots (``train.snapshots``), validated; [] for a run without."""
    if not run.snapshots:
        return []
    try:
        return _snapshot_list().validate_python(run.snapshots)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in ("snapshots", *first["loc"]))
        raise DamagedFileError(run.folder / METADATA_FILE, f"{where}: {first['msg']}") from None


@functools.cache
def _snapshot_list() -> TypeAdapter[list[SnapshotEntry]]:
    return TypeAdapter(list[SnapshotEntry])


@dataclass(frozen=True)
class AgentRun:
    """What is committed in one agent's folder (nothing unless ``state`` is committed)."""

    agent: str
    folder: Path
    state: RunState
    latest: CheckpointEntry | None = None
    history: History | None = None
    records: list[EpisodeRecord] = field(default_factory=list)
    exactness: ExactnessVerdict | None = None  # the last verify --resume-exactness, if any
    snapshots: Any = None  # metadata.json's snapshots as read (committed_snapshots validates them)


def check_agent(config: ExperimentConfig, agent: str) -> None:
    if agent not in config.agents:
        raise UsageError(f"unknown agent {agent!r}: the experiment has {', '.join(config.agents)}")


def read_run(config: ExperimentConfig, agent: str) -> AgentRun:
    """Read an agent's committed run; damaged files raise :class:`DamagedFileError`."""
    layout = AgentLayout.of(config.run_dir, agent)
    root = layout.root
    if not _has_entries(root):
        return AgentRun(agent, root, RunState.EMPTY)
    record = read_document(layout.metadata, CommitRecord, METADATA_SCHEMA_VERSION) if layout.metadata.exists() else None
    latest = latest_entry(record, layout.metadata) if record is not None else None
    if record is None or latest is None:
        return AgentRun(agent, root, RunState.UNCOMMITTED)
    history = read_history(layout.history)
    if history.total_episodes > latest.episode:
        # A crash between history.json and metadata.json: history runs one commit ahead.
        history = AgentStore(layout).history_up_to(history, latest.episode, latest.timesteps)
    records = read_episodes(root / history.episodes_file, history.episodes_bytes, history.total_episodes)
    return AgentRun(agent, root, RunState.COMMITTED, latest, history, records, record.resume_exactness, record.snapshots)


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
    if run.state is RunState.EMPTY:
        raise UsageError(f"{agent} has no run in {run.folder}; start one with: atheria train --agent {agent}")
    if run.state is RunState.UNCOMMITTED:
        raise UsageError(
            f"{agent} has files but no committed checkpoint in {run.folder}; "
            f"start over with: atheria train --agent {agent} --fresh"
        )
    return run
