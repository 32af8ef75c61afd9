"""Rebuild a study whose storage was lost from its trials' folders (``trial_000i/trial.json``).

``atheria tune --resume`` of a study whose ``tune.json`` is there but whose storage holds no
trial (the journal deleted, the SQLite file or database gone) adds each recorded trial back: an
ended one as it ended (its parameters, distributions, state, value and intermediate values), a
running one queued again with its parameters and index, to resume from its seeds' commits.
Trial numbers are renumbered in index order (the retries of interrupted attempts are not kept):
the samplers are seeded by index and read only ended trials, so the study goes on suggesting
what it would have.
"""

from __future__ import annotations

from typing import Any

from atheria_cli.tune.layout import StudyLayout
from atheria_cli.tune.trial_record import TrialRecord, read_trial_record


def recorded_trials(layout: StudyLayout) -> list[TrialRecord]:
    """The records of the study's trial folders, by index (folders without one skipped)."""
    found = [read_trial_record(folder) for folder in layout.trial_folders()]
    return [record for record in found if record is not None]


def rebuild_study(study: Any, records: list[TrialRecord]) -> list[TrialRecord]:
    """Add the recorded trials (:func:`recorded_trials`, read before the study was opened, so a
    damaged record stops the resume before the storage is created) to ``study``, an empty
    ``optuna.Study``; returns them."""
    import optuna
    from optuna.distributions import json_to_distribution
    from optuna.trial import TrialState

    for record in records:
        attrs = {"index": record.index, "values": record.values, "rebuilt": True}
        if record.state is None:
            study.enqueue_trial(record.params, user_attrs=attrs)
            continue
        state = "FAIL" if record.state == "COMPLETE" and record.value is None else record.state  # no finite value
        if record.reason is not None:
            attrs["reason"] = record.reason
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState[state],
                value=record.value if state != "FAIL" else None,
                params=record.params,
                distributions={path: json_to_distribution(text) for path, text in record.distributions.items()},
                user_attrs=attrs,
                intermediate_values=dict(record.intermediate),
            )
        )
    return records
