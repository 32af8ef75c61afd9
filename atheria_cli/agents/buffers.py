"""Capture and restore SB3's on-policy rollout buffer (only the rows collected so far).

Replay buffers are persisted incrementally instead: see :mod:`atheria_cli.agents.replay`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.buffers import RolloutBuffer

from atheria_cli.agents.tensors import to_arrays, to_tensors

ROLLOUT_ARRAYS = ("observations", "actions", "rewards", "returns", "episode_starts", "values", "log_probs", "advantages")


def capture_rollout(buffer: RolloutBuffer, names: tuple[str, ...] = ROLLOUT_ARRAYS) -> dict[str, Any]:
    """The rows collected so far of ``names`` (the algorithm's buffer may hold more arrays:
    sb3-contrib's recurrent buffer the LSTM states, the maskable one the action masks)."""
    rows = buffer.pos
    arrays = {name: _head(getattr(buffer, name), rows) for name in names}
    return {"kind": "rollout", "pos": int(buffer.pos), "full": bool(buffer.full), "rows": rows, "arrays": to_tensors(arrays)}


def restore_rollout(buffer: RolloutBuffer, state: dict[str, Any]) -> None:
    if state["kind"] != "rollout":
        raise ValueError(f"checkpoint holds a {state['kind']} buffer, the model a rollout buffer")
    rows = int(state["rows"])
    if rows > buffer.buffer_size:
        raise ValueError(f"checkpoint rollout has {rows} rows, the model's buffer only {buffer.buffer_size}")
    for name, values in to_arrays(state["arrays"]).items():
        _write_head(getattr(buffer, name), values, rows)
    buffer.pos = int(state["pos"])
    buffer.full = bool(state["full"])
    buffer.generator_ready = False


def _head(array: Any, rows: int) -> Any:
    if isinstance(array, dict):
        return {key: value[:rows] for key, value in array.items()}
    return np.asarray(array)[:rows]


def _write_head(target: Any, values: Any, rows: int) -> None:
    if isinstance(target, dict):
        for key, value in values.items():
            target[key][:rows] = value
    else:
        target[:rows] = values
