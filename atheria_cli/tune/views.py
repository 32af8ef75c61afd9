"""``--trial N`` of the reading commands: the config that addresses one trial's runs (torch-free).

A trial's runs are an ordinary multi-seed experiment (``<experiment>/tune/<study>/trial_000N``
with the tuning seeds), so ``history``, ``status`` and ``compare`` read them unchanged once
the config names that experiment and the study's base agent alone.
"""

from __future__ import annotations

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import UsageError
from atheria_cli.run.layout import seeds_in
from atheria_cli.tune.layout import StudyLayout


def trial_view(config: ExperimentConfig, trial: int) -> ExperimentConfig:
    """The experiment of trial ``trial`` of the config's study; exit 2 when it has no runs."""
    tune = config.tune
    if tune is None:
        raise UsageError("--trial needs a config with a tune: section (the study whose trial to read)")
    layout = StudyLayout.of(config.checkpoints_dir, config.experiment, tune.study)
    view = config.model_copy(
        update={
            "experiment": layout.trial_experiment(trial),
            "seeds": tune.seeds,
            "agents": {tune.agent: config.agents[tune.agent].model_copy(update={"seed": None})},
            "tune": None,
        }
    )
    if not seeds_in(view.run_dir):
        found = sorted(path.name for path in layout.root.glob("trial_*")) if layout.root.is_dir() else []
        known = f"its trials: {', '.join(found)}" if found else "it has no trials yet"
        raise UsageError(f"--trial {trial}: the study {tune.study} has no runs in {view.run_dir}; {known}")
    return view
