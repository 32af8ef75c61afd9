"""atheria: resumable, per-episode training of Stable-Baselines3 agents.

Importing this package is cheap: torch and Stable-Baselines3 load only when a function that
needs them is called. It registers the built-in environments (``atheria/BuildingCO2-v0``, ...)
with gymnasium, when gymnasium is imported (see :mod:`atheria_cli.envs_registration`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from atheria_cli.envs_registration import register_when_gymnasium_loads

__version__ = "0.1.0"

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm


def load_agent(path: Any, device: str = "cpu") -> BaseAlgorithm:
    """Return the SB3 model stored in an ``episode_XXXX.pt`` checkpoint, ready for ``predict``.

    The model's environment (``model.get_env()``) is rebuilt from the config stored in the
    checkpoint, VecNormalize statistics included (frozen: ``training=False``).
    """
    from atheria_cli.deploy.loading import load_agent as _load_agent

    return _load_agent(path, device=device)


__all__ = ["__version__", "load_agent"]

register_when_gymnasium_loads()
