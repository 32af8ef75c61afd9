"""What ``episode_XXXX.pt`` holds, in one place: the header, the body, how it is written and read.

A torch zip file holding one dict, loadable with ``torch.load(..., weights_only=True)``::

    header:  format: "atheria-checkpoint", schema_version: 2, trainer: the trainer kind
             ("sb3" or "torch"; schema 1 had no such field and was always SB3's), atheria_version, created,
             agent, algo, episode, partial, num_timesteps,
             run_config: JSON text of the resolved experiment config (for load_agent),
             versions: {atheria, python, torch, stable_baselines3, gymnasium, numpy[, sb3_contrib]}
    body:    the trainer's own sections (its kind's ``checkpoint_sections``), for "sb3":
             model:  {state_dicts, variables, counters, last_obs, last_episode_starts,
                      last_original_obs, ep_info_buffer, ep_success_buffer, sde_noise, action_noise}
             loop:   on-policy {family, iteration[, lstm_states]} | off-policy {family, chunk_steps,
                     chunk_episodes}
             buffer: rollout {kind, pos, full, rows, arrays: {name: tensor[:rows]}}
                     replay  {kind, rows_total, capacity, pos, full, tail_observation,
                              segments: [{file, start, end, sha256, size}]}  (atheria_cli.run.segments)
             env:    {resets: [{seed, options, rng}], mid_episode, action_space_rng, vec_normalize, frame_stack}
             for "torch" (a user's trainer class, atheria_cli.trainers.custom):
             state:  the user's state_dict(), its tensors copied to the CPU
             then atheria's own sections:
             rng:    {python, numpy, torch, cuda}

Schema 1 (atheria 0.2, fd0e72a) is schema 2 without ``trainer``: the same five sections, read
as an SB3 checkpoint. No migration rewrites a file; the reader supplies the kind.

docs/file-layout.md describes every field. The header check is torch-free (a damaged file is
reported without loading torch's state); torch, NumPy and SB3 are imported only by the functions
that write, read, capture or restore a checkpoint.

Restore order matters: the trainer's state first (for SB3: the model, then the env, whose
restore reads ``_last_obs`` and the episode-start flags and replays resets from the env's own
generators), atheria's global RNGs last, so nothing done while restoring consumes random numbers.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atheria_cli.errors import DamagedFileError
from atheria_cli.run.formats import check_schema_version

if TYPE_CHECKING:
    from atheria_cli.agents.loops import TrainingLoop
    from atheria_cli.agents.replay import SegmentReader
    from atheria_cli.envs.state import EnvRestoreReport
    from atheria_cli.trainers.base import RestoreReport, Trainer

CHECKPOINT_FORMAT = "atheria-checkpoint"
CHECKPOINT_SCHEMA_VERSION = 2
CHECKPOINT_FIELDS = ("agent", "algo", "episode", "num_timesteps", "run_config")
# Written by atheria itself, whatever the trainer (the trainer's own sections come before them).
ATHERIA_SECTIONS = ("rng",)


def check_checkpoint_header(payload: object, path: object) -> None:
    """Refuse anything that is not an atheria checkpoint this version can read."""
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise DamagedFileError(path, "not an atheria checkpoint")
    check_schema_version(payload.get("schema_version"), CHECKPOINT_SCHEMA_VERSION, path)
    if payload["schema_version"] >= 2 and not isinstance(payload.get("trainer"), str):
        raise DamagedFileError(path, "checkpoint names no trainer kind")
    kind = trainer_kind(payload)
    from atheria_cli.trainers import TRAINER_KINDS

    if kind not in TRAINER_KINDS:
        known = ", ".join(sorted(TRAINER_KINDS))
        raise DamagedFileError(path, f"written by trainer kind {kind!r}, which this atheria does not know ({known})")
    sections = (*TRAINER_KINDS[kind].checkpoint_sections, *ATHERIA_SECTIONS)
    missing = [key for key in (*CHECKPOINT_FIELDS, *sections) if key not in payload]
    if missing:
        raise DamagedFileError(path, f"checkpoint lacks {', '.join(missing)}")


def trainer_kind(payload: dict[str, Any]) -> str:
    """The trainer kind that wrote ``payload``: schema 1 predates kinds and was always SB3's."""
    from atheria_cli.trainers import DEFAULT_KIND

    return str(payload.get("trainer", DEFAULT_KIND))


