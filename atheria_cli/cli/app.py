"""The ``atheria`` Typer app: the command table, and errors mapped to exit codes.

Every failure is one line on stderr, ``atheria: error: ...``; bad input exits 2, a runtime
failure 1, an interrupt 130. Tracebacks are for bugs only.

Commands are imported lazily (hatch's ``LazyGroup``): :data:`COMMANDS` names each command's
function and holds its one-line help, so ``atheria --help`` lists every command without
importing one, and ``atheria history`` imports the history module alone, not train's or
export's. Adding a command is one entry in :data:`COMMANDS`.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info
from typer.models import CommandInfo

from atheria_cli import __version__
from atheria_cli.cli import collect_from_here
from atheria_cli.errors import AtheriaError


class LazyCommand(NamedTuple):
    """A command of the table: where its function is, and what ``atheria --help`` says of it."""

    target: str  # "package.module:function"; the function's parameters are its options, as in Typer
    summary: str  # the first paragraph of the function's docstring (a test keeps the two equal)


# In the order `atheria --help` lists them: the order a user needs them, from the first training
# to the housekeeping, then the newer commands; not the order their modules happen to be imported in.
COMMANDS: dict[str, LazyCommand] = {
    "train": LazyCommand("atheria_cli.cli.train:train", "Train every agent of the experiment for N more complete episodes."),
    "history": LazyCommand(
        "atheria_cli.cli.history:history",
        "Sessions, per-episode records and per-session convergence of one agent's run (one row per seed without --seed).",
    ),
    "status": LazyCommand(
        "atheria_cli.cli.status:status",
        "Episodes, timesteps, main metric, last checkpoint, disk use and resumability of every agent (and seed).",
    ),
    "compare": LazyCommand(
        "atheria_cli.cli.compare:compare",
        "Mean ± std of each agent's last N episodes, and its improvement over the config's baseline.",
    ),
    "eval": LazyCommand(
        "atheria_cli.cli.evaluate:evaluate_command",
        "Run deterministic episodes on freshly seeded environments and summarize them.",
    ),
    "export": LazyCommand(
        "atheria_cli.cli.export:export_command",
        "Export trained policies (verified against predict) or trainers' export_module() (against eager).",
    ),
    "export-jit": LazyCommand(
        "atheria_cli.cli.export_jit:export_jit",
        "Export trained policies to TorchScript: raw observations in, environment actions out.",
    ),
    "verify": LazyCommand(
        "atheria_cli.cli.verify:verify",
        "Check every checkpoint, replay segment, snapshot and JSON file of a run; exit 1 on any problem.",
    ),
    "prune": LazyCommand(
        "atheria_cli.cli.verify:prune", "Apply the config's train.keep and train.snapshots.keep retention to existing runs."
    ),
    "report": LazyCommand(
        "atheria_cli.cli.report:report",
        "Comparison, learning curves, sessions, checkpoints, exports and config of the experiment in one document.",
    ),
    "tune": LazyCommand(
        "atheria_cli.cli.tune:tune",
        "Search the hyperparameters of one agent; every trial is an ordinary, resumable run per seed.",
    ),
}


class _Listed(TyperCommand):
    """A table command not imported yet: its name and one-line help, for the group's help and
    for "did you mean" suggestions. Resolving it to run imports it (:meth:`AtheriaGroup.resolve_command`)."""


class AtheriaCommand(TyperCommand):
    """A Typer command that turns the garbage collector back on as it runs
    (:func:`atheria_cli.cli.collect_from_here`)."""

    def invoke(self, ctx: Any) -> Any:
        collect_from_here()
        return super().invoke(ctx)


class AtheriaGroup(TyperGroup):
    """The commands of :data:`COMMANDS`, each imported when it runs or shows its help; and
    non-standalone mode, so every error passes through :func:`report`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        listed = {name: _Listed(name, help=entry.summary) for name, entry in COMMANDS.items()}
        self.commands = {**listed, **{name: command for name, command in self.commands.items() if name not in listed}}

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and isinstance(self.commands.get(args[0]), _Listed):
            self.commands[args[0]] = load_command(args[0])
        return super().resolve_command(ctx, args)

    # click types main() as two overloads (standalone or not); this override serves both.
    def main(  # type: ignore[override]
        self, args: Any = None, prog_name: Any = None, complete_var: Any = None, standalone_mode: bool = True, **extra: Any
    ) -> Any:
        try:
            code = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:
            code = report(exc.format_message(), exc.exit_code)
        except typer.Abort:
            code = report("interrupted", 130)
        except AtheriaError as exc:
            code = report(exc.message, exc.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


def load_command(name: str) -> Any:
    """The click command of table entry ``name``, built by Typer from its function."""
    module_name, _, function_name = COMMANDS[name].target.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    return get_command_from_info(
        CommandInfo(name=name, callback=function, cls=AtheriaCommand),
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
    )


def report(message: str, exit_code: int) -> int:
    from atheria_cli.cli.console import err_console  # Rich loads only where something is drawn

    first_line = " ".join(message.split())
    err_console.print(f"atheria: error: {first_line}", markup=False, highlight=False, soft_wrap=True)
    return exit_code


app = typer.Typer(
    cls=AtheriaGroup,
    name="atheria",
    help="Resumable, per-episode training of Stable-Baselines3 agents from a YAML experiment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"atheria {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Resumable, per-episode training of Stable-Baselines3 agents from a YAML experiment."""


def main() -> None:
    app()
