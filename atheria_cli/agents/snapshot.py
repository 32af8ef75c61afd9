"""The whole training state of one agent at a step boundary: model, loop, buffer, env, RNGs.

Restore order matters: model state first (the env restore reads ``_last_obs`` and the
episode-start flags), the env next (its replayed resets draw from the env's own generators),
the global RNGs last, so nothing done while restoring consumes random numbers.
"""

from __future__ import annotations

from typing import Any

from atheria_cli.agents.loops import TrainingLoop
from atheria_cli.agents.replay import SegmentReader
from atheria_cli.agents.rng import capture_global_rng, restore_global_rng
from atheria_cli.agents.state import capture_model, restore_model
from atheria_cli.envs.state import EnvRestoreReport, capture_env, restore_env


def capture_training_state(loop: TrainingLoop) -> dict[str, Any]:
    model = loop.model
    return {
        "model": capture_model(model),
        "loop": loop.state_dict(),
        "buffer": loop.buffer_state(),
        "env": capture_env(model, at_episode_start=loop.episode_steps == 0),
        "rng": capture_global_rng(),
    }


def restore_training_state(loop: TrainingLoop, payload: dict[str, Any], read_segment: SegmentReader) -> EnvRestoreReport:
    model = loop.model
    restore_model(model, payload["model"])
    loop.load_buffer_state(payload["buffer"], read_segment)
    loop.load_state_dict(payload["loop"])
    report = restore_env(model, payload["env"], at_episode_start=loop.episode_steps == 0)
    loop.episode_steps[report.restarted] = 0
    restore_global_rng(payload["rng"])
    return report
