"""``atheria train --from-checkpoint FILE.pth --agent NAME`` for a trainer agent, where FILE is
another program's checkpoint rather than one of an atheria run: a new run of NAME starts from
what the file holds.

The seeds' trainers save ``{"model_state_dict", "optimizer_state_dict", "scheduler_state_dict",
"episode", "loss", "metrics", ...}``. The file is read with ``torch.load(weights_only=True)``
only: a file that needs pickle (a NumPy scalar, an object of the program's own) is refused, since
unpickling runs code from the file. The user's class loads what fits
(``load_foreign_checkpoint``, which :class:`~atheria_cli.trainers.stateful.StatefulTrainer`
has: ``<name>_state_dict`` into the attribute ``<name>``); the rest of its state (a simulation
field, a generator) keeps its fresh value, so the run's first session is recorded not exact,
with ``adopted_from`` naming the file, as an adoption of an SB3 zip is. Its episodes go on from
the file's ``episode``: ``train_episode`` gets ``episode + 1`` first, and the run's timesteps
count on from there.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import ConfigDriftError, ConfigError, RunExistsError, TrainerFailedError, UsageError
from atheria_cli.run.formats import AdoptOrigin
from atheria_cli.run.layout import AgentLayout
from atheria_cli.run.store import AgentStore, RunState, file_sha256
from atheria_cli.trainers.custom import build_trainer, check_plan
from atheria_cli.trainers.stateful import FOREIGN_SUFFIX

_UNSUPPORTED = re.compile(r"Unsupported global: GLOBAL (\S+)")
_UNPICKLER = "WeightsUnpickler error:"


@dataclass(frozen=True)
class ForeignCheckpoint:
    """Another program's checkpoint a new run of a trainer agent starts from."""

    label: str  # as the user gave it
    sha256: str
    checkpoint: dict[str, Any]  # what torch.load(weights_only=True) returned
    episode: int  # the file's episode count (0 when it names none)

    @property
    def origin(self) -> AdoptOrigin:
        return AdoptOrigin(file=self.label, sha256=self.sha256, num_timesteps=self.episode)


def plan_foreign_checkpoint(
    config: ExperimentConfig, path: Path, agent: str, *, fresh: bool, notices: list[str]
) -> ForeignCheckpoint:
    """Check that ``path`` loads weights-only and into a throwaway trainer of ``agent`` (what
    passes here also loads in the session); writes nothing."""
    checkpoint = read_foreign_checkpoint(path)
    episode = _episode(path, checkpoint)
    check_plan(config, agent, None, "cpu")  # the class and its kwargs, before the class runs
    try:
        trainer = build_trainer(config, agent, "cpu")
    except Exception as exc:  # the user's __init__, which may fail in any way
        raise TrainerFailedError(f"agents.{agent}: building {config.agents[agent].trainer} failed: {_first_line(exc)}") from None
    loaded = load_into(config, agent, trainer.user, checkpoint, str(path))
    target = AgentStore(AgentLayout.of(config.run_dir, agent))
    if not fresh and target.state() is not RunState.EMPTY:
        raise RunExistsError(
            f"{agent} already has a run in {target.layout.root}; --from-checkpoint starts a new run: use --fresh to move it aside"
        )
    notices.append(
        f"{agent}: starting from {path} at episode {episode} ({', '.join(loaded)} loaded); not exact: the rest of "
        "the trainer's state (its generators, its own tensors) starts fresh"
    )
    return ForeignCheckpoint(label=str(path), sha256=file_sha256(path), checkpoint=checkpoint, episode=episode)


def read_foreign_checkpoint(path: Path) -> dict[str, Any]:
    """The file's dict of state dicts, read weights-only; a file that needs pickle is refused."""
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's weights-only unpickler names the class or function a pickled object needs; any
        # other complaint (an unknown opcode) is a file that is no pickle at all.
        found = _UNSUPPORTED.search(str(exc))
        if found is None:
            raise UsageError(f"--from-checkpoint: {path} is not a readable torch checkpoint ({_unpickler_words(exc)})") from None
        raise UsageError(
            f"--from-checkpoint: {path} needs pickle to load (it holds a {found.group(1)}), and unpickling runs code from "
            "the file: atheria loads checkpoints weights-only; load it where it was written and save its state dicts "
            "with tensors and plain values only"
        ) from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, OSError, ... for a damaged or foreign file
        raise UsageError(f"--from-checkpoint: {path} is not a readable torch checkpoint ({_first_line(exc)})") from None
    if not isinstance(value, dict) or not any(isinstance(key, str) and key.endswith(FOREIGN_SUFFIX) for key in value):
        raise UsageError(f"--from-checkpoint: {path} holds no state dicts (a dict with model_state_dict, ...)")
    return value


def load_into(config: ExperimentConfig, agent: str, user: Any, checkpoint: dict[str, Any], label: str) -> list[str]:
    """Load ``checkpoint`` into the user's trainer through its ``load_foreign_checkpoint``
    (an optional method of the contract); the attributes it loaded, at least one."""
    trainer = config.agents[agent].trainer
    load = getattr(user, "load_foreign_checkpoint", None)  # optional, as export_module and snapshot are
    if not callable(load):
        raise ConfigError(
            f"agents.{agent}: {trainer} cannot start from another program's checkpoint: it has no "
            "load_foreign_checkpoint() (atheria_cli.trainers.stateful.StatefulTrainer has one)"
        )
    try:
        loaded = list(load(checkpoint))
    except Exception as exc:  # the user's method: whatever it raises, the file does not fit
        raise ConfigDriftError(
            f"--from-checkpoint: {label} does not fit agents.{agent} ({trainer}): {_first_line(exc)}"
        ) from None
    if not loaded:
        names = ", ".join(sorted(key for key in checkpoint if key.endswith(FOREIGN_SUFFIX)))
        raise UsageError(f"--from-checkpoint: none of {label}'s state dicts ({names}) is one of {trainer}'s")
    return loaded


def _episode(path: Path, checkpoint: dict[str, Any]) -> int:
    value = checkpoint.get("episode", 0)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"--from-checkpoint: {path}: its episode is not a count of episodes (got {value!r})")
    return value


def _unpickler_words(exc: BaseException) -> str:
    """The weights-only unpickler's own reason (``Unsupported operand 110``), not torch's advice around it."""
    _, _, reason = str(exc).partition(_UNPICKLER)
    lines = [line.strip() for line in reason.splitlines() if line.strip()]
    return lines[0] if lines else _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
