"""The study's pruner sees the study without its interrupted attempts.

An attempt that a stopped driver left RUNNING is marked FAIL (``interrupted``) and retried with
the same parameters (:mod:`atheria_cli.tune.driver`). The median pruner reads COMPLETE trials
only, but successive halving reads the rung values of every trial, the interrupted attempt's
included, which the retry then meets as a second copy of its own value: the verdict could
differ from the uninterrupted study's. :class:`WithoutInterrupted` hands the wrapped pruner a
view of the study that leaves those attempts out (the way Optuna's own Hyperband pruner hands
each bracket a filtered study). Imports Optuna: loaded only when a study is opened.
"""

from __future__ import annotations

from collections.abc import Container

from optuna.pruners import BasePruner
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState


class _StudyWithoutInterrupted(Study):
    def __init__(self, study: Study) -> None:
        super().__init__(study_name=study.study_name, storage=study._storage, sampler=study.sampler, pruner=study.pruner)

    def get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        trials = super().get_trials(deepcopy=deepcopy, states=states)
        return [trial for trial in trials if not trial.user_attrs.get("interrupted")]

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


class WithoutInterrupted(BasePruner):
    """``inner``, asked about the study without its interrupted attempts."""

    def __init__(self, inner: BasePruner) -> None:
        self.inner = inner

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        return self.inner.prune(_StudyWithoutInterrupted(study), trial)
