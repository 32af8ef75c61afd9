"""Files the reports write on request (``--csv``, ``--plot``): checked before anything is read."""

from __future__ import annotations

from pathlib import Path

from atheria_cli.errors import UsageError

PLOT_FORMATS = (".png", ".svg", ".pdf")


def check_output_path(path: Path, option: str) -> None:
    """An output file must go into an existing folder and must not be a folder itself."""
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"{option} {path}: folder {path.parent} does not exist")


def check_plot_path(path: Path) -> None:
    if path.suffix.lower() not in PLOT_FORMATS:
        supported = f"{', '.join(PLOT_FORMATS[:-1])} or {PLOT_FORMATS[-1]}"
        raise UsageError(f"--plot {path}: unsupported image type {path.suffix or '(none)'!r}; use {supported}")
    check_output_path(path, "--plot")
