"""``tune.json``, a study's frozen description: the budget is frozen, and a record written before
``until_timesteps`` existed still resumes (torch-free, Optuna-free)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import ConfigDriftError
from atheria_cli.tune.layout import StudyLayout
from atheria_cli.tune.record import StudyRecord, check_unchanged, read_record, study_record

CONFIG: dict[str, Any] = {
    "experiment": "exp",
    "device": "cpu",
    "env": {"id": "CartPole-v1", "max_episode_steps": 20},
    "agents": {"PPO": {"hyperparams": {"n_steps": 32}}},
    "train": {"eval": {"every": 2, "episodes": 2}},
    "tune": {"study": "s", "agent": "PPO", "episodes": 4, "space": {"learning_rate": {"float": [1.0e-4, 1.0e-2]}}},
}


def _record(**budget: int | None) -> StudyRecord:
    config = ExperimentConfig.model_validate({**CONFIG, "tune": {**CONFIG["tune"], **budget}})
    return study_record(config, "2026-01-01T00:00:00+00:00", {})


def test_a_tune_json_written_before_until_timesteps_existed_resumes(tmp_path: Path) -> None:
    layout = StudyLayout.of(tmp_path, "exp", "s")
    current = _record()
    older = current.model_dump(mode="json")
    del older["until_timesteps"]  # what tune.json held before the budget could be timesteps
    layout.record.parent.mkdir(parents=True)
    layout.record.write_text(json.dumps(older), encoding="utf-8")
    stored = read_record(layout)
    assert stored is not None and (stored.episodes, stored.until_timesteps) == (4, None)
    check_unchanged(stored, current, layout)  # the same study: no drift


def test_a_changed_budget_is_a_changed_study(tmp_path: Path) -> None:
    layout = StudyLayout.of(tmp_path, "exp", "s")
    until = _record(episodes=None, until_timesteps=200)
    assert (until.episodes, until.until_timesteps) == (None, 200)
    with pytest.raises(ConfigDriftError, match=r"\(tune\.until_timesteps changed\)"):
        check_unchanged(until, _record(episodes=None, until_timesteps=300), layout)
    with pytest.raises(ConfigDriftError, match=r"\(tune\.episodes, tune\.until_timesteps changed\)"):
        check_unchanged(_record(), until, layout)
