"""The checkpoint store of one agent: what is committed, and committing a new checkpoint.

Commit order (a crash at any point leaves the previous commit intact): replay segment,
checkpoint file, episode lines appended to episodes.jsonl, history.json, then metadata.json,
which is the commit record.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from atheria_cli.errors import DamagedFileError, StorageError
from atheria_cli.run.atomic import atomic_write_bytes, fsync_dir
from atheria_cli.run.formats import (
    CheckpointEntry,
    EpisodeRecord,
    History,
    Metadata,
    RunConfig,
    SegmentEntry,
    SnapshotEntry,
    encode_episodes,
    read_episodes,
    read_history,
    read_metadata,
    read_run_config,
    write_document,
)
from atheria_cli.run.layout import SNAPSHOT_PATTERN, SNAPSHOTS_DIR, AgentLayout, checkpoint_name, episode_of
from atheria_cli.run.segments import REPLAY_DIR, Segment, decode_segment

if TYPE_CHECKING:
    import numpy as np


class RunState(str, Enum):
    """What an agent's folder holds. The values are what reports show and ``--json`` prints."""

    EMPTY = "no run"  # no folder, or an empty one
    COMMITTED = "committed"  # metadata.json lists at least one checkpoint
    UNCOMMITTED = "uncommitted"  # files, but no committed checkpoint

    def __str__(self) -> str:
        return self.value


