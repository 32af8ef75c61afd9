"""SB3's training values, held until the commit that makes them durable."""

from __future__ import annotations

import math
from typing import Any

from stable_baselines3.common.logger import KVWriter

# Logged by atheria from its own records, not from SB3's logger (TensorBoard records them there too).
OWN_PREFIXES = ("episode/", "eval/")


class BufferedValues(KVWriter):
    """An SB3 logger output (``KVWriter``) that keeps what ``logger.dump`` writes until a commit."""

    def __init__(self) -> None:
        self.pending: list[tuple[int, dict[str, float]]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        values = {
            key: float(value) for key, value in key_values.items() if _is_number(value) and not key.startswith(OWN_PREFIXES)
        }
        if values:
            self.pending.append((int(step), values))

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
