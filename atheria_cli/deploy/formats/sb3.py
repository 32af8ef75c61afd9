"""SB3's own zip: ``model.save`` of the restored model, for the tools that speak it (``ALGO.load``,
``evaluate_policy``, rl-zoo3's ``enjoy.py``, huggingface_sb3).

Beside ``<stem>.zip`` it writes, when asked, SB3's replay-buffer file (``save_replay_buffer``:
``<stem>_replay_buffer.pkl``) and, for a VecNormalize agent, its statistics as
``VecNormalize.save`` writes them (``<stem>_vecnormalize.pkl``). Those are SB3's formats, so
they are pickles: loading one runs whatever code it names. atheria loads them back only to
verify what it just wrote, and in ``eval --export`` after the sidecar's sha256 of each file
matched; a zip from elsewhere is adopted with ``train --from-sb3``, which never unpickles.

This module names the files; the sb3 trainer kind writes and reads them
(:mod:`atheria_cli.trainers.sb3.deploy`), SB3 being imported only there.
"""

from __future__ import annotations

from pathlib import Path

from atheria_cli.deploy.formats import Program

REPLAY_BUFFER = "replay_buffer"
VEC_NORMALIZE = "vec_normalize"


def require() -> None:
    """Nothing beyond SB3."""


def extra_files(path: Path) -> dict[str, Path]:
    """Every extra file an export to ``path`` may write, by role."""
    return {role: extra_file(path, role) for role in (REPLAY_BUFFER, VEC_NORMALIZE)}


def extra_file(path: Path, role: str) -> Path:
    """Where an extra file of the zip ``path`` lives: ``<stem>_replay_buffer.pkl``, ``<stem>_vecnormalize.pkl``."""
    suffix = {REPLAY_BUFFER: "_replay_buffer.pkl", VEC_NORMALIZE: "_vecnormalize.pkl"}[role]
    return path.with_name(path.stem + suffix)


def load(path: Path) -> Program:
    """``eval --export``: the sidecar (already checked, with every file's sha256) names the algorithm."""
    from atheria_cli.deploy.sidecar import read_sidecar
    from atheria_cli.trainers.sb3.deploy import zip_policy_of

    policy = zip_policy_of(path, read_sidecar(path).algo)
    return lambda obs: (policy(obs),)
