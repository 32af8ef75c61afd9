"""``atheria verify --resume-exactness``: is a resume of this agent's training exact?

In a scratch folder, with the experiment's config for the agent (trackers, mirror, retention and
time limits left out: the check must not publish or delete anything), it trains from scratch:

- ``one``: T episodes in one process, uninterrupted;
- ``split``: N episodes (in this process), then ``atheria train --resume`` for T−N in a fresh
  process: only what the checkpoint holds can carry the training across;
- ``again`` (``repeat``): T uninterrupted episodes once more, to tell a resume that lost state from
  training that is not deterministic even without a resume.

Then it compares every episode record (without its wall-clock ``seconds``) and every section of
the last checkpoint (the trainer kind's ``checkpoint_sections`` and ``rng``; tensors bitwise,
SB3 Monitor's wall time ``t`` excluded), and names the first episode and the first key that
differ. The real run is never read nor written here; recording the verdict in its
``metadata.json`` is :func:`record_verdict`'s job. Silent: results are returned, never printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import atheria_cli
from atheria_cli.agents.checkpoint import ATHERIA_SECTIONS
from atheria_cli.config import ExperimentConfig, config_to_dict, training_settings_sha256
from atheria_cli.errors import AtheriaError, RunLockedError, UsageError
from atheria_cli.run.formats import CheckpointEntry, EpisodeRecord, EvaluationRecord, ExactnessVerdict, write_document
from atheria_cli.run.layout import AgentLayout
from atheria_cli.run.locking import AgentLock
from atheria_cli.run.store import AgentStore, RunState, now_iso
from atheria_cli.trainers import TORCH, kind_of

SCRATCH_EXPERIMENT = "exactness"
# The knobs that make PyTorch deterministic, named when two uninterrupted runs differ.
DETERMINISM_KNOBS = (
    "torch.use_deterministic_algorithms(True), torch.backends.cudnn.deterministic = True and "
    "torch.backends.cudnn.benchmark = False, CUBLAS_WORKSPACE_CONFIG=:4096:8 (on CUDA)"
)
EXACT, NOT_EXACT, LOST_STATE, NOT_DETERMINISTIC = "exact", "not exact", "resume lost state", "not deterministic"


@dataclass(frozen=True)
class ExactnessReport:
    """The verdict on one agent: ``differences`` (first episode record, first state key) are
    between the uninterrupted and the resumed run, or between the two uninterrupted runs when
    training is not deterministic; ``notes`` are what the first part warned of, and hints."""

    agent: str
    episodes: int
    split: int
    repeat: bool
    verdict: str  # EXACT, NOT_EXACT, LOST_STATE or NOT_DETERMINISTIC
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.verdict == EXACT


def check_split(episodes: int, split: int | None) -> int:
    """The split N for T ``episodes``: T // 2 by default; 1 ≤ N < T, else a usage error."""
    if episodes < 2:
        raise UsageError(f"--episodes must be at least 2 to split a run (got {episodes})")
    chosen = episodes // 2 if split is None else split
    if not 1 <= chosen < episodes:
        raise UsageError(f"--split must be between 1 and {episodes - 1} for --episodes {episodes} (got {chosen})")
    return chosen


def check_resume_exactness(config: ExperimentConfig, agent: str, *, episodes: int, split: int, repeat: bool) -> ExactnessReport:
    """Train ``agent`` from scratch in a temporary folder, uninterrupted and split at ``split``,
    and compare the two runs (bad input raises before anything is trained)."""
    with tempfile.TemporaryDirectory(prefix="atheria-exactness-") as scratch:
        runs = _ScratchRuns(Path(scratch), scratch_config(config, agent), agent)
        warnings = runs.first_part(split)  # in this process; planning refuses bad input here
        runs.train("one", episodes)
        runs.train("split", episodes - split, resume=True)
        differences = compare_runs(runs.folder("one"), runs.folder("split"), kind_of(config, agent).name)
        is_torch = kind_of(config, agent).name == TORCH
        if repeat:
            runs.train("again", episodes)
            unsteady = compare_runs(runs.folder("one"), runs.folder("again"), kind_of(config, agent).name)
            if unsteady:
                notes = [f"two uninterrupted runs differ: try {DETERMINISM_KNOBS}"]
                return ExactnessReport(agent, episodes, split, repeat, NOT_DETERMINISTIC, unsteady, notes)
        if not differences:
            notes = ["deterministic: two uninterrupted runs agree"] if repeat else []
            return ExactnessReport(agent, episodes, split, repeat, EXACT, [], notes)
        notes = [*warnings, *_hints(is_torch, repeat)]
        return ExactnessReport(agent, episodes, split, repeat, LOST_STATE if repeat else NOT_EXACT, differences, notes)


def _hints(is_torch: bool, repeat: bool) -> list[str]:
    hints = []
    if is_torch:
        hints.append("something that decides the future was not restored: is it in state_dict?")
    if repeat:
        hints.append("two uninterrupted runs agree: the resume lost state")
    else:
        hints.append("--repeat tells a resume that lost state from training that is not deterministic")
    return hints


