"""What ``snapshots/snapshot_XXXX.pt`` holds (``train.snapshots``), in one place: header, body,
how it is written and read, and which snapshots the policy keeps.

A torch zip file holding one dict, loadable with ``torch.load(..., weights_only=True)``::

    header:  format: "atheria-snapshot", schema_version: 1, trainer: the trainer kind,
             atheria_version, created, agent, episode, num_timesteps,
             tensors: the names in ``snapshot``, in the trainer's order
    body:    snapshot: {name: tensor or plain value}, the trainer's ``snapshot()`` on the CPU

The header check is torch-free; torch is imported only to write or load a file. The session
takes a snapshot when a due episode ends (the only moment the trainer holds that episode's
state) and writes it then; the next checkpoint commit lists it in metadata.json, which is what
makes it exist (docs/file-layout.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from atheria_cli.agents.checkpoint import load_committed, plain
from atheria_cli.errors import DamagedFileError
from atheria_cli.run.formats import SnapshotEntry, check_schema_version

SNAPSHOT_FORMAT = "atheria-snapshot"
SNAPSHOT_SCHEMA_VERSION = 1
SNAPSHOT_FIELDS = ("trainer", "agent", "episode", "num_timesteps", "tensors", "snapshot")


def snapshot_due(every: int, episode: int) -> bool:
    """Whether ``train.snapshots.every`` asks for a snapshot after ``episode`` (by its number:
    a resumed run takes the ones an uninterrupted run takes)."""
    return episode % every == 0


def snapshot_payload(
    tensors: Mapping[str, Any], *, trainer: str, agent: str, episode: int, timesteps: int, created: str
) -> dict[str, Any]:
    """The whole file: header, then the trainer's tensors as the body.

    :raises TypeError: ``tensors`` is not a non-empty dict with string keys
    """
    if not isinstance(tensors, Mapping) or not tensors:
        raise TypeError(f"snapshot() must return a non-empty dict of tensors, got {_described(tensors)}")
    names = list(tensors)
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f"snapshot() must return a dict with string keys, got keys {names!r}")
    from atheria_cli import __version__

    return {
        "format": SNAPSHOT_FORMAT,
        "schema_version": SNAPSHOT_SCHEMA_VERSION,
        "trainer": trainer,
        "atheria_version": __version__,
        "created": created,
        "agent": agent,
        "episode": episode,
        "num_timesteps": timesteps,
        "tensors": names,
        "snapshot": dict(tensors),
    }


def _described(value: Any) -> str:
    return "an empty dict" if isinstance(value, Mapping) else type(value).__name__


def encode_snapshot(payload: dict[str, Any]) -> bytes:
    """The file's bytes; a value ``weights_only`` would refuse raises :class:`TypeError` here."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(plain(payload), buffer)
    return buffer.getvalue()


def snapshot_entry(payload: dict[str, Any], file: str, data: bytes) -> SnapshotEntry:
    """The metadata.json entry of a snapshot written as ``data``."""
    return SnapshotEntry(
        file=file,
        episode=payload["episode"],
        timesteps=payload["num_timesteps"],
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        created=payload["created"],
        tensors=payload["tensors"],
    )


def check_snapshot_header(payload: object, path: object) -> None:
    """Refuse anything that is not an atheria snapshot this version can read (torch-free)."""
    if not isinstance(payload, dict) or payload.get("format") != SNAPSHOT_FORMAT:
        raise DamagedFileError(path, "not an atheria snapshot")
    check_schema_version(payload.get("schema_version"), SNAPSHOT_SCHEMA_VERSION, path)
    missing = [key for key in SNAPSHOT_FIELDS if key not in payload]
    if missing:
        raise DamagedFileError(path, f"snapshot lacks {', '.join(missing)}")
    if not isinstance(payload["snapshot"], dict) or list(payload["snapshot"]) != payload["tensors"]:
        raise DamagedFileError(path, "the snapshot's tensors differ from the names its header lists")


def read_snapshot(path: Path, expected_sha256: str | None = None) -> dict[str, Any]:
    """Load a snapshot with ``weights_only=True``; with ``expected_sha256``, a file that changed
    since its commit is refused."""
    payload = load_committed(path, expected_sha256, "snapshot")
    check_snapshot_header(payload, path)
    return dict(payload)


def header_disagreement(payload: dict[str, Any], entry: SnapshotEntry, agent: str) -> str | None:
    """How a loaded snapshot's header differs from its metadata.json entry, or None."""
    found = (payload["agent"], payload["episode"], payload["num_timesteps"], payload["tensors"])
    if found != (agent, entry.episode, entry.timesteps, entry.tensors):
        return (
            f"header says agent {payload['agent']}, episode {payload['episode']}, timesteps {payload['num_timesteps']}, "
            f"tensors {payload['tensors']}; metadata.json says agent {agent}, episode {entry.episode}, "
            f"timesteps {entry.timesteps}, tensors {entry.tensors}"
        )
    return None


def kept_snapshots(committed: list[SnapshotEntry], keep: int | None) -> list[SnapshotEntry]:
    """The snapshots ``train.snapshots.keep`` keeps: the newest ``keep`` by episode (every one when None)."""
    ordered = sorted(committed, key=lambda entry: entry.episode)
    return ordered if keep is None else ordered[-keep:]
