"""File names of a run and crash-safe writes (torch-free)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from atheria_cli.errors import StorageError
from atheria_cli.run import atomic
from atheria_cli.run.atomic import atomic_write_bytes, atomic_write_json
from atheria_cli.run.layout import AgentLayout, checkpoint_name, episode_of


def test_checkpoint_names_are_padded_to_four_and_grow() -> None:
    assert checkpoint_name(1) == "episode_0001.pt"
    assert checkpoint_name(9999) == "episode_9999.pt"
    assert checkpoint_name(10000) == "episode_10000.pt"
    assert episode_of("episode_0042.pt") == 42 and episode_of("episode_12345.pt") == 12345
    assert episode_of("history.json") is None and episode_of("episode_1.pt") is None
    with pytest.raises(ValueError):
        checkpoint_name(0)


def test_agent_layout_paths(tmp_path: Path) -> None:
    layout = AgentLayout.of(tmp_path / "exp", "PPO")
    assert layout.history == tmp_path / "exp/PPO/history.json"
    assert layout.metadata.name == "metadata.json" and layout.config.name == "config.json"
    assert layout.checkpoint(3).name == "episode_0003.pt"


def test_aside_name_never_collides(tmp_path: Path) -> None:
    layout = AgentLayout.of(tmp_path, "PPO")
    when = datetime(2026, 11, 23, 5, 1, 2, tzinfo=timezone.utc)
    first = layout.aside(when)
    assert first.name == "PPO.old-20261123T050102Z"
    first.mkdir()
    assert layout.aside(when).name == "PPO.old-20261123T050102Z-2"


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert os.listdir(target.parent) == ["f.json"]


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    with pytest.raises(StorageError, match="No space left on device; the previous state is intact"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_json_refuses_nan(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "f.json", {"x": float("nan")})
    assert os.listdir(tmp_path) == []


def test_written_files_get_the_usual_mode(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"data")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
