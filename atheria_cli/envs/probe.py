"""Check ``env.metrics`` against the keys the environment really reports, before anything is written.

A misspelled metric would otherwise surface at the end of the first episode, after ``--fresh``
has moved the old run aside. Planning steps a throwaway copy of the env with random actions
until every configured name has appeared in an ``info`` dict, or until the first episode ends
(then the final info is the verdict), at most :data:`PROBE_STEPS` steps. An env whose first
episode is longer than that is left to the check at the end of the first training episode.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from atheria_cli.errors import MetricError

PROBE_STEPS = 5_000
# Keys SB3 and gymnasium's wrappers add to the final info: never a metric of the env.
WRAPPER_KEYS = ("episode", "terminal_observation", "TimeLimit.truncated")


def check_metric_names(vec_env: VecEnv, names: Sequence[str], env_id: str, seed: int | None) -> None:
    """Raise :class:`MetricError` (exit 2) for a name the env does not report; ``did you mean``."""
    if not names:
        return
    offered = _probe_keys(vec_env, set(names), seed)
    if offered is None:
        return
    missing = [name for name in names if name not in offered]
    if not missing:
        return
    keys = sorted(key for key in offered if key not in WRAPPER_KEYS)
    close = difflib.get_close_matches(missing[0], keys, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise MetricError(
        f"env.metrics: {missing[0]!r} is not in the final info dict of {env_id} episodes "
        f"({hint}keys there: {', '.join(keys) or 'none'})"
    )


def _probe_keys(vec_env: VecEnv, wanted: set[str], seed: int | None) -> set[str] | None:
    """Info keys seen until ``wanted`` are all seen or an episode ends; None when neither happens."""
    vec_env.seed(seed)
    vec_env.action_space.seed(seed)
    vec_env.reset()
    seen: set[str] = set()
    for _ in range(PROBE_STEPS):
        actions = np.array([vec_env.action_space.sample() for _ in range(vec_env.num_envs)])
        _, _, dones, infos = vec_env.step(actions)
        for info in infos:
            seen.update(info)
        if wanted <= seen:
            return seen
        if dones.any():
            return set(infos[int(np.flatnonzero(dones)[0])])
    return None
