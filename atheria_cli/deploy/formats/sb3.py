"""SB3's own zip: ``model.save`` of the restored model, for the tools that speak it (``ALGO.load``,
``evaluate_policy``, rl-zoo3's ``enjoy.py``, huggingface_sb3).

Beside ``<stem>.zip`` it writes, when asked, SB3's replay-buffer file (``save_replay_buffer``:
``<stem>_replay_buffer.pkl``) and, for a VecNormalize agent, its statistics as
``VecNormalize.save`` writes them (``<stem>_vecnormalize.pkl``). Those are SB3's formats, so
they are pickles: loading one runs whatever code it names. atheria loads them back only to
verify what it just wrote, and in ``eval --export`` after the sidecar's sha256 of each file
matched; a zip from elsewhere is adopted with ``train --from-sb3``, which never unpickles.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from atheria_cli.deploy.formats import Policy
from atheria_cli.errors import UsageError

if TYPE_CHECKING:  # SB3 is imported where its zip is written or read
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecNormalize

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


def write(model: BaseAlgorithm, normalizer: VecNormalize | None, path: Path, *, with_replay: bool) -> dict[str, Path]:
    """SB3's ``save`` (and ``save_replay_buffer``, ``VecNormalize.save``): role -> extra file written."""
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    model.save(path)
    extras: dict[str, Path] = {}
    if with_replay:
        if not isinstance(model, OffPolicyAlgorithm):
            raise UsageError(f"--with-replay: {type(model).__name__} has no replay buffer (on-policy)")
        extras[REPLAY_BUFFER] = extra_file(path, REPLAY_BUFFER)
        model.save_replay_buffer(extras[REPLAY_BUFFER])
    if normalizer is not None:
        extras[VEC_NORMALIZE] = extra_file(path, VEC_NORMALIZE)
        normalizer.save(str(extras[VEC_NORMALIZE]))
    return extras


def load(path: Path) -> Policy:
    """``eval --export``: the sidecar (already checked, with every file's sha256) names the algorithm."""
    from atheria_cli.agents.registry import algorithm_class
    from atheria_cli.deploy.sidecar import read_sidecar

    return policy(path, algorithm_class(read_sidecar(path).algo))


def policy(path: Path, algorithm: type[BaseAlgorithm]) -> Policy:
    """``algorithm.load(path)``'s deterministic ``predict``, on observations normalized as the
    ``<stem>_vecnormalize.pkl`` beside it says (when there is one)."""
    try:
        model = algorithm.load(path, device="cpu")
    except Exception as exc:  # SB3's load raises zip, pickle, key and shape errors alike for a bad file
        raise UsageError(f"{path} is not an SB3 {algorithm.__name__} zip ({_first_line(exc)})") from None
    normalizer = _normalizer(extra_file(path, VEC_NORMALIZE))

    def act(obs: np.ndarray) -> np.ndarray:
        seen = normalizer.normalize_obs(obs) if normalizer is not None and normalizer.norm_obs else obs
        actions, _ = model.predict(seen, deterministic=True)
        return actions

    return act


def _normalizer(path: Path) -> VecNormalize | None:
    from stable_baselines3.common.vec_env import VecNormalize

    if not path.is_file():
        return None
    # What VecNormalize.load does, minus set_venv: normalize_obs needs only the statistics.
    with path.open("rb") as handle:
        normalizer = pickle.load(handle)  # noqa: S301 - our own file, its sha256 checked by the caller
    if not isinstance(normalizer, VecNormalize):
        raise UsageError(f"{path} is not SB3's VecNormalize statistics")
    return normalizer


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