def checkpoint_payload(
    trainer: Trainer,
    *,
    agent: str,
    algo: str,
    episode: int,
    partial: bool,
    created: str,
    run_config: str,
    versions: dict[str, str],
) -> dict[str, Any]:
    """The whole checkpoint: header, then the training state of ``trainer`` as the body."""
    from atheria_cli import __version__
    from atheria_cli.agents.rng import capture_global_rng

    return {
        "format": CHECKPOINT_FORMAT,
        "schema_version": CHECKPOINT_SCHEMA_VERSION,
        "trainer": trainer.kind,
        "atheria_version": __version__,
        "created": created,
        "agent": agent,
        "algo": algo,
        "episode": episode,
        "partial": partial,
        "num_timesteps": trainer.timesteps,
        "run_config": run_config,
        "versions": versions,
        **trainer.capture_state(),
        "rng": capture_global_rng(),  # last: capturing the trainer's state must not change it
    }


def restore_checkpoint(trainer: Trainer, payload: dict[str, Any], read_segment: SegmentReader) -> RestoreReport:
    """The trainer's sections first, atheria's global RNGs last (nothing restored after them
    may draw a random number)."""
    from atheria_cli.agents.rng import restore_global_rng

    report = trainer.restore_state(payload, read_segment)
    report.generators_not_restored = restore_global_rng(payload["rng"])
    return report


def capture_training_state(loop: TrainingLoop) -> dict[str, Any]:
    """An SB3 trainer's sections: everything of it that decides the future of training, at a
    step boundary (atheria adds the global RNGs)."""
    from atheria_cli.agents.state import capture_model
    from atheria_cli.envs.state import capture_env

    model = loop.model
    return {
        "model": capture_model(model),
        "loop": loop.state_dict(),
        "buffer": loop.buffer_state(),
        "env": capture_env(model, at_episode_start=loop.episode_steps == 0),
    }


def restore_training_state(loop: TrainingLoop, payload: dict[str, Any], read_segment: SegmentReader) -> EnvRestoreReport:
    """An SB3 trainer's sections back (the global RNGs are atheria's: :func:`restore_checkpoint`)."""
    from atheria_cli.agents.state import restore_model
    from atheria_cli.envs.state import restore_env

    model = loop.model
    restore_model(model, payload["model"])
    loop.load_buffer_state(payload["buffer"], read_segment)
    loop.load_state_dict(payload["loop"])
    report = restore_env(model, payload["env"], at_episode_start=loop.episode_steps == 0)
    loop.episode_steps[report.restarted] = 0
    return report


def encode_checkpoint(payload: dict[str, Any]) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(plain(payload), buffer)
    return buffer.getvalue()


def read_checkpoint(path: Path, expected_sha256: str | None = None) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``: a file carrying pickled code is refused,
    never executed. With ``expected_sha256``, a file that changed since its commit is refused."""
    payload = load_committed(path, expected_sha256, "checkpoint")
    check_checkpoint_header(payload, path)
    return payload


def load_committed(path: Path, expected_sha256: str | None, what: str) -> Any:
    """A committed file (``what``: checkpoint, snapshot) loaded weights-only; with
    ``expected_sha256``, one that changed since its commit is a :class:`DamagedFileError`."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DamagedFileError(path, f"{what} file is missing") from None
    except OSError as exc:
        raise DamagedFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise DamagedFileError(path, "sha256 differs from the one recorded in metadata.json (file changed or truncated)")
    return load_weights_only(data, path, what)


def load_weights_only(data: bytes, path: object, what: str) -> Any:
    """``torch.load(weights_only=True)`` of a file's bytes: pickled code is refused, never run;
    a damaged file is a :class:`DamagedFileError` naming ``what`` it should have been."""
    import torch

    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = next((line.strip() for line in str(exc).splitlines() if "WeightsUnpickler error" in line), "unsafe content")
        raise DamagedFileError(path, f"refused, it is not plain weights and data: {reason}") from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise DamagedFileError(path, f"unreadable {what}: {type(exc).__name__}: {exc}") from None


def plain(value: Any) -> Any:
    """The payload with only what ``weights_only`` loads: tensors, plain scalars and containers.

    NumPy scalars and ``str`` subclasses (``torch.__version__``) are converted; anything else is
    a programming error, reported here rather than as an unloadable file later.
    """
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return type(value)((plain(key), plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(plain(item) for item in value)
    if isinstance(value, np.generic):
        return value.item()
    # Subclasses become their plain type (torch.__version__ is a str subclass); bool before int.
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return bytes(value)
    raise TypeError(f"the payload holds a {type(value).__name__}, which weights_only loading refuses")
