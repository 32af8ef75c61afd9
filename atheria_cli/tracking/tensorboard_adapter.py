"""TensorBoard (``train.tensorboard``): the only module that writes TensorBoard's event files
(the 'tensorboard' extra).

The events go to ``<agent dir>/tensorboard`` through torch's ``SummaryWriter``, fed only at
commits like every tracker, and flushed before the session steps on. A resumed session opens
its writer with ``purge_step`` = the resumed checkpoint's timesteps + 1: TensorBoard then hides
every event an earlier session wrote after that checkpoint (those of the checkpoints lost when
a resume falls back to an older one). The steps the folder holds already, below the purge step,
are read from the event files themselves with TensorBoard's ``EventAccumulator`` (which applies
the purges of earlier sessions), every scalar kept, so the backfill of a crash between a commit
and its log neither duplicates nor skips a point.
"""

from __future__ import annotations

import time
from pathlib import Path

from atheria_cli.errors import ConfigError, StorageError
from atheria_cli.extras import installed, needs_extra
from atheria_cli.tracking import Rows

TENSORBOARD_DIR = "tensorboard"


class TensorBoardTracker:
    name = "tensorboard"  # SB3 keeps values logged with exclude="tensorboard" away from it

    def __init__(self, agent_dir: Path, resumed_timesteps: int | None) -> None:
        if not installed("tensorboard"):  # planning checked it; an uninstall since is still one line
            raise ConfigError(needs_extra("train.tensorboard", "tensorboard"))
        from torch.utils.tensorboard import SummaryWriter

        self.folder = agent_dir / TENSORBOARD_DIR
        # TensorBoard drops events at steps >= purge_step: those after the resumed checkpoint.
        purge_step = resumed_timesteps + 1 if resumed_timesteps is not None else None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._last = read_last_steps(self.folder, below=purge_step) if purge_step is not None else {}
            _after_every_event_file(self.folder)
            self.writer = SummaryWriter(log_dir=str(self.folder), purge_step=purge_step)
        except OSError as exc:
            raise StorageError(f"train.tensorboard: {self.folder}: {exc}") from None

    def last_steps(self) -> dict[str, int]:
        return dict(self._last)

    def log(self, rows: Rows) -> None:
        try:
            for step, values in rows.items():
                for key, value in values.items():
                    self.writer.add_scalar(key, value, step)
            self.writer.flush()  # the commit's points on disk, not in the writer's queue
        except OSError as exc:
            raise StorageError(f"TensorBoard could not write {self.folder}: {exc}") from None

    def close(self) -> None:
        self.writer.close()


def _after_every_event_file(folder: Path) -> None:
    """Wait (a second at most) until a new event file's name sorts after every one in ``folder``.

    TensorBoard reads a folder's event files in name order, and a name is
    ``events.out.tfevents.<second>.<host>.<pid>...``: a session resumed within the second its
    killed predecessor opened its file would be read first when its pid is smaller, and the
    points would show out of order, the purge applied to the wrong file.
    """
    seconds = [
        int(part[3]) for part in (path.name.split(".") for path in folder.glob("events.out.tfevents.*")) if part[3].isdigit()
    ]
    while seconds and int(time.time()) <= max(seconds):
        time.sleep(0.05)


def read_last_steps(folder: Path, *, below: int) -> dict[str, int]:
    """Each scalar tag's last step under ``below`` in the event files of ``folder``, as
    TensorBoard shows them (earlier sessions' purges applied)."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={SCALARS: 0})  # 0: keep every point, not a sample
    events.Reload()
    last: dict[str, int] = {}
    for tag in events.Tags()[SCALARS]:
        steps = [event.step for event in events.Scalars(tag) if event.step < below]
        if steps:
            last[tag] = max(steps)
    return last
