"""The optional ``tune`` extra: Optuna, imported only when a study is used."""

from __future__ import annotations

from types import ModuleType

from atheria_cli.errors import UsageError

EXTRA_HINT = "pip install 'atheria-cli[tune]'"


def require_optuna() -> ModuleType:
    """The ``optuna`` module; :class:`UsageError` (exit 2) naming the extra when it is missing."""
    try:
        import optuna
    except ImportError:
        raise UsageError(f"atheria tune needs Optuna, the 'tune' extra: {EXTRA_HINT}") from None
    # The core never prints: Optuna's lines ("Trial 3 finished ...", "Trial 4 failed") are the driver's to render.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna
