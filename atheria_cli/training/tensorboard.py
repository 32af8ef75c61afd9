"""TensorBoard through SB3's logger, continuing across resumes without duplicated steps."""

from __future__ import annotations

from pathlib import Path

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat

from atheria_cli.errors import ConfigError
from atheria_cli.extras import installed, needs_extra
from atheria_cli.run.formats import EpisodeRecord, EvaluationRecord

TENSORBOARD_DIR = "tensorboard"


class _ResumableTensorBoard(TensorBoardOutputFormat):
    """SB3's TensorBoard writer with ``purge_step``: events a killed session wrote after the
    checkpoint being resumed are dropped instead of shown twice."""

    def __init__(self, folder: Path, purge_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step)
        self._is_closed = False


def attach(model: BaseAlgorithm, agent_dir: Path, resumed_at: int | None) -> None:
    """Log the model's training values to ``<agent dir>/tensorboard``."""
    if not installed("tensorboard"):  # planning checked it; an uninstall since is still one line
        raise ConfigError(needs_extra("train.tensorboard", "tensorboard"))
    folder = agent_dir / TENSORBOARD_DIR
    folder.mkdir(parents=True, exist_ok=True)
    model.set_logger(Logger(folder=str(folder), output_formats=[_ResumableTensorBoard(folder, resumed_at)]))


def log_episode(model: BaseAlgorithm, record: EpisodeRecord) -> None:
    """One point per episode at the agent's timestep, with the SB3 training values since the last."""
    logger = model.logger
    if record.reward is not None:
        logger.record("episode/reward", record.reward)
    logger.record("episode/length", record.length)
    for name, value in record.metrics.items():
        if value is not None:
            logger.record(f"episode/{name}", value)
    logger.dump(step=record.timesteps)


def log_evaluation(model: BaseAlgorithm, record: EvaluationRecord) -> None:
    """``eval/<name>_mean`` and ``_std`` at the evaluated checkpoint's timestep."""
    logger = model.logger
    for name, stat in {"reward": record.reward, "length": record.length, **record.metrics}.items():
        if stat.mean is not None:
            logger.record(f"eval/{name}_mean", stat.mean)
        if stat.std is not None:
            logger.record(f"eval/{name}_std", stat.std)
    logger.dump(step=record.timesteps)


def detach(model: BaseAlgorithm) -> None:
    model.logger.close()
