"""``atheria export-jit``: parse, call the export core, render."""

from __future__ import annotations

from pathlib import Path

import typer

from atheria_cli.cli.app import app
from atheria_cli.cli.console import console
from atheria_cli.config import load_config, resolve_config_path
from atheria_cli.run.seeds import config_for_seed


@app.command("export-jit")
def export_jit(
    agents: list[str] | None = typer.Argument(None, help="Agents to export (default: every agent of the experiment)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Experiment YAML (default: ./configs/default.yaml, else the packaged default)."),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last, best (main metric) or an episode number."),
    output: Path | None = typer.Option(None, "--output", "-o", help="File to write (one agent only; default <agent dir>/model_jit.pt)."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Compare with model.predict on 256 observations; fail above 1e-5."),
    onnx: bool = typer.Option(False, "--onnx", help="Also write an ONNX file (needs the onnx extra)."),
    checkpoints_dir: Path | None = typer.Option(None, "--checkpoints-dir", help="Where runs are (overrides the config)."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="The seed's run, in a multi-seed experiment."),
) -> None:
    """Export trained policies to TorchScript: raw observations in, environment actions out."""
    from atheria_cli.deploy.export import export_experiment

    overrides = {"checkpoints_dir": str(checkpoints_dir) if checkpoints_dir else None}
    experiment = config_for_seed(load_config(resolve_config_path(config), overrides), seed)
    for result in export_experiment(experiment, agents or [], checkpoint, output, verify, onnx):
        check = (
            f"verified on {result.verification.samples} observations, max |difference| {result.verification.max_abs_diff:.2e}"
            if result.verification
            else "not verified"
        )
        console.print(f"{result.agent}: {result.path} from {result.checkpoint}, {check}", markup=False, highlight=False)
        if result.onnx:
            console.print(f"{result.agent}: {result.onnx}", markup=False, highlight=False)
