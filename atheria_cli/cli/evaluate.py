"""``atheria eval``: parse, call the evaluation core, render."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from atheria_cli.cli.console import console
from atheria_cli.config import load_config, resolve_config_path
from atheria_cli.metrics import Goal, improvement, percent_of, quantities
from atheria_cli.run.seeds import config_for_seed


def evaluate_command(
    agent: str = typer.Argument(..., help="The agent to evaluate."),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Experiment YAML (default: ./configs/default.yaml, else the packaged default)."
    ),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last, best (main metric) or an episode number."),
    episodes: int | None = typer.Option(
        None, "--episodes", "-n", min=1, help="Deterministic episodes to run (default: train.eval.episodes, else 5)."
    ),
    seed: int | None = typer.Option(
        None, "--seed", min=0, help="Episode i resets with seed S+i (default: train.eval.seed, else 0)."
    ),
    jit: Path | None = typer.Option(None, "--jit", help="Evaluate this exported TorchScript file instead of the checkpoint."),
    export: Path | None = typer.Option(
        None, "--export", help="Evaluate this exported file (any format, from its sidecar) instead of the checkpoint."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document and nothing else."),
    checkpoints_dir: Path | None = typer.Option(None, "--checkpoints-dir", help="Where runs are (overrides the config)."),
    run_seed: int | None = typer.Option(
        None, "--run-seed", min=0, help="The seed's run, in a multi-seed experiment (--seed seeds the episodes)."
    ),
) -> None:
    """Run deterministic episodes on freshly seeded environments and summarize them.

    AGENT may also name a reference policy the environment offers (the building env's
    `heuristic` and `idle`); its result is kept for `atheria compare`. A trainer agent's
    checkpoint is evaluated by its trainer's evaluate(episodes, seed).
    """
    from atheria_cli.deploy.evaluation import evaluate

    overrides = {"checkpoints_dir": str(checkpoints_dir) if checkpoints_dir else None}
    experiment = load_config(resolve_config_path(config), overrides)
    if agent in experiment.agents:  # a reference policy is not trained per seed
        experiment = config_for_seed(experiment, run_seed, option="--run-seed")
    # By default the episodes of train.eval: a reference policy then plays the very weeks the
    # agents' evaluations played, and `compare` ranks them like with like.
    planned = experiment.train.eval
    episodes = episodes if episodes is not None else planned.episodes if planned else 5
    seed = seed if seed is not None else planned.seed if planned else 0
    result = evaluate(experiment, agent, checkpoint=checkpoint, episodes=episodes, seed=seed, jit=jit, export=export)
    goals = {quantity.name: quantity.goal for quantity in quantities(experiment)}
    summary = {name: result.summary(name) for name in goals}
    improvement = {
        name: _improvement(summary[name]["mean"], experiment.baseline[name], goals[name])
        for name in experiment.baseline
        if name in summary
    }
    if as_json:
        document = {
            "agent": result.agent,
            "source": result.source,
            "episodes": [vars(episode) for episode in result.episodes],
            "summary": summary,
            "baseline": dict(experiment.baseline),
            "improvement": improvement,
        }
        typer.echo(json.dumps(document, indent=2, default=str))
        return
    heading = (
        f"evaluate(episodes={episodes}, seed={seed}) of its trainer"
        if result.measured is not None
        else f"{len(result.episodes)} deterministic episode(s), seeds {seed}–{seed + len(result.episodes) - 1}"
    )
    console.print(f"{result.agent} ({result.source}): {heading}", markup=False)
    table = Table()
    table.add_column("measure")
    table.add_column("mean ± std", justify="right")
    if improvement:
        table.add_column("baseline", justify="right")
        table.add_column("improvement", justify="right")
    for name in goals:
        stats = summary[name]
        cells = [name, _mean_cell(stats)]
        if improvement:
            gain = improvement.get(name)
            cells += [f"{experiment.baseline[name]:.4g}" if name in experiment.baseline else "", _gain_cell(gain)]
        table.add_row(*cells)
    console.print(table)
    if result.recorded is not None:
        console.print(f"recorded for atheria compare: {result.recorded}", markup=False)


def _mean_cell(stats: dict[str, float | None]) -> str:
    """``mean ± std``; the mean alone where there is no spread (a trainer's evaluate)."""
    mean, std = stats["mean"], stats["std"]
    if mean is None:
        return "–"
    return f"{mean:.4g}" if std is None else f"{mean:.4g} ± {std:.3g}"


def _improvement(mean: float | None, baseline: float, goal: Goal) -> dict[str, float | None] | None:
    """How much better than the baseline, positive when better (lower for goal min)."""
    if mean is None:
        return None
    gain = improvement(mean, baseline, goal)
    return {"absolute": gain, "percent": percent_of(gain, baseline)}


def _gain_cell(gain: dict[str, float | None] | None) -> str:
    if gain is None or gain["absolute"] is None:
        return ""
    percent = "" if gain["percent"] is None else f" ({gain['percent']:+.1f} %)"
    return f"{gain['absolute']:+.4g}{percent}"
