"""NumPy <-> torch conversion of nested containers, for weights-only checkpoints."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def to_tensors(value: Any) -> Any:
    """Every ndarray inside dicts, lists and tuples becomes a (CPU) tensor of the same dtype."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value).copy())
    if isinstance(value, dict):
        return {key: to_tensors(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_tensors(item) for item in value)
    return value


def to_arrays(value: Any) -> Any:
    """The inverse of :func:`to_tensors`."""
    if isinstance(value, torch.Tensor):
        return value.cpu().numpy().copy()
    if isinstance(value, dict):
        return {key: to_arrays(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_arrays(item) for item in value)
    return value
