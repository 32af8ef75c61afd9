"""``atheria eval``: parse, call the evaluation core, render."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import typer
from rich.table import Table

from atheria_cli.cli.app import app
from atheria_cli.cli.console import console
from atheria_cli.config import load_config, resolve_config_path


@app.command("eval")
def evaluate_command(
    agent: str = typer.Argument(..., help="The agent to evaluate."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Experiment YAML (default: ./configs/default.yaml, else the packaged default)."),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last, best (main metric) or an episode number."),
    episodes: int = typer.Option(5, "--episodes", "-n", min=1, help="Deterministic episodes to run."),
    seed: int = typer.Option(0, "--seed", min=0, help="Episode i resets with seed S+i."),
    jit: Path | None = typer.Option(None, "--jit", help="Evaluate this exported TorchScript file instead of the checkpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document and nothing else."),
    checkpoints_dir: Path | None = typer.Option(None, "--checkpoints-dir", help="Where runs are (overrides the config)."),
) -> None:
    """Run deterministic episodes on freshly seeded environments and summarize them."""
    from atheria_cli.evaluation import evaluate

    overrides = {"checkpoints_dir": str(checkpoints_dir) if checkpoints_dir else None}
    experiment = load_config(resolve_config_path(config), overrides)
    result = evaluate(experiment, agent, checkpoint=checkpoint, episodes=episodes, seed=seed, jit=jit)
    names = ["reward", *(metric.name for metric in experiment.env.metrics)]
    summary = {name: _stats(result.values(name)) for name in names}
    if as_json:
        document = {
            "agent": result.agent,
            "source": result.source,
            "episodes": [vars(episode) for episode in result.episodes],
            "summary": summary,
        }
        typer.echo(json.dumps(document, indent=2))
        return
    console.print(
        f"{result.agent} ({result.source}): {len(result.episodes)} deterministic episode(s), seeds {seed}–{seed + len(result.episodes) - 1}",
        markup=False,
    )
    table = Table()
    table.add_column("measure")
    table.add_column("mean ± std", justify="right")
    for name in names:
        stats = summary[name]
        table.add_row(name, "–" if stats["mean"] is None else f"{stats['mean']:.4g} ± {stats['std']:.3g}")
    console.print(table)


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "std": None}
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values)}
