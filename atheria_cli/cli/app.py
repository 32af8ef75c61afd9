"""The ``atheria`` Typer app: registers the commands and maps errors to exit codes.

Every failure is one line on stderr, ``atheria: error: ...``; bad input exits 2, a runtime
failure 1, an interrupt 130. Tracebacks are for bugs only.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from atheria_cli import __version__
from atheria_cli.cli.console import err_console
from atheria_cli.errors import AtheriaError

# The order `atheria --help` lists the commands in: the order a user needs them, from the first
# training to the housekeeping, not the order their modules happen to be imported in.
COMMAND_ORDER = ("train", "history", "status", "compare", "eval", "export", "export-jit", "verify", "prune")


class AtheriaGroup(TyperGroup):
    """Runs commands in non-standalone mode so every error passes through :func:`report`."""

    def list_commands(self, ctx: Any) -> list[str]:
        """The commands in :data:`COMMAND_ORDER`; one missing from it comes last."""
        rank = {name: index for index, name in enumerate(COMMAND_ORDER)}
        return sorted(super().list_commands(ctx), key=lambda name: rank.get(name, len(rank)))

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


def report(message: str, exit_code: int) -> int:
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


def _register() -> None:
    from atheria_cli.cli import compare, evaluate, export, export_jit, history, status, train, verify  # noqa: F401  (commands register themselves on import)  # noqa: F401


_register()


def main() -> None:
    app()