@dataclass
class AgentStore:
    layout: AgentLayout

    def state(self) -> RunState:
        root = self.layout.root
        if not root.exists() or not any(root.iterdir()):
            return RunState.EMPTY
        if self.layout.metadata.exists() and self.metadata().latest is not None:
            return RunState.COMMITTED
        return RunState.UNCOMMITTED

    def metadata(self) -> Metadata:
        return read_metadata(self.layout.metadata)

    def history(self) -> History:
        return read_history(self.layout.history)

    def episodes(self, history: History) -> list[EpisodeRecord]:
        """The committed episode records, in order."""
        return read_episodes(self.layout.root / history.episodes_file, history.episodes_bytes, history.total_episodes)

    def history_up_to(self, history: History, episode: int, timesteps: int) -> History:
        """History as of the checkpoint after ``episode`` episodes at ``timesteps``: the commit
        writes history.json just before metadata.json, so after a crash between the two it may
        run one commit ahead (and a fallback goes back further)."""
        if history.total_episodes > episode:
            kept = [record for record in self.episodes(history) if record.episode <= episode]
            history.episodes_bytes = len(encode_episodes(kept))
            history.total_episodes = episode
        # Sessions that began at or after the checkpoint only committed what is being cut back
        # (even a commit that added no episode); the others end at the checkpoint at the latest.
        history.trainings = [session for session in history.trainings if session.start_timesteps < timesteps]
        history.evaluations = [item for item in history.evaluations if item.episode <= episode and item.timesteps <= timesteps]
        for session in history.trainings:
            if session.end_episode > episode or session.end_timesteps > timesteps:
                session.end_episode = min(session.end_episode, episode)
                session.episodes_count = max(0, session.end_episode - session.start_episode + 1)
                session.end_timesteps = min(session.end_timesteps, timesteps)
        return history

    def run_config(self) -> RunConfig | None:
        return read_run_config(self.layout.config) if self.layout.config.exists() else None

    def checkpoint_problem(self, entry: CheckpointEntry) -> str | None:
        """Why a committed checkpoint cannot be resumed (its file or a replay segment it needs
        is missing or differs from its recorded size and sha256), or None."""
        segments = [segment for segment in self.metadata().replay_segments if segment.needed_by(entry)]
        items: list[CheckpointEntry | SegmentEntry] = [entry, *segments]
        for item in items:
            path = self.layout.root / item.file
            if not path.is_file():
                return f"{item.file} is missing"
            size = path.stat().st_size
            if size != item.size:
                return f"{item.file}: {size} bytes, metadata.json records {item.size}"
            if file_sha256(path) != item.sha256:
                return f"{item.file}: sha256 differs from metadata.json"
        return None

    def newest_intact_checkpoint(self) -> tuple[CheckpointEntry, list[str]]:
        """The newest committed checkpoint that can be resumed, and a notice per newer damaged one."""
        entries = sorted(self.metadata().checkpoints, key=lambda entry: (entry.timesteps, entry.episode), reverse=True)
        notices: list[str] = []
        for entry in entries:
            problem = self.checkpoint_problem(entry)
            if problem is None:
                return entry, notices
            notices.append(f"{entry.file} is unusable ({problem}); falling back to an earlier checkpoint")
        raise DamagedFileError(
            self.layout.root,
            f"{self.checkpoint_problem(entries[0])}, and no earlier checkpoint is intact; use --fresh to start over",
        )

    def write_segment(self, file: str, start: int, end: int, data: bytes) -> Segment:
        """Write a replay segment (before the checkpoint that lists it)."""
        atomic_write_bytes(self.layout.root / file, data)
        return Segment(file=file, start=start, end=end, sha256=hashlib.sha256(data).hexdigest(), size=len(data))

    def read_segment(self, segment: Segment) -> dict[str, np.ndarray]:
        path = self.layout.root / segment.file
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise DamagedFileError(path, "replay segment listed by the checkpoint is missing") from None
        except OSError as exc:
            raise DamagedFileError(path, f"cannot be read: {exc.strerror or exc}") from None
        if hashlib.sha256(data).hexdigest() != segment.sha256:
            raise DamagedFileError(path, "sha256 differs from the one recorded in the checkpoint")
        try:
            start, end, arrays = decode_segment(data)
        except (ValueError, OSError, EOFError) as exc:
            raise DamagedFileError(path, f"unreadable replay segment: {exc}") from None
        if (start, end) != (segment.start, segment.end):
            raise DamagedFileError(path, f"holds rows {start}-{end}, the checkpoint expects {segment.start}-{segment.end}")
        return arrays

    def prune_replay(self, metadata: Metadata) -> list[str]:
        """Remove replay segments that no committed checkpoint needs (orphans of a crash too):
        from metadata.json first, then from disk."""
        folder = self.layout.root / REPLAY_DIR
        if not folder.is_dir():
            return []
        kept = [
            segment for segment in metadata.replay_segments if any(segment.needed_by(entry) for entry in metadata.checkpoints)
        ]
        if len(kept) != len(metadata.replay_segments):
            metadata.replay_segments = kept
            write_document(self.layout.metadata, metadata)
        needed = {segment.file for segment in kept}
        removed = []
        for path in sorted(folder.iterdir()):
            relative = f"{REPLAY_DIR}/{path.name}"
            if relative not in needed and path.is_file():
                path.unlink()
                removed.append(relative)
        if removed:
            fsync_dir(folder)
        return removed

    def commit(
        self,
        *,
        checkpoint_bytes: bytes,
        entry_episode: int,
        timesteps: int,
        partial: bool = False,
        history: History,
        metadata: Metadata,
        run_config: RunConfig | None,
        new_episodes: list[EpisodeRecord],
        replay_rows: tuple[int, int] | None = None,
        new_segment: Segment | None = None,
    ) -> CheckpointEntry:
        """Write a checkpoint and commit it; returns the entry now in ``metadata.checkpoints``.

        ``history`` is the document as it must be after this commit, except ``episodes_bytes``,
        which still counts the episodes committed before ``new_episodes``.
        """
        path = self.layout.root / self.checkpoint_file(entry_episode, timesteps, partial)
        atomic_write_bytes(path, checkpoint_bytes)
        history.episodes_bytes = self._append_episodes(history, new_episodes)
        if run_config is not None and not self.layout.config.exists():
            write_document(self.layout.config, run_config)
        write_document(self.layout.history, history)
        entry = CheckpointEntry(
            file=path.name,
            episode=entry_episode,
            partial=partial,
            timesteps=timesteps,
            size=len(checkpoint_bytes),
            sha256=hashlib.sha256(checkpoint_bytes).hexdigest(),
            created=now_iso(),
            replay_rows=list(replay_rows) if replay_rows is not None else None,
        )
        metadata.checkpoints = [old for old in metadata.checkpoints if old.file != entry.file] + [entry]
        if new_segment is not None:
            metadata.replay_segments = [old for old in metadata.replay_segments if old.file != new_segment.file]
            metadata.replay_segments.append(SegmentEntry(**new_segment.to_dict()))
        metadata.updated = entry.created
        write_document(self.layout.metadata, metadata)  # last: this is the commit
        return entry

    @staticmethod
    def checkpoint_file(episode: int, timesteps: int, partial: bool) -> str:
        return checkpoint_name(episode, timesteps if partial else None)

    def forget(self, metadata: Metadata, dropped: list[CheckpointEntry]) -> list[str]:
        """Retention: commit metadata without ``dropped``, then delete their files (never before)."""
        if not dropped:
            return []
        names = {entry.file for entry in dropped}
        metadata.checkpoints = [entry for entry in metadata.checkpoints if entry.file not in names]
        write_document(self.layout.metadata, metadata)
        for name in sorted(names):
            (self.layout.root / name).unlink(missing_ok=True)
        fsync_dir(self.layout.root)
        return sorted(names)

    def write_snapshot(self, metadata: Metadata, file: str, data: bytes) -> None:
        """Write a snapshot file (listed in ``metadata`` by the next commit). A committed one is
        never replaced: resume drops the snapshots past its checkpoint before training again."""
        if any(entry.file == file for entry in metadata.snapshots):
            raise StorageError(f"{self.layout.root / file} is a committed snapshot; it is not overwritten")
        atomic_write_bytes(self.layout.root / file, data)

    def forget_snapshots(self, metadata: Metadata, dropped: list[SnapshotEntry]) -> list[str]:
        """Snapshot retention: commit metadata without ``dropped``, then delete their files (never before)."""
        if not dropped:
            return []
        names = {entry.file for entry in dropped}
        metadata.snapshots = [entry for entry in metadata.snapshots if entry.file not in names]
        write_document(self.layout.metadata, metadata)
        for name in sorted(names):
            (self.layout.root / name).unlink(missing_ok=True)
        fsync_dir(self.layout.root / SNAPSHOTS_DIR)
        return sorted(names)

    def remove_leftovers(self, metadata: Metadata) -> list[str]:
        """Files a killed process left behind: temporaries, and checkpoints and snapshots that never committed."""
        committed = {entry.file for entry in metadata.checkpoints}
        removed = []
        for path in sorted(self.layout.root.iterdir()):
            stale_temporary = path.name.startswith(".") and path.name.endswith(".tmp")
            uncommitted = episode_of(path.name) is not None and path.name not in committed
            if path.is_file() and (stale_temporary or uncommitted):
                path.unlink()
                removed.append(path.name)
        replay = self.layout.root / REPLAY_DIR
        if replay.is_dir():
            for path in sorted(replay.glob(".*.tmp")):
                path.unlink()
                removed.append(f"{REPLAY_DIR}/{path.name}")
        return removed + self._remove_uncommitted_snapshots(metadata)

    def _remove_uncommitted_snapshots(self, metadata: Metadata) -> list[str]:
        """Snapshots written when their episode ended whose commit never came (and temporaries)."""
        folder = self.layout.root / SNAPSHOTS_DIR
        if not folder.is_dir():
            return []
        committed = {entry.file for entry in metadata.snapshots}
        removed = []
        for path in sorted(folder.iterdir()):
            relative = f"{SNAPSHOTS_DIR}/{path.name}"
            ours = SNAPSHOT_PATTERN.match(path.name) or (path.name.startswith(".") and path.name.endswith(".tmp"))
            if path.is_file() and ours and relative not in committed:
                path.unlink()
                removed.append(relative)
        if removed:
            fsync_dir(folder)
        return removed

    def _append_episodes(self, history: History, records: list[EpisodeRecord]) -> int:
        """Append to episodes.jsonl after its committed bytes; returns the new committed length."""
        path = self.layout.root / history.episodes_file
        data = encode_episodes(records)
        created = not path.exists()
        try:
            with open(path, "ab") as handle:
                # Lines past the committed length belong to a session that died before its commit.
                handle.truncate(history.episodes_bytes)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}; the previous state is intact") from exc
        if created:
            fsync_dir(path.parent)
        return history.episodes_bytes + len(data)

    def move_aside(self) -> Path:
        """``--fresh``: rename the run folder with a timestamp; nothing is deleted."""
        target = self.layout.aside()
        os.rename(self.layout.root, target)
        fsync_dir(target.parent)
        return target


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def now_iso() -> str:
    """Local time with its UTC offset, to the second (the seed's ``session_timestamp`` style)."""
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
