"""Capture and restore the process-wide random generators SB3 draws from.

SB3 uses Python's ``random``, NumPy's legacy global generator (replay sampling, DQN
exploration, rollout minibatch order) and torch's generators (action sampling, weight init).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture_global_rng() -> dict[str, Any]:
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys).copy()),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        "cuda": None,
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_global_rng(state: dict[str, Any]) -> str | None:
    """Set every global generator to ``state``. A generator that cannot be set is never skipped
    in silence: when the checkpoint's CUDA generators cannot be set here (no CUDA, or another
    number of visible devices: ``get_rng_state_all`` saves every visible device, and a run
    moved from a 4-GPU machine to a one-GPU Ray worker must still go on), they are returned as a
    note the session shows as a warning: the run goes on, and it is not the one that would
    have gone on where it was. A state that fails to set raises, like any restore failure."""
    random.setstate(_as_tuples(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy(),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    cuda_states = state.get("cuda")
    if not cuda_states:
        return None
    if not torch.cuda.is_available():
        return f"the checkpoint holds the generators of {len(cuda_states)} CUDA device(s) and this process has no CUDA"
    if len(cuda_states) != torch.cuda.device_count():
        return (
            f"the checkpoint holds the generators of {len(cuda_states)} CUDA device(s), this process sees "
            f"{torch.cuda.device_count()} (make as many visible, CUDA_VISIBLE_DEVICES, to continue exactly)"
        )
    torch.cuda.set_rng_state_all(cuda_states)
    return None


def _as_tuples(value: Any) -> Any:
    """``random.setstate`` wants tuples all the way down (a round trip may give lists)."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(item) for item in value)
    return value
