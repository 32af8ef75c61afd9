"""Start-up work a command does not need is not done: ``--version`` loads no CLI framework."""

from __future__ import annotations

import subprocess
import sys

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
