"""Replay-buffer segments: the transitions added between two checkpoints, one file each.

A replay buffer is a ring of ``capacity`` rows. Counting every row ever added (``rows_total``),
row ``g`` sits at position ``g % capacity`` and the buffer holds rows
``[max(0, rows_total - capacity), rows_total)``. Each checkpoint writes one segment with the rows
added since the previous checkpoint, ``replay/episode_XXXX.npz`` (NumPy arrays, no pickle), and
lists every segment it needs to rebuild its buffer. A segment is needed by a checkpoint while any
of its rows is still in that checkpoint's buffer. Torch-free.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy loads only when a segment is read or written: JSON-only commands stay fast
    import numpy as np


REPLAY_DIR = "replay"
SEGMENT_FORMAT_VERSION = 1
SEGMENT_META_KEY = "__segment__"  # the [version, start, end] array inside each .npz


@dataclass(frozen=True)
class Segment:
    """One segment file: rows ``[start, end)`` of the run's replay stream."""

    file: str
    start: int
    end: int
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        return cls(**{key: data[key] for key in ("file", "start", "end", "sha256", "size")})


def segment_name(checkpoint_file: str) -> str:
    """``replay/episode_0005.npz``: the segment written with ``episode_0005.pt``."""
    return f"{REPLAY_DIR}/{checkpoint_file.removesuffix('.pt')}.npz"


def live_rows(rows_total: int, capacity: int) -> tuple[int, int]:
    """The row range a buffer of ``capacity`` holds after ``rows_total`` additions."""
    return max(0, rows_total - capacity), rows_total


def still_needed(segments: Iterable[Segment], rows_total: int, capacity: int) -> list[Segment]:
    """The segments with at least one row in the buffer after ``rows_total`` additions."""
    first, last = live_rows(rows_total, capacity)
    return [segment for segment in segments if segment.end > first and segment.start < last and segment.end > segment.start]


def encode_segment(start: int, end: int, arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` holding the arrays (names may contain '.' for dict observations) and the range."""
    import numpy as np

    buffer = io.BytesIO()
    meta = np.array([SEGMENT_FORMAT_VERSION, start, end], dtype=np.int64)
    # numpy's stub types **kwds as if they could be its allow_pickle flag.
    np.savez(buffer, **{SEGMENT_META_KEY: meta, **arrays})  # type: ignore[arg-type]
    return buffer.getvalue()


def decode_segment(data: bytes) -> tuple[int, int, dict[str, np.ndarray]]:
    """Read a segment without unpickling anything; returns (start, end, arrays)."""
    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = arrays.pop(SEGMENT_META_KEY, None)
    if meta is None or meta.shape != (3,):
        raise ValueError("not an atheria replay segment")
    version, start, end = (int(value) for value in meta)
    if version > SEGMENT_FORMAT_VERSION:
        raise ValueError(f"segment format {version} is newer than this atheria supports ({SEGMENT_FORMAT_VERSION})")
    lengths = {len(array) for array in arrays.values()}
    if lengths - {end - start}:
        raise ValueError(f"segment arrays have {sorted(lengths)} rows, expected {end - start}")
    return start, end, arrays