def scratch_config(config: ExperimentConfig, agent: str) -> dict[str, Any]:
    """The experiment's config for ``agent`` alone, with nothing that reaches outside the scratch
    folder or ends a session early: no trackers, mirror, retention, time or timestep limits."""
    document = config_to_dict(config)
    document.update(experiment=SCRATCH_EXPERIMENT, seeds=None, agents={agent: document["agents"][agent]}, tune=None)
    document["train"].update(
        keep=None,
        mirror=None,
        monitor_every=None,
        tensorboard=False,
        wandb=None,
        mlflow=None,
        max_hours=None,
        until_timesteps=None,
    )
    document["train"].update(jobs=1, backend="local")
    return document


class _ScratchRuns:
    """The scratch folder's runs, one subfolder each, all of the same config."""

    def __init__(self, root: Path, document: dict[str, Any], agent: str) -> None:
        self.root, self.document, self.agent = root, document, agent
        self.config_path = root / "exp.yaml"
        self.config_path.write_text(_yaml(document), encoding="utf-8")

    def folder(self, run: str) -> Path:
        return self.root / run / SCRATCH_EXPERIMENT / self.agent

    def first_part(self, episodes: int) -> list[str]:
        """Train ``split``'s first ``episodes`` here; returns the warnings of the session."""
        from atheria_cli.training.planning import plan_training
        from atheria_cli.training.session import run_training

        config = ExperimentConfig.model_validate({**self.document, "checkpoints_dir": str(self.root / "split")})
        observer = _Warnings()
        outcome = run_training(plan_training(config, episodes=episodes), observer)
        if outcome.exit_code != 0 or outcome.stopped_by is not None:
            raise AtheriaError(
                f"the first {episodes} episode(s) of the check did not complete ({outcome.stopped_by or 'failed'})"
            )
        return [message.removeprefix(f"{self.agent}: ") for message in observer.warnings]

    def train(self, run: str, episodes: int, *, resume: bool = False) -> None:
        """``atheria train`` in a fresh process, into the scratch folder ``run``."""
        command = [sys.executable, "-m", "atheria_cli", "train", "--config", str(self.config_path)]
        command += ["--checkpoints-dir", str(self.root / run), "--episodes", str(episodes), *(["--resume"] if resume else [])]
        package_parent = str(Path(atheria_cli.__file__).resolve().parents[1])
        path = os.pathsep.join(part for part in (package_parent, os.environ.get("PYTHONPATH", "")) if part)
        done = subprocess.run(command, env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
            what = "the resume" if resume else "an uninterrupted run"
            raise AtheriaError(f"{what} of the check failed: {lines[-1].removeprefix('atheria: error: ')}")


def _yaml(document: dict[str, Any]) -> str:
    import yaml

    return str(yaml.safe_dump(document, sort_keys=False))


class _Warnings:
    """A training observer that keeps the warnings and nothing else."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def agent_started(self, agent: str, first_episode: int, episodes: int | None, resumed_from: str | None) -> None:
        pass

    def episode_finished(self, agent: str, record: EpisodeRecord) -> None:
        pass

    def evaluation_finished(self, agent: str, record: EvaluationRecord) -> None:
        pass

    def checkpoint_committed(self, agent: str, entry: CheckpointEntry) -> None:
        pass

    def resources(self, agent: str, line: str) -> None:
        pass

    def agent_finished(self, agent: str) -> None:
        pass

    def warn(self, message: str) -> None:
        self.warnings.append(message)


# --- comparing two runs ---------------------------------------------------------------------------


def compare_runs(left: Path, right: Path, kind: str) -> list[str]:
    """The first episode record and the first checkpoint key where two runs of one agent differ
    (empty: identical); ``kind`` is the trainer kind, whose sections are compared."""
    differences = []
    record = first_record_difference(_records(left), _records(right))
    if record is not None:
        differences.append(record)
    state = first_checkpoint_difference(_last_payload(left), _last_payload(right), kind)
    if state is not None:
        differences.append(state)
    return differences


def _records(folder: Path) -> list[EpisodeRecord]:
    store = AgentStore(AgentLayout(folder))
    return store.episodes(store.history())


def _last_payload(folder: Path) -> dict[str, Any]:
    from atheria_cli.agents.checkpoint import read_checkpoint

    latest = AgentStore(AgentLayout(folder)).metadata().latest
    if latest is None:
        raise AtheriaError(f"{folder}: the check's run committed no checkpoint")
    return read_checkpoint(folder / latest.file, latest.sha256)


def first_record_difference(left: list[EpisodeRecord], right: list[EpisodeRecord]) -> str | None:
    """``episode 3: loss 0.25 != 0.26``: the first field (wall-clock ``seconds`` aside) of the
    first episode whose records differ, or None."""
    for mine, theirs in zip(left, right, strict=False):
        a, b = _flat_record(mine), _flat_record(theirs)
        for name in [*a, *(name for name in b if name not in a)]:
            if a.get(name) != b.get(name):
                return f"episode {mine.episode}: {name} {a.get(name)!r} != {b.get(name)!r}"
    if len(left) != len(right):
        return f"episode {min(len(left), len(right)) + 1}: in one run only ({len(left)} != {len(right)} episodes)"
    return None


def _flat_record(record: EpisodeRecord) -> dict[str, Any]:
    fields = record.model_dump(exclude={"seconds", "metrics"})  # the metrics first: a trainer's reward is its main one
    return {**{name: value for name, value in record.metrics.items() if name not in fields}, **fields}


def first_checkpoint_difference(left: dict[str, Any], right: dict[str, Any], kind: str) -> str | None:
    """The first key of the last checkpoints' training state that differs, with both values."""
    from atheria_cli.trainers import kind_named

    for name in ("episode", "num_timesteps"):
        if left.get(name) != right.get(name):
            return f"{name} {left.get(name)!r} != {right.get(name)!r}"
    for section in (*kind_named(kind).checkpoint_sections, *ATHERIA_SECTIONS):
        mine, theirs = left.get(section), right.get(section)
        if section == "model" and kind == "sb3":
            mine, theirs = _without_wall_time(mine), _without_wall_time(theirs)
        found = first_difference(mine, theirs, section)
        if found is not None:
            return found
    return None


def _without_wall_time(model: Any) -> Any:
    """SB3's model section without the Monitor's per-episode wall time ``t``."""
    if not isinstance(model, Mapping) or "ep_info_buffer" not in model:
        return model
    infos = [{key: value for key, value in info.items() if key != "t"} for info in model["ep_info_buffer"]]
    return {**model, "ep_info_buffer": infos}


def first_difference(left: Any, right: Any, where: str = "") -> str | None:
    """``where.key left != right`` at the first place two nested states differ (tensors bitwise,
    NaN equal to NaN), or None."""
    import torch

    if isinstance(left, torch.Tensor) or isinstance(right, torch.Tensor):
        return _tensor_difference(left, right, where)
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        for key in [*left, *(key for key in right if key not in left)]:
            inner = f"{where}.{key}" if where else str(key)
            if key not in left or key not in right:
                return f"{inner}: only in the {'uninterrupted' if key in left else 'other'} run"
            if (found := first_difference(left[key], right[key], inner)) is not None:
                return found
        return None
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        if len(left) != len(right):
            return f"{where}: length {len(left)} != {len(right)}"
        for index, (mine, theirs) in enumerate(zip(left, right, strict=True)):
            if (found := first_difference(mine, theirs, f"{where}[{index}]")) is not None:
                return found
        return None
    return None if _same_value(left, right) else f"{where} {left!r} != {right!r}"


def _same_value(left: Any, right: Any) -> bool:
    """Plain values alike, NumPy arrays elementwise (a generator state holds one)."""
    import numpy as np

    if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
        return (
            isinstance(left, np.ndarray)
            and isinstance(right, np.ndarray)
            and bool(np.array_equal(left, right, equal_nan=left.dtype.kind in "fc"))
        )
    try:
        return type(left) is type(right) and bool(left == right)
    except (TypeError, ValueError, RuntimeError):  # an == that answers no single truth value
        return False


def _tensor_difference(left: Any, right: Any, where: str) -> str | None:
    import numpy as np
    import torch

    if not (isinstance(left, torch.Tensor) and isinstance(right, torch.Tensor)):
        return f"{where}: a tensor in one run only"
    if left.dtype != right.dtype or left.shape != right.shape:
        return f"{where}: {left.dtype}{list(left.shape)} != {right.dtype}{list(right.shape)}"
    a, b = left.flatten(), right.flatten()
    if a.is_floating_point() or a.is_complex():
        differ = (a != b) & ~(torch.isnan(a) & torch.isnan(b))
    else:
        differ = a != b
    count = int(differ.sum())
    if count == 0:
        return None
    index = int(torch.nonzero(differ)[0])
    at = ", ".join(str(int(i)) for i in np.unravel_index(index, tuple(left.shape))) if left.dim() else ""
    return f"{where}[{at}] {a[index].item()!r} != {b[index].item()!r} ({count} of {a.numel()} values differ)"


# --- recording the verdict ------------------------------------------------------------------------


def record_verdict(config: ExperimentConfig, report: ExactnessReport) -> str | None:
    """Write ``report``'s verdict into the agent's committed run's ``metadata.json``, under the
    agent's lock and atomically; returns why it was not recorded (no run, a training holds
    the lock), or None."""
    store = AgentStore(AgentLayout(config.run_dir / report.agent))
    if store.state() is not RunState.COMMITTED:
        return "no committed run to record it in"
    lock = AgentLock(config.run_dir, report.agent)
    try:
        lock.acquire()
    except RunLockedError:
        return "the run is being trained (locked); not recorded"
    try:
        metadata = store.metadata()
        metadata.resume_exactness = ExactnessVerdict(
            verdict=report.verdict,
            exact=report.exact,
            episodes=report.episodes,
            split=report.split,
            repeat=report.repeat,
            difference=report.differences[0] if report.differences else None,
            checked=now_iso(),
            atheria_version=atheria_cli.__version__,
            settings_sha256=training_settings_sha256(config, report.agent),
        )
        write_document(store.layout.metadata, metadata)
    finally:
        lock.release()
    return None
