"""``atheria verify`` and ``atheria prune``: parse, call the integrity core, render."""

from __future__ import annotations

from pathlib import Path

import typer

from atheria_cli.cli.console import console, err_console
from atheria_cli.config import ExperimentConfig, load_config, resolve_config_path
from atheria_cli.run.seeds import every_replicate


def verify(
    agents: list[str] | None = typer.Argument(None, help="Agents to check (default: every agent of the experiment)."),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Experiment YAML (default: ./configs/default.yaml, else the packaged default)."
    ),
    checkpoints_dir: Path | None = typer.Option(None, "--checkpoints-dir", help="Where runs are (overrides the config)."),
    resume_exactness: bool = typer.Option(
        False,
        "--resume-exactness",
        help="Instead: train each agent from scratch in a scratch folder, T episodes at once and N then --resume, and compare.",
    ),
    episodes: int = typer.Option(4, "--episodes", help="With --resume-exactness: T, the episodes of each run."),
    split: int | None = typer.Option(
        None, "--split", help="With --resume-exactness: N, the episodes before the resume (T // 2)."
    ),
    repeat: bool = typer.Option(
        False, "--repeat", help="With --resume-exactness: a second uninterrupted run, to tell lost state from nondeterminism."
    ),
    allow_import: bool = typer.Option(
        False, "--allow-import", help="With --resume-exactness: allow a trainer path to be imported (as train's)."
    ),
) -> None:
    """Check every checkpoint, replay segment, snapshot and JSON file of a run; exit 1 on any problem."""
    from atheria_cli.training.planning import select_agents

    overrides = {
        "checkpoints_dir": str(checkpoints_dir) if checkpoints_dir else None,
        "train.allow_import": True if allow_import else None,
    }
    experiment = load_config(resolve_config_path(config), overrides)
    if resume_exactness:
        from atheria_cli.training.exactness import check_split

        split = check_split(episodes, split)  # before anything trains
    failed = False
    for prefix, replicate in every_replicate(experiment):
        for agent in select_agents(replicate, agents or []):
            if resume_exactness:
                failed = _check_exactness(replicate, agent, prefix, episodes, split, repeat) or failed
            else:
                failed = _verify_one(replicate, agent, prefix) or failed
    if failed:
        raise typer.Exit(1)


def _check_exactness(
    experiment: ExperimentConfig, agent: str, prefix: str, episodes: int, split: int | None, repeat: bool
) -> bool:
    """Print one agent's resume-exactness verdict and record it in its run; True when not exact."""
    from atheria_cli.training.exactness import check_resume_exactness, record_verdict

    assert split is not None  # check_split chose it
    label = f"{prefix}{agent}"
    err_console.print(
        f"{label}: {episodes} episodes uninterrupted vs {split}, then --resume for {episodes - split} in a fresh process",
        markup=False,
    )
    report = check_resume_exactness(experiment, agent, episodes=episodes, split=split, repeat=repeat)
    console.print(f"{label}: {report.verdict}", markup=False)
    for line in [*report.differences, *report.notes]:
        console.print(f"  {line}", markup=False)
    skipped = record_verdict(experiment, report)
    if skipped is not None:
        err_console.print(f"  note: verdict not recorded: {skipped}", markup=False)
    return not report.exact


def _verify_one(experiment: ExperimentConfig, agent: str, prefix: str) -> bool:
    """Print one run's verification; True when it found problems."""
    from atheria_cli.training.integrity import verify_agent

    report = verify_agent(experiment, agent)
    label = f"{prefix}{agent}"
    if report.no_run:
        console.print(f"{label}: no run", markup=False)
        return False
    status = "ok" if not report.problems else f"{len(report.problems)} problem(s)"
    snapshots = f", {report.snapshots} snapshot(s)" if report.snapshots else ""  # runs without: the line as it always was
    console.print(f"{label}: {report.checkpoints} checkpoint(s){snapshots}, {status}", markup=False)
    for problem in report.problems:
        console.print(f"  {problem}", markup=False)
    for leftover in report.leftovers:
        err_console.print(
            f"  note: {leftover} is not committed (left by an interrupted save; removed at the next commit)", markup=False
        )
    return bool(report.problems)


def prune(
    agents: list[str] | None = typer.Argument(None, help="Agents to prune (default: every agent of the experiment)."),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Experiment YAML (default: ./configs/default.yaml, else the packaged default)."
    ),
    checkpoints_dir: Path | None = typer.Option(None, "--checkpoints-dir", help="Where runs are (overrides the config)."),
) -> None:
    """Apply the config's train.keep and train.snapshots.keep retention to existing runs."""
    from atheria_cli.errors import UsageError
    from atheria_cli.training.integrity import prune_agent
    from atheria_cli.training.planning import select_agents

    experiment = load_config(resolve_config_path(config), {"checkpoints_dir": str(checkpoints_dir) if checkpoints_dir else None})
    snapshots = experiment.train.snapshots
    if experiment.train.keep is None and (snapshots is None or snapshots.keep is None):
        raise UsageError("the config has no train.keep policy: every checkpoint is kept")
    for prefix, replicate in every_replicate(experiment):
        for agent in select_agents(replicate, agents or []):
            pruned = prune_agent(replicate, agent)
            if experiment.train.keep is not None:
                console.print(f"{prefix}{agent}: removed {_files(pruned.checkpoints, 'checkpoint')}", markup=False)
            if pruned.snapshots:
                console.print(f"{prefix}{agent}: removed {_files(pruned.snapshots, 'snapshot')}", markup=False)


def _files(names: list[str], kind: str) -> str:
    return f"{len(names)} {kind}(s){': ' + ', '.join(names) if names else ''}"
