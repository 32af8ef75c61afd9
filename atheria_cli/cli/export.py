"""``atheria export``: parse, call the export core, render."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from atheria_cli.cli.console import console
from atheria_cli.config import load_config, resolve_config_path
from atheria_cli.run.seeds import config_for_seed

if TYPE_CHECKING:
    from atheria_cli.deploy.export import ExportResult

FORMAT_HELP = (
    "torchscript (torch.jit, deprecated by torch), exported (torch.export .pt2), aoti (AOTInductor package), onnx, "
    "sb3 (SB3's own model.save zip, for ALGO.load)."
)


def export_command(
    agents: list[str] | None = typer.Argument(None, help="Agents to export (default: every agent of the experiment)."),
    format_name: str = typer.Option("exported", "--format", "-f", help=FORMAT_HELP),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Experiment YAML (default: ./configs/default.yaml, else the packaged default)."
    ),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last, best (main metric) or an episode number."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="File to write (one agent only; default <agent dir>/model_<format>.<ext>)."
    ),
    verify: bool = typer.Option(
        True,
        "--verify/--no-verify",
        help="Compare with model.predict on 256 observations (a trainer's module: with itself, eager, on 8 sampled inputs); fail above 1e-5.",
    ),
    checkpoints_dir: Path | None = typer.Option(None, "--checkpoints-dir", help="Where runs are (overrides the config)."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="The seed's run, in a multi-seed experiment."),
    with_replay: bool = typer.Option(
        False, "--with-replay", help="--format sb3: also SB3's replay-buffer file (save_replay_buffer), beside the zip."
    ),
) -> None:
    """Export trained policies (verified against predict) or trainers' export_module() (against eager).

    A policy takes raw observations and returns environment actions; a trainer's module takes
    and returns what its forward does.
    """
    run_export(agents, config, checkpoint, output, verify, checkpoints_dir, [format_name], seed, with_replay)


def run_export(
    agents: list[str] | None,
    config: Path | None,
    checkpoint: str,
    output: Path | None,
    verify: bool,
    checkpoints_dir: Path | None,
    formats: list[str],
    seed: int | None = None,
    with_replay: bool = False,
) -> None:
    from atheria_cli.deploy.export import export_experiment

    overrides = {"checkpoints_dir": str(checkpoints_dir) if checkpoints_dir else None}
    experiment = config_for_seed(load_config(resolve_config_path(config), overrides), seed)
    render(export_experiment(experiment, agents or [], checkpoint, output, verify, formats, with_replay))


def render(results: Sequence[ExportResult]) -> None:
    for result in results:
        check = (
            f"verified on {result.verification.samples} {result.verification.counted}, "
            f"max |difference| {result.verification.max_abs_diff:.2e}"
            if result.verification
            else "not verified"
        )
        console.print(
            f"{result.agent}: {result.path} ({result.format}) from {result.checkpoint}, {check}", markup=False, highlight=False
        )
