"""``tune.json``: the frozen description of a study, written once when it starts (torch-free).

What decides which trials the study suggests and what their values mean (the base entry,
the space, the sampler, the pruner, the seeds, the objective, the budget (episodes or
until_timesteps) and evaluations) is recorded; ``--resume`` with any of it changed is exit 2,
since the journal's trials would no longer be trials of the same study. ``trials`` may grow:
that only extends the study.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from atheria_cli.config import ExperimentConfig, config_to_dict
from atheria_cli.errors import ConfigDriftError, DamagedFileError
from atheria_cli.metrics import quantity_named
from atheria_cli.run.atomic import atomic_write_json
from atheria_cli.tune.layout import StudyLayout

RECORD_SCHEMA_VERSION = 1
# The fields a resumed study must share with the config (see the module docstring).
FROZEN_FIELDS = (
    "agent",
    "base",
    "env",
    "space",
    "sampler",
    "pruner",
    "seeds",
    "objective",
    "episodes",
    "until_timesteps",
    "eval",
    "storage",
)


class StudyRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = RECORD_SCHEMA_VERSION
    study: str
    experiment: str
    agent: str
    algo: str
    base: dict[str, Any]  # the base agent entry, resolved
    env: dict[str, Any]  # the base agent's env settings ({} for a trainer, which has none)
    space: dict[str, Any]
    sampler: dict[str, Any]
    pruner: dict[str, Any]
    seeds: list[int]
    objective: dict[str, Any]  # metric (resolved), goal, window
    direction: str  # minimize | maximize
    episodes: int | None  # the budget per trial and seed: episodes, else
    until_timesteps: int | None = None  # timesteps (added within schema 1: an older tune.json reads as null)
    eval: dict[str, Any]
    storage: str
    created: str
    versions: dict[str, str] = Field(default_factory=dict)


def study_record(config: ExperimentConfig, created: str, versions: dict[str, str]) -> StudyRecord:
    """The record of the study that ``config``'s tune section describes."""
    tune = config.tune
    assert tune is not None and config.train.eval is not None  # validated with the config
    document = config_to_dict(config)
    metric = quantity_named(config, tune.objective.metric)
    return StudyRecord(
        study=tune.study,
        experiment=config.experiment,
        agent=tune.agent,
        algo=config.algo_of(tune.agent),
        base=document["agents"][tune.agent],
        env=config.env_of(tune.agent).model_dump(mode="json")
        if config.env_id_of(tune.agent) is not None
        else {},  # a trainer: none
        space={path: entry.model_dump(mode="json", exclude_defaults=True) for path, entry in tune.space.items()},
        sampler=tune.sampler.model_dump(mode="json"),
        pruner=tune.pruner.model_dump(mode="json"),
        seeds=list(tune.seeds),
        objective={"metric": metric.name, "goal": metric.goal, "window": tune.objective.window},
        direction=direction_of(metric.goal),
        episodes=tune.episodes,
        until_timesteps=tune.until_timesteps,
        eval=config.train.eval.model_dump(mode="json"),
        storage=tune.storage,
        created=created,
        versions=versions,
    )


def direction_of(goal: str) -> str:
    """Optuna's study direction for a metric's goal."""
    return "minimize" if goal == "min" else "maximize"


def read_record(layout: StudyLayout) -> StudyRecord | None:
    if not layout.record.exists():
        return None
    try:
        return StudyRecord.model_validate(json.loads(layout.record.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError) as exc:
        raise DamagedFileError(layout.record, f"not a study record ({type(exc).__name__})") from None


def write_record(layout: StudyLayout, record: StudyRecord) -> None:
    atomic_write_json(layout.record, record.model_dump(mode="json"))


def check_unchanged(stored: StudyRecord, current: StudyRecord, layout: StudyLayout) -> None:
    """:class:`ConfigDriftError` (exit 2) naming each frozen field the config changed."""
    changed = [name for name in FROZEN_FIELDS if getattr(stored, name) != getattr(current, name)]
    if changed:
        listed = ", ".join(f"tune.{name}" if name not in ("base", "env", "eval") else _where(name, stored) for name in changed)
        raise ConfigDriftError(
            f"{layout.record}: the study was started with other settings ({listed} changed); "
            "revert them, or start a new study under another tune.study name"
        )


def _where(name: str, stored: StudyRecord) -> str:
    return {"base": f"agents.{stored.agent}", "env": "env", "eval": "train.eval"}[name]
