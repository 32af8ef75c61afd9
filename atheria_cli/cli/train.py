"""``atheria train``: parse, call the training core, render."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from atheria_cli.cli.console import err_console
from atheria_cli.cli.render import ProgressObserver, render_summary
from atheria_cli.config import load_config, resolve_config_path
from atheria_cli.run.seeds import parse_seeds
from atheria_cli.training.job_server import start_job_server

if TYPE_CHECKING:
    from atheria_cli.training.jobs import JobsOutcome


def train(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Experiment YAML (default: ./configs/default.yaml, else the packaged default)."
    ),
    episodes: int | None = typer.Option(
        None, "--episodes", "-n", min=1, help="Episodes to add per agent (default: train.episodes)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue each agent from its latest checkpoint."),
    fresh: bool = typer.Option(False, "--fresh", help="Move existing runs aside (renamed with a timestamp) and start over."),
    agent: list[str] | None = typer.Option(None, "--agent", "-a", help="Train only this agent (repeatable)."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps (overrides the config)."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Seed of a new run (overrides the config)."),
    checkpoints_dir: Path | None = typer.Option(None, "--checkpoints-dir", help="Where runs are written (overrides the config)."),
    max_hours: float | None = typer.Option(
        None, "--max-hours", help="Stop cleanly, all committed, before this many hours (train.max_hours)."
    ),
    allow_config_change: bool = typer.Option(
        False, "--allow-config-change", help="Resume even though env, seed, agent or schedule settings changed."
    ),
    until_timesteps: int | None = typer.Option(
        None,
        "--until-timesteps",
        min=1,
        help="End at the first episode end at or after this many total timesteps (train.until_timesteps); "
        "without --episodes, no episode limit.",
    ),
    allow_import: bool = typer.Option(
        False,
        "--allow-import",
        help="Let zoo entries name code under stable_baselines3., sb3_contrib., gymnasium.wrappers., rl_zoo3.wrappers. "
        "(train.allow_import).",
    ),
    jobs: int | None = typer.Option(
        None, "--jobs", "-j", min=1, help="Train up to N (agent, seed) runs at once, one process each (train.jobs)."
    ),
    backend: str | None = typer.Option(
        None, "--backend", help="local, or ray: jobs on a Ray cluster (train.backend; the 'ray' extra)."
    ),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster: auto, HOST:PORT or ray://HOST:10001; default a local Ray (train.address)."
    ),
    seeds: str | None = typer.Option(None, "--seeds", help="Run every agent once per seed: 0-4 or 0,3 (overrides seeds)."),
    verbose: bool = typer.Option(
        False, "--verbose", help="--backend ray: show Ray's own log lines too (always in <run>/ray-driver.log)."
    ),
    from_checkpoint: Path | None = typer.Option(
        None,
        "--from-checkpoint",
        metavar="RUN/AGENT/episode_XXXX.pt",
        help="Fork: start a new run of --agent NEW from this checkpoint's full training state, under NEW's config. "
        "For a trainer agent, also another program's checkpoint FILE.pth (weights-only; not exact).",
    ),
    from_sb3: Path | None = typer.Option(
        None,
        "--from-sb3",
        metavar="FILE.zip",
        help="Adopt: start a new run of --agent NAME from the weights of a zip SB3's model.save wrote (never unpickled).",
    ),
    from_sb3_replay: Path | None = typer.Option(
        None, "--from-sb3-replay", metavar="FILE.pkl", help="With --from-sb3: SB3's replay-buffer file (needs --trust-pickle)."
    ),
    trust_pickle: bool = typer.Option(
        False, "--trust-pickle", help="Import --from-sb3-replay although it is a pickle (loading it runs any code it names)."
    ),
) -> None:
    """Train every agent of the experiment for N more complete episodes."""
    overrides = {
        "device": device,
        "seed": seed,
        "checkpoints_dir": str(checkpoints_dir) if checkpoints_dir else None,
        "train.allow_import": True if allow_import else None,
        "seeds": list(parse_seeds(seeds)) if seeds is not None else None,
    }
    experiment = load_config(resolve_config_path(config), overrides)
    # Before torch loads here: the job server's own imports then overlap this process's.
    start_job_server(experiment.train.jobs if jobs is None else jobs, backend or experiment.train.backend)
    # Torch and SB3 load only once the command is known to be `train`.
    from atheria_cli.training.jobs import plan_jobs, run_jobs

    plan = plan_jobs(
        experiment,
        jobs=jobs,
        backend=backend,
        address=address,
        verbose=verbose,
        agents=agent or (),
        episodes=episodes,
        resume=resume,
        fresh=fresh,
        allow_config_change=allow_config_change,
        max_hours=max_hours,
        until_timesteps=until_timesteps,
        from_checkpoint=from_checkpoint,
        from_sb3=from_sb3,
        from_sb3_replay=from_sb3_replay,
        trust_pickle=trust_pickle,
    )
    with ProgressObserver() as progress:  # every bar is gone before the table is printed
        outcome = run_jobs(plan, progress)
    for replicate, results in outcome.results:
        if results:
            render_summary(replicate, results)
    for failure in outcome.failed:
        err_console.print(
            f"atheria: error: job {failure}; continue it with --resume", markup=False, highlight=False, soft_wrap=True
        )
    if outcome.stopped_by in ("SIGINT", "SIGTERM"):
        where = _committed(plan.jobs, outcome)
        err_console.print(f"atheria: stopped by {outcome.stopped_by}: {where}; continue with --resume", markup=False)
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


def _committed(jobs: int, outcome: JobsOutcome) -> str:
    if jobs > 1:
        return f"{outcome.committed} run(s) committed a checkpoint" if outcome.committed else "nothing to commit"
    results = [result for _, replicate in outcome.results for result in replicate]
    last = results[-1].last_checkpoint if results else None
    return f"checkpoint {last.file} committed" if last else "nothing to commit"
