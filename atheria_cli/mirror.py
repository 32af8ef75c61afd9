"""Copy committed runs to a second location through fsspec, and restore from it.

Colab and Kaggle machines lose their disk when they are cut off; Drive or a bucket survives.
``train.mirror: {to: URL}`` copies each agent folder's committed files there, the manifest
(``metadata.json``) last, so a mirror is always a consistent commit, maybe an older one.
``--resume`` restores from the mirror first when the local run is missing or behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import fsspec

from atheria_cli.atomic import atomic_write_bytes
from atheria_cli.errors import DamagedFileError
from atheria_cli.formats import Metadata
from atheria_cli.layout import CONFIG_FILE, HISTORY_FILE, METADATA_FILE

JSON_FILES = (CONFIG_FILE, HISTORY_FILE)


class Mirror:
    def __init__(self, url: str, experiment: str, agent: str) -> None:
        self.fs, root = fsspec.core.url_to_fs(url)
        self.root = f"{root.rstrip('/')}/{experiment}/{agent}"
        self.url = f"{url.rstrip('/')}/{experiment}/{agent}"

    def push(self, folder: Path, metadata: Metadata) -> list[str]:
        """Copy what ``metadata`` commits; unchanged files are skipped. Returns what was copied."""
        copied = []
        for name in _committed_files(metadata):
            local = folder / name
            if not self._same(name, local.stat().st_size):
                self._put(local.read_bytes(), name)
                copied.append(name)
        episodes_file = json.loads((folder / HISTORY_FILE).read_text(encoding="utf-8")).get("episodes_file", "episodes.jsonl")
        for name in (*JSON_FILES, episodes_file):
            if (folder / name).exists():
                self._put((folder / name).read_bytes(), name)
                copied.append(name)
        self._put((folder / METADATA_FILE).read_bytes(), METADATA_FILE)  # last: the mirror's commit
        copied.append(METADATA_FILE)
        return copied

    def last_episode(self) -> tuple[int, int] | None:
        """(episode, timesteps) of the mirror's newest commit, or None when it has none."""
        path = f"{self.root}/{METADATA_FILE}"
        if not self.fs.exists(path):
            return None
        try:
            metadata = Metadata.model_validate_json(self.fs.cat_file(path))
        except ValueError as exc:
            raise DamagedFileError(self.url + "/" + METADATA_FILE, f"unreadable mirror manifest: {exc}") from None
        latest = metadata.latest
        return None if latest is None else (latest.episode, latest.timesteps)

    def pull(self, folder: Path) -> Metadata:
        """Copy the mirror's commit into ``folder``, manifest last."""
        metadata = Metadata.model_validate_json(self.fs.cat_file(f"{self.root}/{METADATA_FILE}"))
        history = json.loads(self.fs.cat_file(f"{self.root}/{HISTORY_FILE}"))
        names = [*_committed_files(metadata), *JSON_FILES, history.get("episodes_file", "episodes.jsonl")]
        for name in names:
            if self.fs.exists(f"{self.root}/{name}"):
                atomic_write_bytes(folder / name, self.fs.cat_file(f"{self.root}/{name}"))
        atomic_write_bytes(folder / METADATA_FILE, self.fs.cat_file(f"{self.root}/{METADATA_FILE}"))
        return metadata

    def _same(self, name: str, size: int) -> bool:
        path = f"{self.root}/{name}"
        return self.fs.exists(path) and self.fs.size(path) == size

    def _put(self, data: bytes, name: str) -> None:
        path = f"{self.root}/{name}"
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        # Write under a temporary name and move: object stores make the move a copy, but a
        # reader never sees a half-written file under the real name.
        temporary = f"{path}.partial"
        self.fs.pipe_file(temporary, data)
        self.fs.mv(temporary, path)


def _committed_files(metadata: Metadata) -> list[str]:
    return [entry.file for entry in metadata.checkpoints] + [segment.file for segment in metadata.replay_segments]
