"""Every file and folder name of a study, in one place (torch-free).

::

    <checkpoints_dir>/<experiment>/tune/<study>/
        tune.json             the frozen description of the study (space, sampler, seeds, ...)
        journal.log           Optuna's journal (the default storage)
        .driver.lock          held by the one driver process of the study
        trial_0003/trial.json          trial 3 as the storage knows it (rebuilds a lost study)
        trial_0003/seed_<S>/<AGENT>/   trial 3's run of each tuning seed: an ordinary run
        final/seed_<S>/<AGENT>/ and <AGENT>_tuned/   --final: base and best entry on the test seeds
        trials.csv  best.yaml  importance.png  history.png   the report
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TUNE_DIR = "tune"
RECORD_FILE = "tune.json"
JOURNAL_FILE = "journal.log"
DRIVER_LOCK = "driver"  # AgentLock name: .driver.lock
FINAL_DIR = "final"
_TRIAL_DIR = re.compile(r"trial_\d{4,}")  # trial_dir_name's names: four digits, more past trial 9999


def trial_dir_name(index: int) -> str:
    """``trial_0003``: the experiment folder of the study's trial 3 (its seeds' runs below)."""
    return f"trial_{index:04d}"


def tuned_agent_name(agent: str) -> str:
    """The name of the best entry beside the base entry (best.yaml, --final)."""
    return f"{agent}_tuned"


@dataclass(frozen=True)
class StudyLayout:
    experiment: str  # the experiment the study belongs to
    root: Path  # <checkpoints_dir>/<experiment>/tune/<study>

    @classmethod
    def of(cls, checkpoints_dir: str | Path, experiment: str, study: str) -> StudyLayout:
        return cls(experiment, Path(checkpoints_dir) / experiment / TUNE_DIR / study)

    @property
    def record(self) -> Path:
        return self.root / RECORD_FILE

    @property
    def journal(self) -> Path:
        return self.root / JOURNAL_FILE

    def trial_folder(self, index: int) -> Path:
        """Trial ``index``'s folder: its ``trial.json`` and its seeds' runs."""
        return self.root / trial_dir_name(index)

    def trial_folders(self) -> list[Path]:
        """The study's trial folders on disk, by index."""
        found = [path for path in self.root.glob("trial_*") if path.is_dir() and _TRIAL_DIR.fullmatch(path.name)]
        return sorted(found, key=lambda path: int(path.name.removeprefix("trial_")))

    def trial_experiment(self, index: int) -> str:
        """The ``experiment`` of trial ``index``'s config: its folder below the checkpoints dir."""
        return f"{self.root_experiment}/{trial_dir_name(index)}"

    @property
    def final_experiment(self) -> str:
        return f"{self.root_experiment}/{FINAL_DIR}"

    @property
    def root_experiment(self) -> str:
        return f"{self.experiment}/{TUNE_DIR}/{self.root.name}"

    @property
    def trials_csv(self) -> Path:
        return self.root / "trials.csv"

    @property
    def best_yaml(self) -> Path:
        return self.root / "best.yaml"

    @property
    def importance_png(self) -> Path:
        return self.root / "importance.png"

    @property
    def history_png(self) -> Path:
        return self.root / "history.png"
