"""The optional extras a training session may need, checked in one place before anything on disk changes.

Torch-free, and nothing here imports an extra: each is found with :func:`importlib.util.find_spec`,
so a missing one is reported (exit 2, naming the ``pip install``) before planning builds an
agent or ``--fresh`` moves a run aside.
"""

from __future__ import annotations

import importlib.util

from atheria_cli.agents.names import EXTRA_MODULES, EXTRAS
from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import ConfigError

# Extra -> the module whose presence means it is installed (the algorithm extras: agents.names).
MODULES = {**EXTRA_MODULES, "tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "ray": "ray"}


def installed(extra: str) -> bool:
    """Whether ``extra``'s module can be imported (found, not imported)."""
    try:
        return importlib.util.find_spec(MODULES[extra]) is not None
    except ValueError:  # sys.modules[module] is None: imports of it are blocked
        return False


def needs_extra(what: str, extra: str) -> str:
    """The one-line message for a setting whose extra is missing."""
    return f"{what} needs the '{extra}' extra: pip install 'atheria-cli[{extra}]'"


def required_extras(config: ExperimentConfig, *, backend: str | None = None) -> list[tuple[str, str]]:
    """``(setting, extra)`` for every optional extra the session would use, in config order.
    ``backend`` is the backend in force (``--backend`` over ``train.backend``), when known."""
    algos = {name: config.algo_of(name) for name, agent in config.agents.items() if agent.trainer is None}
    required = [(f"agents.{name}.algo: {algo}", extra) for name, algo in algos.items() if (extra := EXTRAS[algo]) is not None]
    if config.train.tensorboard:
        required.append(("train.tensorboard", "tensorboard"))
    required += [(f"train.{section}", section) for section in ("wandb", "mlflow") if getattr(config.train, section) is not None]
    if backend == "ray":
        required.append(("--backend ray", "ray"))
    return required


def check_extras(config: ExperimentConfig, *, backend: str | None = None) -> None:
    """Exit 2 (:class:`ConfigError`) naming the first extra the session needs that is not installed."""
    for what, extra in required_extras(config, backend=backend):
        if not installed(extra):
            raise ConfigError(needs_extra(what, extra))
