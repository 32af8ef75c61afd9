"""Weights & Biases (``train.wandb``): the only module that imports wandb (the 'wandb' extra).

The W&B run id is the atheria run id (``metadata.json``), resumed with ``resume="allow"``, so a
resumed atheria run continues the same curves and ``--fresh`` starts a new one. Every point is
logged with ``step = num_timesteps``, once per step, in increasing order (W&B drops a step lower
than its current one).

Which steps the tracked run holds already is asked from W&B itself: online, a resumed run's
``run.step`` (one past the last step W&B has); offline, the run's own ``.wandb`` files under
``<WANDB_DIR>/wandb/offline-run-*-<id>/`` (read with :func:`read_offline_history`), every key's
last step. No separate "tracked up to" marker is kept: it could disagree with W&B after a crash.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from atheria_cli.config import TrackerWandb
from atheria_cli.errors import ConfigError, StorageError
from atheria_cli.tracking import Rows

ANY_KEY = "*"  # in last_steps: the last step of every key (online W&B reports only one)


class WandbTracker:
    name = "wandb"

    def __init__(self, settings: TrackerWandb, names: dict[str, str], params: dict[str, str], agent_dir: str) -> None:
        try:
            import wandb
        except ImportError:
            raise ConfigError("train.wandb needs the 'wandb' extra: pip install 'atheria-cli[wandb]'") from None
        run_id = names["run_id"]
        try:
            # WANDB_DIR read now, not cached by wandb's process-wide setup from an earlier run.
            self.run = wandb.init(
                dir=os.environ.get("WANDB_DIR") or None,
                project=settings.project or names["experiment"],
                entity=settings.entity,
                group=settings.group or names["experiment"],
                job_type=names["agent"],
                name=f"{names['agent']}-{run_id[:8]}",
                id=run_id,
                resume="allow",
                mode=settings.mode,
                reinit="create_new",
                settings=wandb.Settings(console="off", silent=True, x_disable_stats=True, save_code=False),
            )
        except (wandb.Error, OSError) as exc:
            raise StorageError(f"train.wandb: cannot start the W&B run: {exc}") from None
        self.offline = bool(self.run.settings._offline)
        self._last = self._ask_last_steps()
        if not self._last:  # a new tracked run: config and versions once
            self.run.config.update(params)

    def _ask_last_steps(self) -> dict[str, int]:
        if not self.offline:
            return {ANY_KEY: self.run.step - 1} if self.run.step > 0 else {}
        folder = Path(self.run.dir).parent.parent  # <WANDB_DIR>/wandb, holding every offline-run-*
        last: dict[str, int] = {}
        for path in sorted(folder.glob(f"offline-run-*-{self.run.id}/run-{self.run.id}.wandb")):
            for step, values in read_offline_history(path):
                last.update({key: max(step, last.get(key, -1)) for key in values})
        return last

    def last_steps(self) -> dict[str, int]:
        return dict(self._last)

    def log(self, rows: Rows) -> None:
        import wandb

        try:
            for step, values in rows.items():
                self.run.log(values, step=step)
        except (wandb.Error, OSError) as exc:
            raise StorageError(f"W&B refused the points: {exc}") from None

    def close(self) -> None:
        self.run.finish()


def read_offline_history(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(step, {key: value})`` of every history row of an offline ``.wandb`` file (user keys only)."""
    from wandb.proto import wandb_internal_pb2

    for raw in _log_records(path.read_bytes()):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            values = {"/".join(item.nested_key) or item.key: json.loads(item.value_json) for item in record.history.item}
            user = {key: value for key, value in values.items() if not key.startswith("_")}
            yield int(record.history.step.num), user


# The .wandb file is a LevelDB-style log: a 7-byte header (":W&B", 0xBEE1, version), then 32 KiB
# blocks of records, each with a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last).
_BLOCK, _HEADER = 32768, 7


def _log_records(data: bytes) -> Iterator[bytes]:
    ident, magic, _ = struct.unpack("<4sHB", data[:_HEADER])
    if ident != b":W&B" or magic != 0xBEE1:
        raise StorageError("not a W&B run file")
    position, parts = _HEADER, []
    while position + _HEADER <= len(data):
        left = _BLOCK - position % _BLOCK
        if left < _HEADER:  # block trailer padding
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + _HEADER])
        if kind == 0 and length == 0:  # zero padding up to the block's end
            position += left
            continue
        body = data[position + _HEADER : position + _HEADER + length]
        if len(body) < length:  # a record cut off by a killed writer
            return
        position += _HEADER + length
        parts.append(body)
        if kind in (1, 4):
            yield b"".join(parts)
            parts = []
