"""``trial_000i/trial.json``, a study trial's record beside its runs: torch-free, Optuna-free."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from atheria_cli.errors import DamagedFileError
from atheria_cli.tune.layout import StudyLayout
from atheria_cli.tune.trial_record import TrialRecord, read_trial_record, write_trial_record

STARTED = TrialRecord(
    index=3,
    params={"learning_rate": 0.001, "policy_kwargs.net_arch": "small"},
    distributions={
        "learning_rate": '{"name": "FloatDistribution"}',
        "policy_kwargs.net_arch": '{"name": "CategoricalDistribution"}',
    },
    values={"learning_rate": 0.001, "policy_kwargs.net_arch": [8]},
)


def test_a_record_round_trips_and_names_its_format(tmp_path: Path) -> None:
    layout = StudyLayout.of(tmp_path, "exp", "lr")
    write_trial_record(layout.trial_folder(3), STARTED)
    document = json.loads((tmp_path / "exp/tune/lr/trial_0003/trial.json").read_text())
    assert (document["format"], document["schema_version"], document["state"]) == ("atheria-trial", 1, None)
    ended = STARTED.ended("PRUNED", 27.5, {2: 27.5}, "pruned at episode 2")
    write_trial_record(layout.trial_folder(3), ended)
    assert read_trial_record(layout.trial_folder(3)) == ended
    assert layout.trial_folders() == [tmp_path / "exp/tune/lr/trial_0003"]


def test_non_finite_numbers_are_dropped_at_the_end() -> None:
    ended = STARTED.ended("COMPLETE", math.inf, {2: 1.0, 4: math.nan}, None)
    assert (ended.value, ended.intermediate) == (None, {2: 1.0})


def test_a_folder_without_a_record_has_none_and_a_damaged_one_is_named(tmp_path: Path) -> None:
    assert read_trial_record(tmp_path) is None  # a study written before records existed
    (tmp_path / "trial.json").write_text('{"format": "atheria-trial", "schema_version": 2}')
    with pytest.raises(DamagedFileError, match="schema_version 2 is newer than this atheria supports"):
        read_trial_record(tmp_path)
    (tmp_path / "trial.json").write_text('{"format": "atheria-trial", "schema_version": 1, "index": -1}')
    with pytest.raises(DamagedFileError, match=r"trial.json.*index: Input should be greater than or equal to 0"):
        read_trial_record(tmp_path)


def test_trial_folders_past_9999_are_found_in_index_order(tmp_path: Path) -> None:
    layout = StudyLayout.of(tmp_path, "exp", "lr")
    for index in (10000, 2, 9999):
        layout.trial_folder(index).mkdir(parents=True)
    (layout.root / "trial_12").mkdir()  # not a trial folder's name
    assert [path.name for path in layout.trial_folders()] == ["trial_0002", "trial_9999", "trial_10000"]
