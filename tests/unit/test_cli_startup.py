"""Start-up work a command does not need is not done: ``--version`` loads no CLI framework."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

CONSOLE_SCRIPT = "import sys; from atheria_cli.cli import main; sys.exit(main())"  # pyproject's [project.scripts]


def test_version_is_answered_before_typer_rich_and_pydantic_load() -> None:
    code = (
        "import sys; sys.argv = ['atheria', '--version']\n"
        "from atheria_cli.cli import main\n"
        "main()\n"
        "print(sorted(m for m in ('typer', 'rich', 'pydantic', 'yaml', 'torch', 'numpy') if m in sys.modules))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout == "atheria 0.1.0\n[]\n"


def test_the_console_script_still_runs_the_app() -> None:
    version = subprocess.run([sys.executable, "-c", CONSOLE_SCRIPT, "--version"], capture_output=True, text=True)
    assert (version.returncode, version.stdout, version.stderr) == (0, "atheria 0.1.0\n", "")
    unknown = subprocess.run([sys.executable, "-c", CONSOLE_SCRIPT, "--versio"], capture_output=True, text=True)
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.startswith("atheria: error: No such option: --versio")


def modules_after(argv: list[str]) -> list[str]:
    """The atheria command modules and heavy libraries imported by running ``atheria ARGV``."""
    code = (
        f"import sys; sys.argv = ['atheria', *{argv!r}]\n"
        "from atheria_cli.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "names = ('pydantic', 'yaml', 'torch', 'numpy') + tuple(f'atheria_cli.cli.{c}' for c in COMMAND_MODULES)\n"
        "print(sorted(m for m in names if m in sys.modules), file=sys.stderr)\n"
    )
    setup = f"COMMAND_MODULES = {COMMAND_MODULES!r}\n"
    completed = subprocess.run([sys.executable, "-c", setup + code], capture_output=True, text=True)
    return eval(completed.stderr.strip().splitlines()[-1])  # our own print of a list of str


COMMAND_MODULES = ("train", "history", "status", "compare", "evaluate", "export", "export_jit", "verify")


def test_help_lists_every_command_in_order_without_importing_one() -> None:
    assert modules_after(["--help"]) == []
    listed = subprocess.run([sys.executable, "-c", CONSOLE_SCRIPT, "--help"], capture_output=True, text=True, check=True)
    names = [line.split()[1] for line in listed.stdout.splitlines() if line.startswith("│ ") and not line[2:3].isspace()]
    commands = [name for name in names if not name.startswith("-")]
    assert commands[:9] == ["train", "history", "status", "compare", "eval", "export", "export-jit", "verify", "prune"]


def test_a_command_imports_its_own_module_only() -> None:
    assert modules_after(["history", "--help"]) == ["atheria_cli.cli.history", "pydantic", "yaml"]
    assert modules_after(["prune", "--help"]) == ["atheria_cli.cli.verify", "pydantic", "yaml"]


def test_every_table_summary_is_the_first_paragraph_of_its_commands_docstring() -> None:
    from atheria_cli.cli.app import COMMANDS

    for name, entry in COMMANDS.items():
        module_name, _, function_name = entry.target.partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        assert inspect.getdoc(function).split("\n\n")[0] == entry.summary, name  # type: ignore[union-attr]


def test_a_mistyped_command_is_still_offered_the_right_one() -> None:
    mistyped = subprocess.run([sys.executable, "-c", CONSOLE_SCRIPT, "histor"], capture_output=True, text=True)
    assert (mistyped.returncode, mistyped.stdout) == (2, "")
    assert mistyped.stderr == "atheria: error: No such command 'histor'. Did you mean 'history'?\n"


def test_the_collector_skips_start_up_objects_once_the_command_runs(tmp_path: Path) -> None:
    """Off while the CLI imports and parses, back on (start-up's objects frozen out) for the
    command's own work; the app run in-process (tests, CliRunner) leaves the collector alone."""
    code = (
        "import gc, sys; sys.argv = ['atheria', *sys.argv[1:]]\n"
        "import atheria_cli.cli.app\n"
        "from atheria_cli.cli import collect_from_here, main\n"
        "collect_from_here()\n"
        "print(gc.isenabled(), gc.get_freeze_count() == 0)\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    print(exit.code, gc.isenabled(), gc.get_freeze_count() > 10_000)\n"
    )
    args = ["status", "--config", str(tmp_path / "missing.yaml")]  # exit 2 from inside the command
    completed = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert completed.stdout == "True True\n2 True True\n"
