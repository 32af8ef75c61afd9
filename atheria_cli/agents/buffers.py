"""Capture and restore SB3's replay and rollout buffers (only the rows in use)."""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import BaseBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from atheria_cli.agents.tensors import to_arrays, to_tensors

REPLAY_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
ROLLOUT_ARRAYS = ("observations", "actions", "rewards", "returns", "episode_starts", "values", "log_probs", "advantages")


def buffer_of(model: BaseAlgorithm) -> tuple[str, BaseBuffer] | None:
    if isinstance(model, OffPolicyAlgorithm):
        return "replay", model.replay_buffer
    if isinstance(model, OnPolicyAlgorithm):
        return "rollout", model.rollout_buffer
    return None


def capture_buffer(model: BaseAlgorithm) -> dict[str, Any] | None:
    found = buffer_of(model)
    if found is None:
        return None
    kind, buffer = found
    # Rows past ``pos`` are unused, except the next-observation row that
    # ``optimize_memory_usage`` keeps at ``pos``.
    rows = buffer.buffer_size if buffer.full else min(buffer.pos + 1, buffer.buffer_size)
    names = REPLAY_ARRAYS if kind == "replay" else ROLLOUT_ARRAYS
    arrays = {name: _head(getattr(buffer, name), rows) for name in names if getattr(buffer, name, None) is not None}
    return {"kind": kind, "pos": int(buffer.pos), "full": bool(buffer.full), "rows": rows, "arrays": to_tensors(arrays)}


def restore_buffer(model: BaseAlgorithm, state: dict[str, Any] | None) -> None:
    found = buffer_of(model)
    if found is None or state is None:
        return
    kind, buffer = found
    if kind != state["kind"]:
        raise ValueError(f"checkpoint holds a {state['kind']} buffer, the model a {kind} buffer")
    rows = int(state["rows"])
    if rows > buffer.buffer_size:
        raise ValueError(f"checkpoint buffer has {rows} rows, the model's buffer only {buffer.buffer_size}")
    for name, values in to_arrays(state["arrays"]).items():
        _write_head(getattr(buffer, name), values, rows)
    buffer.pos = int(state["pos"])
    buffer.full = bool(state["full"])
    if kind == "rollout":
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
