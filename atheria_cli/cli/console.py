"""The one stdout console (results) and the one stderr console (progress, warnings, errors)."""

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
