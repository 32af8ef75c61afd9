"""Run the training core directly and read back what it wrote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from atheria_cli.agents.checkpoint import ATHERIA_SECTIONS
from atheria_cli.config import ExperimentConfig
from atheria_cli.run.formats import CheckpointEntry, EpisodeRecord, EvaluationRecord, read_metadata
from atheria_cli.run.layout import AgentLayout
from atheria_cli.run.store import AgentStore
from atheria_cli.trainers import TRAINER_KINDS
from atheria_cli.training.planning import plan_training
from atheria_cli.training.session import run_training

REPOSITORY = Path(__file__).resolve().parents[2]
# Every section of an SB3 run's checkpoint: what decides the future of its training.
SB3_SECTIONS = (*TRAINER_KINDS["sb3"].checkpoint_sections, *ATHERIA_SECTIONS)


def kill_after_commits(folder: Path, agent: str, commits: int) -> int:
    """Run ``atheria train --config exp.yaml --episodes 400`` in ``folder`` (its checkpoints in
    ``folder/checkpoints``), SIGKILL it once ``agent`` has ``commits`` checkpoints, and return
    how many episodes it had committed by then."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPOSITORY), os.environ.get("PYTHONPATH", "")])}
    # An earlier test's wandb.init left WANDB_SERVICE in this process's environment: the child
    # would join that service, and its run, killed, would stay "in use" there for the resume.
    environment.pop("WANDB_SERVICE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "atheria_cli", "train", "--config", "exp.yaml", "--episodes", "400"],
        cwd=folder,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metadata = agent_dir(folder / "checkpoints", agent) / "metadata.json"
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if metadata.exists() and len(json.loads(metadata.read_text()).get("checkpoints", [])) >= commits:
                break
            time.sleep(0.005)
        assert process.poll() is None, "training ended before it could be killed"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return len(episodes(folder / "checkpoints", agent))


class RecordingObserver:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.episodes: list[tuple[str, EpisodeRecord]] = []
        self.evaluations: list[tuple[str, EvaluationRecord]] = []
        self.resource_lines: list[str] = []
        self.outcome = None

    def agent_started(self, agent: str, first_episode: int, episodes: int, resumed_from: str | None) -> None:
        pass

    def episode_finished(self, agent: str, record: EpisodeRecord) -> None:
        self.episodes.append((agent, record))

    def evaluation_finished(self, agent: str, record: EvaluationRecord) -> None:
        self.evaluations.append((agent, record))

    def checkpoint_committed(self, agent: str, entry: CheckpointEntry) -> None:
        pass

    def resources(self, agent: str, line: str) -> None:
        self.resource_lines.append(line)

    def agent_finished(self, agent: str) -> None:
        pass

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def train(config: dict[str, Any], root: Path, episodes: int, resume: bool = False, **kwargs: Any) -> RecordingObserver:
    experiment = ExperimentConfig.model_validate({**config, "checkpoints_dir": str(root)})
    observer = RecordingObserver()
    observer.outcome = run_training(plan_training(experiment, episodes=episodes, resume=resume, **kwargs), observer)
    return observer


def agent_dir(root: Path, agent: str, experiment: str = "test") -> Path:
    return root / experiment / agent


def last_payload(root: Path, agent: str, experiment: str = "test") -> dict[str, Any]:
    folder = agent_dir(root, agent, experiment)
    entry = read_metadata(folder / "metadata.json").latest
    assert entry is not None
    return torch.load(folder / entry.file, map_location="cpu", weights_only=True)


def episodes(root: Path, agent: str, experiment: str = "test") -> list[EpisodeRecord]:
    store = AgentStore(AgentLayout(agent_dir(root, agent, experiment)))
    return store.episodes(store.history())


def rewards(root: Path, agent: str) -> list[float | None]:
    return [record.reward for record in episodes(root, agent)]


def assert_same_tree(left: Any, right: Any, where: str = "") -> None:
    """Exact equality of nested checkpoint state: tensors with torch.equal, the rest with ==."""
    if isinstance(left, torch.Tensor):
        assert isinstance(right, torch.Tensor), where
        assert left.dtype == right.dtype and left.shape == right.shape, where
        assert torch.equal(left, right), f"tensors differ at {where}"
    elif isinstance(left, dict):
        assert set(left) == set(right), f"keys differ at {where}: {set(left) ^ set(right)}"
        for key in left:
            assert_same_tree(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, (list, tuple)):
        assert len(left) == len(right), f"lengths differ at {where}"
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_same_tree(a, b, f"{where}[{index}]")
    else:
        assert left == right, f"{where}: {left!r} != {right!r}"


def wait_for_release(run_dir: Path, agent: str) -> None:
    """Return once no process holds ``agent``'s run lock under ``run_dir`` (60 s at most): Ray
    ends a job's actor some time after the driver that started it."""
    from atheria_cli.errors import RunLockedError
    from atheria_cli.run.locking import AgentLock

    deadline = time.monotonic() + 60
    while True:
        lock = AgentLock(run_dir, agent)
        try:
            lock.acquire()
        except RunLockedError:
            assert time.monotonic() < deadline, "a job's actor still holds the run"
            time.sleep(0.1)
            continue
        lock.release()
        return
