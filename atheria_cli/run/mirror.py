"""Copy committed runs to a second location through fsspec, and restore from it.

Colab and Kaggle machines lose their disk when they are cut off; Drive or a bucket survives.
``train.mirror: {to: URL}`` copies each agent folder's committed files there, in an order that
keeps the mirror a consistent commit at every moment (maybe an older one): new checkpoint,
replay and snapshot files, then ``episodes.jsonl`` (it only grows), ``config.json``, ``history.json``, and the
manifest ``metadata.json`` last. Only then are the checkpoints, replay segments and snapshots that
retention removed locally deleted from the mirror too, so the mirror never names a file it no longer has;
a push cut off before the deletions leaves leftovers that the next push removes. ``--resume``
restores from the mirror first when the local run is missing or behind. A mirror belongs to one
run: its manifest's ``run_id`` says which, and the files of another run are never deleted.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import fsspec

from atheria_cli.errors import ConfigError, DamagedFileError, StorageError
from atheria_cli.run.atomic import atomic_write_bytes
from atheria_cli.run.formats import Metadata
from atheria_cli.run.layout import CHECKPOINT_PATTERN, CONFIG_FILE, HISTORY_FILE, METADATA_FILE, SNAPSHOT_PATTERN, SNAPSHOTS_DIR
from atheria_cli.run.segments import REPLAY_DIR

EPISODES_FILE = "episodes.jsonl"


class Mirror:
    def __init__(self, url: str, experiment: str, agent: str) -> None:
        try:
            self.fs, root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError, OSError) as exc:
            raise ConfigError(f"train.mirror.to: cannot use {url!r}: {exc}") from None
        self.root = f"{root.rstrip('/')}/{experiment}/{agent}"
        self.url = f"{url.rstrip('/')}/{experiment}/{agent}"

    def manifest(self) -> Metadata | None:
        """The mirror's commit record, or None when it holds no run."""
        path = f"{self.root}/{METADATA_FILE}"
        try:
            if not self.fs.exists(path):
                return None
            data = self.fs.cat_file(path)
        except OSError as exc:
            raise StorageError(f"cannot read the mirror {self.url}: {exc}") from exc
        try:
            return Metadata.model_validate_json(data)
        except ValueError as exc:
            raise DamagedFileError(f"{self.url}/{METADATA_FILE}", f"unreadable mirror manifest: {exc}") from None

    def push(self, folder: Path, metadata: Metadata) -> list[str]:
        """Copy what ``metadata`` commits, then delete what it no longer names.

        Files the mirror holds with the same sha256 are skipped. Returns the names copied.
        """
        try:
            remote = self.manifest()
        except DamagedFileError:
            remote = None  # a damaged manifest is replaced by this commit
        known = set() if remote is None else set(committed_files(remote))
        copied = []
        for file, sha256 in committed_files(metadata):
            if (file, sha256) not in known:
                self._put((folder / file).read_bytes(), file)
                copied.append(file)
        for name in (EPISODES_FILE, CONFIG_FILE, HISTORY_FILE, METADATA_FILE):  # manifest last: the commit
            if (folder / name).exists():
                self._put((folder / name).read_bytes(), name)
                copied.append(name)
        if remote is not None and remote.run_id == metadata.run_id:  # never another run's files
            self.remove_stale(metadata)
        return copied

    def remove_stale(self, metadata: Metadata) -> list[str]:
        """Delete this run's checkpoints and replay segments that ``metadata`` no longer names.

        Called after ``metadata`` is the mirror's manifest: nothing deleted here is still committed.
        """
        named = {file for file, _ in committed_files(metadata)}
        stale = [name for name in self._run_files() if name not in named]
        for name in stale:
            try:
                self.fs.rm_file(f"{self.root}/{name}")
            except FileNotFoundError:
                pass  # another push removed it first
            except OSError as exc:
                raise StorageError(f"cannot delete {self.url}/{name}: {exc}") from exc
        return stale

    def _run_files(self) -> list[str]:
        """Checkpoint files, replay segments and snapshots on the mirror, relative to the agent's folder."""
        names = [name for name in self._names(self.root) if CHECKPOINT_PATTERN.match(name)]
        segments = self._names(f"{self.root}/{REPLAY_DIR}")
        names += [f"{REPLAY_DIR}/{name}" for name in segments if CHECKPOINT_PATTERN.match(f"{name.removesuffix('.npz')}.pt")]
        names += [
            f"{SNAPSHOTS_DIR}/{name}" for name in self._names(f"{self.root}/{SNAPSHOTS_DIR}") if SNAPSHOT_PATTERN.match(name)
        ]
        return sorted(names)

    def _names(self, folder: str) -> list[str]:
        try:
            if not self.fs.isdir(folder):
                return []
            return [path.rstrip("/").rsplit("/", 1)[-1] for path in self.fs.ls(folder, detail=False)]
        except OSError as exc:
            raise StorageError(f"cannot list the mirror {self.url}: {exc}") from exc

    def pull(self, folder: Path) -> Metadata:
        """Copy the mirror's commit into ``folder`` in commit order, manifest last."""
        metadata = self.manifest()
        if metadata is None:
            raise StorageError(f"the mirror {self.url} holds no run")
        names = [file for file, _ in committed_files(metadata)]
        for name in (*names, EPISODES_FILE, CONFIG_FILE, HISTORY_FILE, METADATA_FILE):
            atomic_write_bytes(folder / name, self._get(name))
        return metadata

    def move_aside(self) -> str | None:
        """``--fresh``: the mirrored run goes to ``<AGENT>.old-<UTC time>`` on the mirror too."""
        try:
            if not self.fs.exists(self.root):
                return None
            target = f"{self.root}.old-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
            self.fs.mv(self.root, target, recursive=True)
        except OSError as exc:
            raise StorageError(f"cannot move the mirrored run {self.url} aside: {exc}") from exc
        return target

    def _get(self, name: str) -> bytes:
        try:
            data: bytes = self.fs.cat_file(f"{self.root}/{name}")
            return data
        except OSError as exc:
            raise StorageError(f"cannot read {self.url}/{name}: {exc}") from exc

    def _put(self, data: bytes, name: str) -> None:
        path = f"{self.root}/{name}"
        try:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            # Write under a temporary name and move: object stores make the move a copy, but a
            # reader never sees a half-written file under the real name.
            temporary = f"{path}.partial"
            self.fs.pipe_file(temporary, data)
            self.fs.mv(temporary, path)
        except OSError as exc:
            raise StorageError(f"cannot write {self.url}/{name}: {exc}") from exc


def committed_files(metadata: Metadata) -> list[tuple[str, str]]:
    """(file, sha256) of every checkpoint, replay segment and snapshot a manifest commits."""
    return (
        [(entry.file, entry.sha256) for entry in metadata.checkpoints]
        + [(segment.file, segment.sha256) for segment in metadata.replay_segments]
        + [(snapshot.file, snapshot.sha256) for snapshot in metadata.snapshots]
    )
