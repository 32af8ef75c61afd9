"""``atheria --help``: what a new user reads first."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from atheria_cli.cli import app

runner = CliRunner()


def test_help_lists_commands_in_the_order_a_user_needs_them() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    panel = result.stdout.split("Commands")[1]
    listed = re.findall(r"^│ (\S+)\s", panel, re.M)
    first = ["train", "history", "status", "compare", "eval", "export", "export-jit", "verify", "prune"]
    assert listed == [*first, "report", "tune"]
