"""``atheria export-jit``: ``atheria export --format torchscript`` under the name the README promises."""

from __future__ import annotations

from pathlib import Path

import typer


def export_jit(
    agents: list[str] | None = typer.Argument(None, help="Agents to export (default: every agent of the experiment)."),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Experiment YAML (default: ./configs/default.yaml, else the packaged default)."
    ),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last, best (main metric) or an episode number."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="File to write (one agent only; default <agent dir>/model_jit.pt)."
    ),
    verify: bool = typer.Option(
        True,
        "--verify/--no-verify",
        help="Compare with model.predict on 256 observations (a trainer's module: with itself, eager, on 8 sampled inputs); fail above 1e-5.",
    ),
    onnx: bool = typer.Option(
        False, "--onnx", help="Also export --format onnx (model_onnx.onnx, or <output stem>_onnx.onnx; needs the onnx extra)."
    ),
    checkpoints_dir: Path | None = typer.Option(None, "--checkpoints-dir", help="Where runs are (overrides the config)."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="The seed's run, in a multi-seed experiment."),
) -> None:
    """Export trained policies to TorchScript: raw observations in, environment actions out."""
    from atheria_cli.cli.export import run_export  # here: importing cli.export registers the commands first

    run_export(
        agents, config, checkpoint, output, verify, checkpoints_dir, ["torchscript", "onnx"] if onnx else ["torchscript"], seed
    )
