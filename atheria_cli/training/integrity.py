"""``atheria verify`` and ``atheria prune``: check a run's files; apply retention to a run."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atheria_cli.agents.checkpoint import read_checkpoint
from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import AtheriaError
from atheria_cli.reports.evaluations import evaluation_scores
from atheria_cli.run.formats import CheckpointEntry, Metadata, SnapshotEntry
from atheria_cli.run.layout import SNAPSHOTS_DIR, AgentLayout, episode_of
from atheria_cli.run.locking import AgentLock
from atheria_cli.run.retention import kept_checkpoints, ranked_by
from atheria_cli.run.segments import REPLAY_DIR, Segment
from atheria_cli.run.snapshots import header_disagreement, kept_snapshots, read_snapshot
from atheria_cli.run.store import AgentStore, RunState


@dataclass
class AgentReport:
    agent: str
    checkpoints: int = 0
    snapshots: int = 0  # committed snapshots (train.snapshots)
    problems: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # uncommitted files (harmless, removed at the next commit)
    no_run: bool = False


def verify_agent(config: ExperimentConfig, agent: str) -> AgentReport:
    """Every JSON file readable and consistent, every checkpoint, replay segment and snapshot intact and loadable."""
    store = AgentStore(AgentLayout.of(config.run_dir, agent))
    report = AgentReport(agent)
    if store.state() is RunState.EMPTY:
        report.no_run = True
        return report
    try:
        metadata = store.metadata()
        history = store.history()
        store.episodes(history)
    except AtheriaError as exc:
        report.problems.append(str(exc))
        return report
    report.checkpoints = len(metadata.checkpoints)
    if metadata.latest is not None and history.total_episodes < metadata.latest.episode:
        report.problems.append(
            f"history.json records {history.total_episodes} episodes, the last checkpoint {metadata.latest.episode}"
        )
    segments: dict[str, Segment] = {}
    for entry in metadata.checkpoints:
        problem = _verify_checkpoint(store, entry, segments)
        if problem:
            report.problems.append(f"{entry.file}: {problem}")
    for name, segment in sorted(segments.items()):
        path = store.layout.root / name
        if not path.is_file():
            report.problems.append(f"{name}: replay segment is missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != segment.sha256:
            report.problems.append(f"{name}: sha256 differs from the one its checkpoints record")
    report.snapshots = len(metadata.snapshots)
    for snapshot in metadata.snapshots:
        problem = _verify_snapshot(store, snapshot, metadata.agent)
        if problem:
            report.problems.append(f"{snapshot.file}: {problem}")
    committed = {entry.file for entry in metadata.checkpoints} | set(segments) | {item.file for item in metadata.snapshots}
    report.leftovers = sorted(name for name in _files(store) if name not in committed and _ours(name))
    return report


def _ours(name: str) -> bool:
    """A checkpoint, replay segment or snapshot by its name (relative to the agent's folder)."""
    return episode_of(name.rsplit("/", 1)[-1]) is not None or name.startswith((f"{REPLAY_DIR}/", f"{SNAPSHOTS_DIR}/"))


def _committed_payload(path: Path, size: int, sha256: str, read: Callable[..., dict[str, Any]]) -> dict[str, Any] | str:
    """A committed file (checkpoint, snapshot) read by ``read`` if it is present, of its recorded
    size and sha256 and loads; else what is wrong with it."""
    if not path.is_file():
        return "file is missing"
    if path.stat().st_size != size:
        return f"{path.stat().st_size} bytes, metadata.json records {size}"
    try:
        return read(path, expected_sha256=sha256)
    except AtheriaError as exc:
        return str(exc).removeprefix(f"{path}: ")


def _verify_snapshot(store: AgentStore, entry: SnapshotEntry, agent: str) -> str | None:
    """Present, of its recorded size and sha256, loadable weights-only, its header as metadata.json says."""
    payload = _committed_payload(store.layout.root / entry.file, entry.size, entry.sha256, read_snapshot)
    return payload if isinstance(payload, str) else header_disagreement(payload, entry, agent)


def _verify_checkpoint(store: AgentStore, entry: CheckpointEntry, segments: dict[str, Segment]) -> str | None:
    payload = _committed_payload(store.layout.root / entry.file, entry.size, entry.sha256, read_checkpoint)
    if isinstance(payload, str):
        return payload
    if payload["episode"] != entry.episode or payload["num_timesteps"] != entry.timesteps:
        return "episode or timesteps differ from metadata.json"
    buffer = payload.get("buffer") or {}
    for item in buffer.get("segments", []):
        segments[item["file"]] = Segment.from_dict(item)
    return None


def _files(store: AgentStore) -> list[str]:
    root = store.layout.root
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


@dataclass(frozen=True)
class Pruned:
    """What :func:`prune_agent` removed: checkpoint files (``train.keep``) and snapshot files
    (``train.snapshots.keep``), each by its name in the run."""

    checkpoints: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)


def prune_agent(config: ExperimentConfig, agent: str) -> Pruned:
    """Apply ``train.keep`` and ``train.snapshots.keep`` to an existing run, as a session applies
    them after each commit: a policy set or tightened after training takes effect without training."""
    snapshot_keep = config.train.snapshots.keep if config.train.snapshots is not None else None
    store = AgentStore(AgentLayout.of(config.run_dir, agent))
    if (config.train.keep is None and snapshot_keep is None) or store.state() is not RunState.COMMITTED:
        return Pruned()
    lock = AgentLock(config.run_dir, agent)  # never prune under a running `atheria train`
    lock.acquire()
    try:
        metadata = store.metadata()
        removed = _prune_checkpoints(config, store, metadata) if config.train.keep is not None else []
        dropped = [entry for entry in metadata.snapshots if entry not in kept_snapshots(metadata.snapshots, snapshot_keep)]
        return Pruned(removed, store.forget_snapshots(metadata, dropped))
    finally:
        lock.release()


def _prune_checkpoints(config: ExperimentConfig, store: AgentStore, metadata: Metadata) -> list[str]:
    assert config.train.keep is not None
    history = store.history()
    kept = kept_checkpoints(
        metadata.checkpoints,
        config.train.keep,
        store.episodes(history),
        ranked_by(config),
        evaluated=lambda name: evaluation_scores(history, name, metadata.latest),
    )
    removed = store.forget(metadata, [entry for entry in metadata.checkpoints if entry not in kept])
    store.prune_replay(metadata)
    return removed
