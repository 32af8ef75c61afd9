"""Where the study lives and how its sampler and pruner are built (torch-free).

``storage: journal`` (the default) is an Optuna JournalFileBackend file in the study folder:
one JSON line per operation, appended and fsynced. A driver killed in the middle of an append
leaves a torn last line, which Optuna refuses to read; :func:`repair_journal` cuts it off
before the study is opened (the operation it held never completed). A path ending in .db,
.sqlite or .sqlite3 is a SQLite file (relative to the study folder); anything with ``://`` is
a database URL for Optuna's RDBStorage.

The sampler is rebuilt before every trial, seeded ``sampler.seed + i`` for the study's i-th
trial (a retried trial keeps its i): a sequential study then suggests the same trials whether
it was killed and resumed or not.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from atheria_cli.config.tune import HalvingPrunerConfig, MedianPrunerConfig, TuneConfig
from atheria_cli.errors import DamagedFileError
from atheria_cli.run.atomic import fsync_dir
from atheria_cli.tune.extra import require_optuna
from atheria_cli.tune.layout import StudyLayout

SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def storage_url(tune: TuneConfig, layout: StudyLayout) -> str | None:
    """The RDB URL of the study, or None for the journal file."""
    if tune.storage == "journal":
        return None
    if "://" in tune.storage:
        return tune.storage
    path = Path(tune.storage)
    return f"sqlite:///{path if path.is_absolute() else layout.root / path}"


def repair_journal(path: Path) -> str | None:
    """Cut a torn last line off the journal; a notice saying so, or None when it was whole.
    A damaged line before the last is not a torn write: :class:`DamagedFileError`."""
    if not path.exists():
        return None
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return None
    whole = data.rfind(b"\n") + 1
    with open(path, "r+b") as handle:
        handle.truncate(whole)
        handle.flush()
        os.fsync(handle.fileno())
    fsync_dir(path.parent)
    return f"{path}: cut a torn last line ({len(data) - whole} bytes of an operation the killed driver never finished)"


def open_study(tune: TuneConfig, layout: StudyLayout, direction: str) -> Any:
    """Create or load the study (an ``optuna.Study``) in its storage."""
    optuna = require_optuna()
    url = storage_url(tune, layout)
    if url is None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage: Any = JournalStorage(JournalFileBackend(str(layout.journal)))
    else:
        storage = optuna.storages.RDBStorage(url)
    try:
        return optuna.create_study(
            study_name=tune.study,
            storage=storage,
            direction=direction,
            load_if_exists=True,
            sampler=sampler_for(tune, 0),
            pruner=pruner_of(tune),
        )
    except ValueError as exc:  # Optuna's "Invalid log format." and kin
        raise DamagedFileError(layout.journal if url is None else url, f"the study cannot be read: {exc}") from None


def sampler_for(tune: TuneConfig, index: int) -> Any:
    """The sampler of the study's ``index``-th trial (see the module docstring)."""
    optuna = require_optuna()
    seed = tune.sampler.seed + index
    if tune.sampler.name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=tune.sampler.startup)
    # random, and grid: atheria enqueues each grid point itself (Optuna's GridSampler numbers
    # its points by trial number, which a retried trial shifts), so nothing is left to sample.
    return optuna.samplers.RandomSampler(seed=seed)


def pruner_of(tune: TuneConfig) -> Any:
    """The study's pruner, blind to interrupted attempts (:mod:`atheria_cli.tune.pruning`)."""
    optuna = require_optuna()
    from atheria_cli.tune.pruning import WithoutInterrupted

    pruner = tune.pruner
    if isinstance(pruner, MedianPrunerConfig):
        inner = optuna.pruners.MedianPruner(n_startup_trials=pruner.startup, n_warmup_steps=pruner.warmup, interval_steps=1)
    elif isinstance(pruner, HalvingPrunerConfig):
        inner = optuna.pruners.SuccessiveHalvingPruner(min_resource=pruner.min_episodes, reduction_factor=pruner.eta)
    else:
        return optuna.pruners.NopPruner()
    return WithoutInterrupted(inner)
