"""What of an SB3 checkpoint two identical runs may differ in (``verify --resume-exactness``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def comparable_section(section: str, value: Any) -> Any:
    """The ``model`` section without the Monitor's per-episode wall time ``t``; others as they are."""
    if section != "model" or not isinstance(value, Mapping) or "ep_info_buffer" not in value:
        return value
    infos = [{key: item for key, item in info.items() if key != "t"} for info in value["ep_info_buffer"]]
    return {**value, "ep_info_buffer": infos}
