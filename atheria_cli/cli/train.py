"""``atheria train``: parse, call the training core, render."""

from __future__ import annotations

from pathlib import Path

import typer

from atheria_cli.cli.app import app
from atheria_cli.cli.console import err_console
from atheria_cli.cli.render import ProgressObserver, render_summary
from atheria_cli.config import load_config, resolve_config_path


@app.command()
def train(
    config: Path | None = typer.Option(None, "--config", "-c", help="Experiment YAML (default: ./configs/default.yaml, else the packaged default)."),
    episodes: int | None = typer.Option(None, "--episodes", "-n", min=1, help="Episodes to add per agent (default: train.episodes)."),
    resume: bool = typer.Option(False, "--resume", help="Continue each agent from its latest checkpoint."),
    fresh: bool = typer.Option(False, "--fresh", help="Move existing runs aside (renamed with a timestamp) and start over."),
    agent: list[str] | None = typer.Option(None, "--agent", "-a", help="Train only this agent (repeatable)."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (overrides the config)."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Seed of a new run (overrides the config)."),
    checkpoints_dir: Path | None = typer.Option(None, "--checkpoints-dir", help="Where runs are written (overrides the config)."),
    max_hours: float | None = typer.Option(None, "--max-hours", help="Stop cleanly, all committed, before this many hours (train.max_hours)."),
    allow_config_change: bool = typer.Option(False, "--allow-config-change", help="Resume even though env, seed, agent or schedule settings changed."),
    from_checkpoint: Path | None = typer.Option(
        None, "--from-checkpoint", metavar="RUN/AGENT/episode_XXXX.pt",
        help="Fork: start a new run of --agent NEW from this checkpoint's full training state, under NEW's config.",
    ),
) -> None:
    """Train every agent of the experiment for N more complete episodes."""
    # Torch and SB3 load only once the command is known to be `train`.
    from atheria_cli.training.planning import plan_training
    from atheria_cli.training.session import run_training

    overrides = {"device": device, "seed": seed, "checkpoints_dir": str(checkpoints_dir) if checkpoints_dir else None}
    experiment = load_config(resolve_config_path(config), overrides)
    plan = plan_training(
        experiment, agents=agent or (), episodes=episodes, resume=resume, fresh=fresh,
        allow_config_change=allow_config_change, max_hours=max_hours, from_checkpoint=from_checkpoint,
    )
    outcome = run_training(plan, ProgressObserver())
    render_summary(plan, outcome.results)
    if outcome.exit_code:
        last = outcome.results[-1].last_checkpoint if outcome.results else None
        where = f"checkpoint {last.file} committed" if last else "nothing to commit"
        err_console.print(f"atheria: stopped by {outcome.stopped_by}: {where}; continue with --resume", markup=False)
        raise typer.Exit(outcome.exit_code)
