"""Incremental persistence of SB3's replay buffers (the ring layout is in :mod:`atheria_cli.run.segments`).

SB3's ``save_replay_buffer`` writes the whole buffer every time (~40 MB for SAC's default
1M-row buffer on Pendulum), for a few hundred new rows. The journal writes only those rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer

from atheria_cli.agents.tensors import to_arrays, to_tensors
from atheria_cli.run.segments import Segment, encode_segment, live_rows, segment_name, still_needed

REPLAY_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
SegmentReader = Callable[[Segment], dict[str, np.ndarray]]


class ReplayJournal:
    """Counts rows added to a replay buffer and turns the unsaved ones into segments."""

    def __init__(self, buffer: ReplayBuffer) -> None:
        self.buffer = buffer
        self.rows_total = 0  # rows ever added (one per vectorized step)
        self.rows_saved = 0  # rows_total at the last checkpoint
        self.segments: list[Segment] = []  # what the last checkpoint needs

    @property
    def capacity(self) -> int:
        return self.buffer.buffer_size

    def row_added(self) -> None:
        self.rows_total += 1

    def pending(self, checkpoint_file: str) -> tuple[str, int, int, bytes] | None:
        """The segment of rows added since the last checkpoint: (file, start, end, npz bytes)."""
        start = max(self.rows_saved, live_rows(self.rows_total, self.capacity)[0])
        end = self.rows_total
        if end <= start:
            return None
        positions = np.arange(start, end) % self.capacity
        arrays = {name: array[positions] for name, array in _arrays(self.buffer).items()}
        return segment_name(checkpoint_file), start, end, encode_segment(start, end, arrays)

    def import_rows(self, source: ReplayBuffer) -> None:
        """Fill the buffer with ``source``'s rows (same capacity and layout), as unsaved rows that
        the next checkpoint writes as its segment (``train --from-sb3-replay``)."""
        for name, target in _arrays(self.buffer).items():
            target[...] = _arrays(source)[name]
        self.buffer.pos, self.buffer.full = int(source.pos), bool(source.full)
        # Rows ever added, as the ring's live rows see them: a full ring holds capacity rows ending at pos.
        self.rows_total = self.capacity + self.buffer.pos if self.buffer.full else self.buffer.pos
        self.rows_saved = 0
        self.segments = []

    def saved(self, segment: Segment | None) -> None:
        """Record a committed checkpoint that wrote ``segment`` (None: no new rows)."""
        known = self.segments + ([segment] if segment is not None else [])
        self.segments = still_needed(known, self.rows_total, self.capacity)
        self.rows_saved = self.rows_total

    def state_dict(self) -> dict[str, Any]:
        tail = self.rows_total % self.capacity
        return {
            "kind": "replay",
            "rows_total": self.rows_total,
            "capacity": self.capacity,
            "pos": int(self.buffer.pos),
            "full": bool(self.buffer.full),
            # With optimize_memory_usage the next observation of the newest row lives in the
            # row after it, which no segment holds yet.
            "tail_observation": to_tensors(_row(self.buffer.observations, tail)),
            "segments": [segment.to_dict() for segment in self.segments],
        }

    def load_state_dict(self, state: dict[str, Any], read: SegmentReader) -> None:
        """Rebuild the buffer from the checkpoint's segments: same rows, position and flags."""
        if state["capacity"] != self.capacity:
            raise ValueError(f"checkpoint replay capacity {state['capacity']} differs from the model's {self.capacity}")
        self.rows_total = self.rows_saved = int(state["rows_total"])
        self.segments = [Segment.from_dict(item) for item in state["segments"]]
        first, _ = live_rows(self.rows_total, self.capacity)
        targets = _arrays(self.buffer)
        for segment in self.segments:
            arrays = read(segment)
            keep = slice(max(first, segment.start) - segment.start, segment.end - segment.start)
            positions = np.arange(max(first, segment.start), segment.end) % self.capacity
            for name, target in targets.items():
                target[positions] = arrays[name][keep]
        _set_row(self.buffer.observations, self.rows_total % self.capacity, to_arrays(state["tail_observation"]))
        self.buffer.pos = int(state["pos"])
        self.buffer.full = bool(state["full"])


def _arrays(buffer: ReplayBuffer) -> dict[str, np.ndarray]:
    """The buffer's arrays by segment name; dict observations as 'observations.<key>'."""
    arrays: dict[str, np.ndarray] = {}
    for name in REPLAY_ARRAYS:
        value = getattr(buffer, name, None)
        if value is None:
            continue  # next_observations under optimize_memory_usage
        if isinstance(buffer, DictReplayBuffer) and isinstance(value, dict):
            arrays.update({f"{name}.{key}": array for key, array in value.items()})
        else:
            arrays[name] = value
    return arrays


def _row(observations: Any, index: int) -> Any:
    if isinstance(observations, dict):
        return {key: np.array(array[index]) for key, array in observations.items()}
    return np.array(observations[index])


def _set_row(observations: Any, index: int, value: Any) -> None:
    if isinstance(observations, dict):
        for key, array in observations.items():
            array[index] = value[key]
    else:
        observations[index] = value
