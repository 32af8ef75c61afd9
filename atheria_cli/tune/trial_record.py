"""``trial_000i/trial.json``: what the study's storage knows of one trial, kept beside its runs
(torch-free).

Optuna's storage (the journal file, a SQLite file, a database) is the study's memory; when it is
lost (deleted with a cleanup, left behind on another machine, a database that is gone), the
trials' folders are not. Each trial's record, written atomically when the trial starts and
again when it ends, holds what rebuilding the study needs: Optuna's parameters and their
distributions, the values applied to the agent, and the end (state, value, the intermediate
values reported at its evaluated commits, the reason). A record without an end is a trial that
was still running: a rebuilt study queues it again, and its seeds resume from their commits.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from atheria_cli.errors import DamagedFileError
from atheria_cli.run.atomic import atomic_write_json
from atheria_cli.run.formats import check_schema_version

TRIAL_FORMAT: Final = "atheria-trial"
TRIAL_SCHEMA_VERSION = 1
TRIAL_FILE = "trial.json"

State = Literal["COMPLETE", "PRUNED", "FAIL"]


class TrialRecord(BaseModel):
    """One trial of a study, as its folder keeps it (see the module docstring).

    :param params: Optuna's parameters, by space path (a choice's label, ``x`` of ``1 - x``)
    :param distributions: each parameter's Optuna distribution, as ``optuna.distributions.distribution_to_json`` writes it
    :param values: the hyperparameter values the trial trained with, by space path
    :param state: how it ended; None while it runs (or when its driver was stopped)
    :param value: the trial's objective (a pruned trial's last reported one); None when it has none
    :param intermediate: the objective reported at each evaluated commit, by episode
    """

    model_config = ConfigDict(extra="forbid")

    format: Literal["atheria-trial"] = TRIAL_FORMAT
    schema_version: int = Field(default=TRIAL_SCHEMA_VERSION, ge=1, le=TRIAL_SCHEMA_VERSION)
    index: int = Field(ge=0)
    params: dict[str, Any]
    distributions: dict[str, str]
    values: dict[str, Any]
    state: State | None = None
    value: float | None = None
    intermediate: dict[int, float] = Field(default_factory=dict)
    reason: str | None = None

    def ended(self, state: State, value: float | None, intermediate: dict[int, float], reason: str | None) -> TrialRecord:
        """The record of the trial once it has ended (non-finite numbers dropped: JSON has none)."""
        finite = {step: number for step, number in intermediate.items() if math.isfinite(number)}
        kept = value if value is not None and math.isfinite(value) else None
        return self.model_copy(update={"state": state, "value": kept, "intermediate": finite, "reason": reason})


def trial_record_path(trial_folder: Path) -> Path:
    return trial_folder / TRIAL_FILE


def write_trial_record(trial_folder: Path, record: TrialRecord) -> None:
    trial_folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(trial_record_path(trial_folder), record.model_dump(mode="json"))


def read_trial_record(trial_folder: Path) -> TrialRecord | None:
    """The trial's record; None when its folder has none (a study written before records existed)."""
    path = trial_record_path(trial_folder)
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DamagedFileError(path, f"not a trial record ({type(exc).__name__})") from None
    if isinstance(document, dict):  # a newer atheria's record says so, as every document does
        check_schema_version(document.get("schema_version"), TRIAL_SCHEMA_VERSION, path)
    try:
        return TrialRecord.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the document"
        raise DamagedFileError(path, f"not a trial record ({where}: {first['msg']})") from None
