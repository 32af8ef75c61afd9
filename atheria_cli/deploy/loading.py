"""A checkpoint outside training, through its trainer kind (named in its header): ``load_agent``
(a ready model: an SB3 model for the ``sb3`` kind) and the policy that ``atheria export`` and
``atheria eval`` use (:class:`~atheria_cli.trainers.base.Deployable`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atheria_cli.agents.checkpoint import read_checkpoint, trainer_kind
from atheria_cli.errors import UsageError
from atheria_cli.run.layout import METADATA_FILE, AgentLayout
from atheria_cli.run.store import AgentStore
from atheria_cli.trainers import TrainerKind, kind_named

if TYPE_CHECKING:
    from atheria_cli.trainers.base import Deployable, Use


@dataclass(frozen=True)
class TrainedCheckpoint:
    """A checkpoint read (and its sha256 checked), with the kind of trainer that wrote it."""

    path: Path
    payload: dict[str, Any]

    @property
    def kind(self) -> TrainerKind:
        return kind_named(trainer_kind(self.payload))

    def require(self, agent: str, use: Use) -> None:
        """Refuse a checkpoint whose trainer cannot be put to ``use`` (before anything is written);
        its kind answers from the run config the checkpoint was trained with."""
        import json

        from atheria_cli.config import ExperimentConfig

        config = ExperimentConfig.model_validate(json.loads(self.payload["run_config"]))
        if (refusal := self.kind.refusal(use, config, self.payload["agent"])) is not None:
            raise UsageError(f"{agent}: {self.path.name}: {refusal}")

    def deployable(self) -> Deployable:
        return self.kind.load_deployable(self.payload, self.path)


def read_trained_checkpoint(path: str | Path) -> TrainedCheckpoint:
    """Read ``path``; when the folder's ``metadata.json`` lists the file, its sha256 is checked too."""
    path = Path(path)
    return TrainedCheckpoint(path, read_checkpoint(path, expected_sha256=_recorded_sha256(path)))


def load_agent(path: str | Path, device: str = "cpu") -> Any:
    """Rebuild the agent's model and env from the config inside the checkpoint and load it.

    Parameters, optimizers, counters and the replay buffer (from the segments beside the
    checkpoint) are restored; the env is a fresh copy of the training env, whose VecNormalize
    statistics, if any, are loaded and frozen.
    When the folder's ``metadata.json`` lists the file, its sha256 is checked too.
    """
    trained = read_trained_checkpoint(path)
    return trained.kind.load_model(trained.payload, trained.path, device)


def load_deployable(path: str | Path, agent: str, use: Use) -> Deployable:
    """The checkpoint's policy for ``use``, refused when its trainer kind cannot be put to it."""
    trained = read_trained_checkpoint(path)
    trained.require(agent, use)
    return trained.deployable()


def _recorded_sha256(path: Path) -> str | None:
    if not (path.parent / METADATA_FILE).exists():
        return None
    metadata = AgentStore(AgentLayout(path.parent)).metadata()
    entry = next((entry for entry in metadata.checkpoints if entry.file == path.name), None)
    return entry.sha256 if entry else None
