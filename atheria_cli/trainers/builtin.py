"""atheria's own trainers, named ``atheria/<name>`` in a config (``trainer: atheria/qca``).

Torch-free: the config validates a built-in name against :data:`BUILTIN_TRAINERS` and the
``torch`` trainer kind (:mod:`atheria_cli.trainers.custom`) imports the class it names, as it
imports a user's ``package.module:Class``, without ``train.allow_import``: this is atheria's
own code.
"""

from __future__ import annotations

BUILTIN_PREFIX = "atheria/"
# Built-in name -> "module:Class". A new built-in trainer is one row here.
BUILTIN_TRAINERS: dict[str, str] = {
    "qca": "atheria_cli.trainers.qca.trainer:QCATrainer",
}


def is_builtin(trainer: str) -> bool:
    """Whether ``trainer`` (an agent's ``trainer`` field) names a built-in trainer."""
    return trainer.startswith(BUILTIN_PREFIX)


def builtin_class_path(trainer: str) -> str:
    """The ``module:Class`` of the built-in trainer ``atheria/<name>``; raises ``ValueError``
    listing the known names when there is none of that name."""
    name = trainer.removeprefix(BUILTIN_PREFIX)
    if not is_builtin(trainer) or name not in BUILTIN_TRAINERS:
        known = ", ".join(BUILTIN_PREFIX + known for known in sorted(BUILTIN_TRAINERS))
        raise ValueError(f"{trainer!r} is not a built-in trainer (built-in: {known})")
    return BUILTIN_TRAINERS[name]
