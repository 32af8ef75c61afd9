"""An optional protocol for environments that can save and restore themselves mid-episode.

Gymnasium has no way to serialize an environment, so a run interrupted in the middle of an
episode can in general only restart that episode. An environment that implements
:class:`StatefulEnv` lets a resume continue exactly where it stopped.

The contract:

* ``get_state()`` returns a snapshot made only of plain Python ``int``, ``float``, ``bool`` and
  ``str`` values, numpy arrays, and dicts (nested to any depth) of those. No objects, no
  ``None``: the snapshot must survive any serializer that handles numbers, strings and
  arrays, and it must not alias the environment's own buffers (later steps must not change it).
* ``set_state(state)`` restores such a snapshot, exactly. "Exactly" includes the environment's
  ``np_random`` generator state and its step counter: after ``set_state`` the continuation
  (observations, rewards, terminations, infos) is bit-identical to the one the original
  environment would have produced for the same actions.
* ``set_state`` works on a *fresh* instance built with the same constructor arguments, before
  or after its first ``reset``; the caller is responsible for those arguments matching.
* Both methods live on the unwrapped environment: wrappers (``TimeLimit``, ``Monitor``) keep
  counters of their own, which the caller restores separately.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import gymnasium as gym


@runtime_checkable
class StatefulEnv(Protocol):
    """An environment whose whole state can be captured and restored (see the module docstring)."""

    def get_state(self) -> dict[str, Any]:
        """A self-contained snapshot of plain numbers, bools, strings and numpy arrays."""
        ...

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a snapshot from ``get_state`` so that the continuation is bit-identical."""
        ...


def supports_state(env: gym.Env) -> bool:
    """Whether the environment under any Gymnasium wrappers implements :class:`StatefulEnv`.

    Gymnasium 1.x wrappers do not forward unknown attributes, so the check looks at
    ``env.unwrapped`` rather than at the wrapper itself.
    """
    return isinstance(getattr(env, "unwrapped", env), StatefulEnv)


def reference_policies(env: gym.Env) -> dict[str, Any]:
    """Named rule-based policies an environment offers as baselines (``atheria eval heuristic``).

    An environment declares them as a class attribute ``reference_policies = {name: factory}``;
    ``factory(env)`` returns an object with SB3's ``predict(obs, deterministic=True)`` that acts
    on the env's raw observations.
    """
    return dict(getattr(getattr(env, "unwrapped", env), "reference_policies", {}) or {})
