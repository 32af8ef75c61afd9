"""How numbers, durations, sizes and episode spans read, in the terminal's tables and in reports.

Rich-free and torch-free: the CLI's tables (:mod:`atheria_cli.cli.tables`) and ``atheria
report``'s documents format with the same rules.
"""

from __future__ import annotations


def number(value: float | None) -> str:
    """Two decimals, or 4 significant digits for very small or large magnitudes; '–' when missing."""
    if value is None:
        return "–"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.4g}"
    return f"{value:.2f}"


def duration(seconds: float) -> str:
    """``42.0 s``, ``3 m 05 s``, ``2 h 07 m``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


def size(byte_count: int | None) -> str:
    """Decimal units, like ``du --si``: ``512 B``, ``1.3 MB``; '–' when missing."""
    if byte_count is None:
        return "–"
    if byte_count < 1000:
        return f"{byte_count} B"
    value = byte_count / 1000
    for unit in ("KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            break
        value /= 1000
    return f"{value:.1f} {unit}"


def episode_span(first: int | None, last: int | None) -> str:
    """``3``, ``1–10``; '–' when missing."""
    if first is None or last is None:
        return "–"
    return str(first) if first == last else f"{first}–{last}"
