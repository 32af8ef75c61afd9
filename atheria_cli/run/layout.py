"""Every file and folder name of a run, in one place.

::

    <checkpoints_dir>/<experiment>/<AGENT>/
        episode_0001.pt ...   full training state after that episode (zero-padded to 4, wider past 9999)
        episode_0001.t123.pt  a mid-episode checkpoint (signal or save_every_steps) at timestep 123
        episodes.jsonl        one line per episode
        replay/               replay segments of off-policy agents
        snapshots/snapshot_0004.pt   the trainer's snapshot() after episode 4 (train.snapshots)
        history.json          sessions and per-episode records
        metadata.json         the commit record: what is in the folder, with sizes and sha256
        config.json           the resolved config of the run, for comparison on resume
    <checkpoints_dir>/<experiment>/<AGENT>.old-<UTC timestamp>/   a run moved aside by --fresh
    <checkpoints_dir>/<experiment>/references/<name>.json        a reference policy's eval score
    <checkpoints_dir>/<experiment>/ray-driver.log                 --backend ray: Ray's driver log lines, failures' detail

With ``seeds: [0, 1, ...]`` every seed is a replicate of the whole experiment, one level down:
``<checkpoints_dir>/<experiment>/seed_<S>/<AGENT>/`` holds the same files as above.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

HISTORY_FILE = "history.json"
METADATA_FILE = "metadata.json"
CONFIG_FILE = "config.json"
RAY_DRIVER_LOG = "ray-driver.log"  # <run_dir>/ray-driver.log, appended by every --backend ray run
REFERENCES_DIR = "references"  # <run_dir>/references/<name>.json: scores of reference policies
CHECKPOINT_PATTERN = re.compile(r"^episode_(\d{4,})(?:\.t(\d+))?\.pt$")
SNAPSHOTS_DIR = "snapshots"  # <AGENT>/snapshots/snapshot_XXXX.pt (train.snapshots)
SNAPSHOT_PATTERN = re.compile(r"^snapshot_(\d{4,})\.pt$")
SEED_DIR_PATTERN = re.compile(r"^seed_(\d+)$")


def seed_dir_name(seed: int) -> str:
    """``seed_3``: the folder of one seed's replicate of the experiment."""
    return f"seed_{seed}"


def seeds_in(run_dir: Path) -> list[int]:
    """The seeds with a folder in ``run_dir``, in order."""
    if not run_dir.is_dir():
        return []
    found = (SEED_DIR_PATTERN.match(child.name) for child in run_dir.iterdir() if child.is_dir())
    return sorted(int(match.group(1)) for match in found if match)


def checkpoint_name(episode: int, timesteps: int | None = None) -> str:
    """``episode_0007.pt`` after episode 7; numbers past 9999 simply grow wider.

    A mid-episode checkpoint (signal, ``save_every_steps``) carries the agent's timesteps:
    ``episode_0007.t1234.pt`` is 1234 steps into training, after episode 7 ended.
    """
    if episode < 0 or (episode == 0 and timesteps is None):
        raise ValueError(f"episode numbers start at 1, got {episode}")
    suffix = "" if timesteps is None else f".t{timesteps}"
    return f"episode_{episode:04d}{suffix}.pt"


def snapshot_file(episode: int) -> str:
    """``snapshots/snapshot_0004.pt``: the snapshot after episode 4, relative to the agent's
    folder (as metadata.json lists it); numbers past 9999 grow wider, as checkpoints' do."""
    if episode < 1:
        raise ValueError(f"episode numbers start at 1, got {episode}")
    return f"{SNAPSHOTS_DIR}/snapshot_{episode:04d}.pt"


def episode_of(file_name: str) -> int | None:
    match = CHECKPOINT_PATTERN.match(file_name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class AgentLayout:
    """Paths of one agent's run folder."""

    root: Path

    @classmethod
    def of(cls, run_dir: Path, agent: str) -> AgentLayout:
        return cls(Path(run_dir) / agent)

    @property
    def history(self) -> Path:
        return self.root / HISTORY_FILE

    @property
    def metadata(self) -> Path:
        return self.root / METADATA_FILE

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    def checkpoint(self, episode: int, timesteps: int | None = None) -> Path:
        return self.root / checkpoint_name(episode, timesteps)

    def aside(self, when: datetime | None = None) -> Path:
        """A free sibling name for moving this run aside: ``<AGENT>.old-20261123T050102Z``."""
        stamp = (when or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
        candidate = self.root.with_name(f"{self.root.name}.old-{stamp}")
        counter = 2
        while candidate.exists():
            candidate = self.root.with_name(f"{self.root.name}.old-{stamp}-{counter}")
            counter += 1
        return candidate
