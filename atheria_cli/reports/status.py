"""``atheria status``: one row per agent (per agent and seed in a multi-seed experiment), what
is committed and whether it can resume."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from atheria_cli.config import ExperimentConfig, training_settings_sha256
from atheria_cli.metrics import Quantity, best_record, main_quantity, value_of
from atheria_cli.reports.runs import AgentRun, read_run
from atheria_cli.run.formats import ExactnessVerdict
from atheria_cli.run.seeds import run_seeds, seed_config
from atheria_cli.run.store import RunState


@dataclass(frozen=True)
class StatusRow:
    agent: str
    state: RunState
    episodes: int
    timesteps: int
    last_value: float | None
    best_value: float | None
    best_episode: int | None
    last_checkpoint: str | None
    disk_bytes: int
    resumable: bool
    # Why the run cannot be resumed (None when it can).
    resume_problem: str | None
    seed: int | None = None  # the seed's run, in a multi-seed experiment
    # The last `verify --resume-exactness`, "exact (4 episodes, resumed after 2)"; None: never checked.
    resume_exactness: str | None = None


@dataclass(frozen=True)
class StatusReport:
    experiment: str
    run_dir: str
    metric: Quantity
    agents: list[StatusRow]  # each agent's row; each agent's row per seed, seed by seed, under seeds
    seeds: list[int] = field(default_factory=list)  # empty for a single-seed experiment


def status_report(config: ExperimentConfig) -> StatusReport:
    """Every agent's row; in a multi-seed experiment every (agent, seed) row, agent by agent."""
    metric = main_quantity(config)
    seeds = run_seeds(config)
    if not seeds:
        rows = [_row(config, agent, metric) for agent in config.agents]
    else:
        replicates = {seed: seed_config(config, seed) for seed in seeds}
        rows = [_row(replicates[seed], agent, metric, seed) for agent in config.agents for seed in seeds]
    return StatusReport(config.experiment, str(config.run_dir), metric, rows, seeds)


def _row(config: ExperimentConfig, agent: str, metric: Quantity, seed: int | None = None) -> StatusRow:
    run = read_run(config, agent)
    # The settings' fingerprint only where a verdict is held against it (status is on the read path).
    settings = training_settings_sha256(config, agent) if run.exactness is not None else None
    return status_row(run, metric, seed, settings)


def status_row(run: AgentRun, metric: Quantity, seed: int | None = None, settings: str | None = None) -> StatusRow:
    """``run``'s row; ``settings``: the fingerprint of the agent's training settings in the config
    read now, which a resume-exactness verdict is held against."""
    disk = folder_bytes(run.folder)
    latest = run.latest
    if latest is None:
        why = "no run" if run.state is RunState.EMPTY else "no committed checkpoint"
        return StatusRow(run.agent, run.state, 0, 0, None, None, None, None, disk, False, why, seed)
    best = best_record(run.records, metric)
    problem = resume_problem(run.folder / latest.file, latest.size)
    return StatusRow(
        agent=run.agent,
        state=run.state,
        episodes=latest.episode,
        timesteps=latest.timesteps,
        last_value=value_of(run.records[-1], metric.name) if run.records else None,
        best_value=value_of(best, metric.name) if best is not None else None,
        best_episode=best.episode if best is not None else None,
        last_checkpoint=str(run.folder / latest.file),
        disk_bytes=disk,
        resumable=problem is None,
        resume_problem=problem,
        seed=seed,
        resume_exactness=exactness_summary(run.exactness, settings) if run.exactness is not None else None,
    )


def exactness_summary(verdict: ExactnessVerdict, settings: str | None = None) -> str:
    """One verdict of ``verify --resume-exactness`` in words: what it found, on what, when, and
    whether the config's training settings (fingerprint ``settings``) changed since."""
    day = verdict.checked[:10]
    found = f": {verdict.difference}" if verdict.difference else ""
    stale = settings is not None and verdict.settings_sha256 is not None and verdict.settings_sha256 != settings
    since = "; the config's settings changed since: check again" if stale else ""
    return f"{verdict.verdict}{found} ({verdict.episodes} episodes, resumed after {verdict.split}; checked {day}{since})"


def resume_problem(checkpoint: Path, recorded_size: int) -> str | None:
    """Cheap check (no sha256: that is ``train --resume``'s job): present, with its recorded size."""
    try:
        size = checkpoint.stat().st_size
    except FileNotFoundError:
        return f"{checkpoint.name} is missing"
    if size != recorded_size:
        return f"{checkpoint.name} is {size} bytes, metadata.json records {recorded_size}"
    return None


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder`` (0 when it does not exist)."""
    total = 0
    for directory, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except FileNotFoundError:  # removed while we walk (a commit pruning replay segments)
                pass
    return total
