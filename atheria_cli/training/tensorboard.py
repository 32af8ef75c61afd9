"""TensorBoard (``train.tensorboard``): a value sink of the trainer, continuing across resumes
without duplicated steps."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from atheria_cli.errors import ConfigError
from atheria_cli.extras import installed, needs_extra
from atheria_cli.run.formats import EpisodeRecord, EvaluationRecord

TENSORBOARD_DIR = "tensorboard"


class TensorBoardSink:
    """Writes ``<agent dir>/tensorboard`` with ``purge_step``: events a killed session wrote after
    the checkpoint being resumed are dropped instead of shown twice."""

    name = "tensorboard"  # SB3 keeps values logged with exclude="tensorboard" away from it

    def __init__(self, agent_dir: Path, purge_step: int | None) -> None:
        if not installed("tensorboard"):  # planning checked it; an uninstall since is still one line
            raise ConfigError(needs_extra("train.tensorboard", "tensorboard"))
        from torch.utils.tensorboard import SummaryWriter

        folder = agent_dir / TENSORBOARD_DIR
        folder.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step)

    def write(self, step: int, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            if isinstance(value, str):
                self.writer.add_text(key, value, step)
            elif _is_scalar(value):
                self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _is_scalar(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (int, float, np.number, np.bool_))  # what SB3's writer plots (np.ScalarType)


def episode_values(record: EpisodeRecord) -> dict[str, float]:
    """One point per episode at the agent's timestep (with the training values since the last)."""
    values: dict[str, float] = {}
    if record.reward is not None:
        values["episode/reward"] = record.reward
    values["episode/length"] = record.length
    values.update({f"episode/{name}": value for name, value in record.metrics.items() if value is not None})
    return values


def evaluation_values(record: EvaluationRecord) -> dict[str, float]:
    """``eval/<name>_mean`` and ``_std`` at the evaluated checkpoint's timestep."""
    values: dict[str, float] = {}
    for name, stat in {"reward": record.reward, "length": record.length, **record.metrics}.items():
        if stat.mean is not None:
            values[f"eval/{name}_mean"] = stat.mean
        if stat.std is not None:
            values[f"eval/{name}_std"] = stat.std
    return values
