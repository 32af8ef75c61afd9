"""The one stdout console (results) and the one stderr console (progress, warnings, errors)."""

from rich.console import Console

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
