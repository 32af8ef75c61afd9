"""The resume-exactness verdict in metadata.json and what status says of it: torch-free."""

from __future__ import annotations

from typing import Any

from atheria_cli.config import ExperimentConfig, training_settings_sha256
from atheria_cli.reports.status import exactness_summary
from atheria_cli.run.formats import ExactnessVerdict

VERDICT: dict[str, Any] = {
    "verdict": "exact",
    "exact": True,
    "episodes": 4,
    "split": 2,
    "repeat": False,
    "difference": None,
    "checked": "2026-12-06T07:00:00+00:00",
    "atheria_version": "0.1.0",
}


def config(**changes: Any) -> ExperimentConfig:
    document: dict[str, Any] = {
        "experiment": "test",
        "seed": 7,
        "agents": {"fit": {"trainer": "tests.trainers:Shuffler", "kwargs": {"hidden": 8}, "metrics": ["loss"]}},
        "train": {"allow_import": True},
    }
    document.update(changes)
    return ExperimentConfig.model_validate(document)


def test_a_verdict_recorded_before_the_fingerprint_existed_still_reads() -> None:
    verdict = ExactnessVerdict.model_validate(VERDICT)
    assert verdict.settings_sha256 is None
    assert exactness_summary(verdict, "0" * 64) == "exact (4 episodes, resumed after 2; checked 2026-12-06)"


def test_the_fingerprint_follows_training_settings_only() -> None:
    base = training_settings_sha256(config(), "fit")
    assert training_settings_sha256(config(train={"allow_import": True, "keep": {"last": 1}}), "fit") == base
    assert training_settings_sha256(config(seed=8), "fit") != base
    kwargs = config(agents={"fit": {"trainer": "tests.trainers:Shuffler", "kwargs": {"hidden": 6}, "metrics": ["loss"]}})
    assert training_settings_sha256(kwargs, "fit") != base


def test_status_says_when_the_settings_changed_since_the_check() -> None:
    verdict = ExactnessVerdict.model_validate({**VERDICT, "settings_sha256": "a" * 64})
    assert exactness_summary(verdict, "a" * 64) == "exact (4 episodes, resumed after 2; checked 2026-12-06)"
    assert exactness_summary(verdict, "b" * 64) == (
        "exact (4 episodes, resumed after 2; checked 2026-12-06; the config's settings changed since: check again)"
    )
