"""A trainer's training values, held until the commit that makes them durable."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# Logged by atheria from its own records, never from the trainer's values.
OWN_PREFIXES = ("episode/", "eval/")


class BufferedValues:
    """A value sink of the trainer (:class:`~atheria_cli.trainers.base.ValueSink`) that keeps
    what the trainer dumps until a commit; named for its tracker, so what the trainer keeps away
    from that tracker (SB3's ``exclude="tensorboard"``) never reaches it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pending: list[tuple[int, dict[str, float]]] = []

    def write(self, step: int, values: Mapping[str, Any]) -> None:
        numbers = {key: float(value) for key, value in values.items() if _is_number(value) and not key.startswith(OWN_PREFIXES)}
        if numbers:
            self.pending.append((int(step), numbers))

    def close(self) -> None:
        pass

    def take(self, up_to: int) -> list[tuple[int, dict[str, float]]]:
        taken = [item for item in self.pending if item[0] <= up_to]
        self.pending = [item for item in self.pending if item[0] > up_to]
        return taken


def _is_number(value: Any) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(number) and not isinstance(value, (str, bytes))
