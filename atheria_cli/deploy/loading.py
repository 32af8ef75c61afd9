"""``load_agent``: a ready model from an ``episode_XXXX.pt`` checkpoint (an SB3 model for the
``sb3`` trainer kind)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from atheria_cli.agents.checkpoint import read_checkpoint, trainer_kind
from atheria_cli.run.layout import METADATA_FILE, AgentLayout
from atheria_cli.run.store import AgentStore
from atheria_cli.trainers import kind_named


def load_agent(path: str | Path, device: str = "cpu") -> Any:
    """Rebuild the agent's model and env from the config inside the checkpoint and load it.

    Parameters, optimizers, counters and the replay buffer (from the segments beside the
    checkpoint) are restored; the env is a fresh copy of the training env, whose VecNormalize
    statistics, if any, are loaded and frozen.
    When the folder's ``metadata.json`` lists the file, its sha256 is checked too.
    """
    path = Path(path)
    payload = read_checkpoint(path, expected_sha256=_recorded_sha256(path))
    return kind_named(trainer_kind(payload)).load_model(payload, path, device)


def _recorded_sha256(path: Path) -> str | None:
    if not (path.parent / METADATA_FILE).exists():
        return None
    metadata = AgentStore(AgentLayout(path.parent)).metadata()
    entry = next((entry for entry in metadata.checkpoints if entry.file == path.name), None)
    return entry.sha256 if entry else None
