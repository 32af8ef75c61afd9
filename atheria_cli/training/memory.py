"""Will the replay buffers of the jobs that run at once fit in memory?

SB3 allocates an off-policy agent's whole replay buffer when the model is built, so N parallel
jobs hold N buffers from their first step. The plan estimates them before anything starts and
refuses (exit 2) when they exceed the memory available, rather than let the machine swap or the
kernel kill a job hours in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import UsageError

if TYPE_CHECKING:
    from gymnasium import spaces

FLAGS_BYTES = 3 * 4  # reward, done and timeout: float32 each per transition


@dataclass(frozen=True)
class BufferEstimate:
    agent: str
    buffer_size: int
    bytes: int


def space_bytes(space: spaces.Space) -> int:
    """Bytes of one value of ``space`` as SB3's buffers store it (float64 is kept as float32)."""
    from gymnasium import spaces  # not imported by a run of trainers, which has no spaces

    if isinstance(space, spaces.Dict):
        return sum(space_bytes(child) for child in space.spaces.values())
    if isinstance(space, spaces.Discrete):
        return np.dtype(space.dtype).itemsize
    shape = space.shape or (1,)
    dtype = np.float32 if space.dtype == np.float64 else space.dtype
    return int(np.prod(shape)) * np.dtype(dtype).itemsize


def transition_bytes(observation: spaces.Space, action: spaces.Space, optimize_memory_usage: bool) -> int:
    """One transition: the observation, the next one (shared with the following row when
    ``optimize_memory_usage``), the action and three float32 flags."""
    copies = 1 if optimize_memory_usage else 2
    return copies * space_bytes(observation) + space_bytes(action) + FLAGS_BYTES


def buffer_estimate(
    config: ExperimentConfig, agent: str, observation: spaces.Space, action: spaces.Space, default_size: int | None
) -> BufferEstimate | None:
    """The agent's replay buffer; None for an on-policy agent (``default_size`` None: the
    algorithm has no replay buffer, and its rollout buffer is small)."""
    if default_size is None:
        return None
    from atheria_cli.agents.registry import checked_hyperparams

    # Checked first: the estimate may only use values SB3 would accept (a list is no size).
    hyperparams = checked_hyperparams(config, agent, action)
    # SB3 keeps at least one row whatever the size asked for.
    size = max(int(hyperparams.get("buffer_size", default_size)), 1)
    optimize = bool(hyperparams.get("optimize_memory_usage", False))
    return BufferEstimate(agent, size, size * transition_bytes(observation, action, optimize))


def check_fits(estimates: Sequence[BufferEstimate], jobs: int, available: int) -> None:
    """Refuse when the ``jobs`` largest buffers (the worst set that can run at once) exceed ``available`` bytes."""
    largest = sorted(estimates, key=lambda estimate: estimate.bytes, reverse=True)[:jobs]
    needed = sum(estimate.bytes for estimate in largest)
    if needed <= available:
        return
    biggest = largest[0]
    where = f"agents.{biggest.agent}.hyperparams.buffer_size ({biggest.buffer_size:,}, {_gb(biggest.bytes)})"
    fewer = f", or --jobs (now {jobs})" if jobs > 1 else ""
    raise UsageError(
        f"the replay buffers of {len(largest)} job(s) at once need about {_gb(needed)} "
        f"but {_gb(available)} of memory is available; "
        f"lower {where}{fewer}, or set optimize_memory_usage: true"
    )


def available_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def _gb(count: int) -> str:
    return f"{count / 1e9:.1f} GB"
