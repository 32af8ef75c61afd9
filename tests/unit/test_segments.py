"""Replay segment files and the ring arithmetic (torch-free)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from atheria_cli.run.segments import Segment, decode_segment, encode_segment, live_rows, segment_name, still_needed


def _segment(start: int, end: int) -> Segment:
    return Segment(file=f"replay/{start}.npz", start=start, end=end, sha256="0" * 64, size=1)


def test_round_trip_keeps_dtypes_and_dotted_names() -> None:
    arrays = {
        "observations.image": np.arange(12, dtype=np.uint8).reshape(3, 1, 4),
        "actions": np.ones((3, 1, 2), dtype=np.float32),
        "dones": np.array([[0.0], [0.0], [1.0]], dtype=np.float32),
    }
    start, end, decoded = decode_segment(encode_segment(7, 10, arrays))
    assert (start, end) == (7, 10)
    assert set(decoded) == set(arrays)
    for name, array in arrays.items():
        assert decoded[name].dtype == array.dtype and np.array_equal(decoded[name], array)


def test_refuses_pickled_objects_and_foreign_files() -> None:
    buffer = io.BytesIO()
    np.savez(buffer, __segment__=np.array([1, 0, 1]), evil=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        decode_segment(buffer.getvalue())
    buffer = io.BytesIO()
    np.savez(buffer, rewards=np.zeros(3))
    with pytest.raises(ValueError, match="not an atheria replay segment"):
        decode_segment(buffer.getvalue())
    with pytest.raises(ValueError, match="expected 5"):
        decode_segment(encode_segment(0, 5, {"rewards": np.zeros(3)}))
    buffer = io.BytesIO()
    np.savez(buffer, __segment__=np.array([99, 0, 1]), rewards=np.zeros(1))
    with pytest.raises(ValueError, match="newer"):
        decode_segment(buffer.getvalue())


def test_ring_arithmetic() -> None:
    assert live_rows(50, 100) == (0, 50)
    assert live_rows(250, 100) == (150, 250)
    segments = [_segment(0, 100), _segment(100, 150), _segment(150, 260), _segment(260, 260)]
    assert still_needed(segments, 150, 1000) == segments[:2]
    assert still_needed(segments, 260, 100) == [segments[2]]
    assert still_needed(segments, 260, 120) == [segments[1], segments[2]]


def test_segment_names_follow_checkpoints() -> None:
    assert segment_name("episode_0005.pt") == "replay/episode_0005.npz"
    assert segment_name("episode_0005.t1234.pt") == "replay/episode_0005.t1234.npz"
