"""The pruner judges a retried trial as in the study that was never interrupted (real Optuna)."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from atheria_cli.tune.pruning import WithoutInterrupted

RUNG = "completed_rung_0"


def _study(pruner: Any, *, with_interrupted_attempt: bool) -> optuna.Study:
    """Two complete trials that reached rung 0 with 1.0 and 3.0; optionally the interrupted
    first attempt of the trial being retried, which had reached rung 0 with 2.0."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="minimize", pruner=pruner)
    distribution = {"x": FloatDistribution(0.0, 1.0)}
    for value in (1.0, 3.0):
        study.add_trial(
            create_trial(
                value=value,
                params={"x": 0.5},
                distributions=distribution,
                system_attrs={RUNG: value},
                intermediate_values={1: value},
            )
        )
    if with_interrupted_attempt:
        attempt = create_trial(
            state=TrialState.FAIL,
            params={"x": 0.5},
            distributions=distribution,
            system_attrs={RUNG: 2.0},
            user_attrs={"interrupted": True},
        )
        study.add_trial(attempt)
    return study


def _retry_pruned(study: optuna.Study) -> bool:
    trial = study.ask()
    trial.report(2.0, 1)  # the retry reaches rung 0 with the interrupted attempt's value
    return trial.should_prune()


def halving() -> optuna.pruners.BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)


def test_halving_ignores_the_interrupted_attempt_of_a_retried_trial() -> None:
    uninterrupted = _retry_pruned(_study(halving(), with_interrupted_attempt=False))
    assert _retry_pruned(_study(WithoutInterrupted(halving()), with_interrupted_attempt=True)) == uninterrupted
    # Plain halving counts the attempt's 2.0 as a competitor and promotes the retry instead.
    assert _retry_pruned(_study(halving(), with_interrupted_attempt=True)) != uninterrupted
