"""The session's hook list: order, and every hook closed even when one fails."""

from __future__ import annotations

from typing import Any

import pytest

from atheria_cli.training.hooks import Hooks, SessionHook


class Recording(SessionHook):
    def __init__(self, name: str, calls: list[str], fail_on_close: bool = False) -> None:
        self.name, self.calls, self.fail_on_close = name, calls, fail_on_close

    def start(self, session: Any, observer: Any) -> None:
        self.calls.append(f"{self.name}.start")

    def close(self, session: Any, observer: Any, *, completed: bool) -> None:
        self.calls.append(f"{self.name}.close({completed})")
        if self.fail_on_close:
            raise OSError(f"{self.name} could not close")


def test_hooks_run_in_list_order() -> None:
    calls: list[str] = []
    hooks = Hooks([Recording("a", calls), Recording("b", calls)])
    hooks.start(None, None)  # type: ignore[arg-type]
    hooks.close(None, None, completed=True)  # type: ignore[arg-type]
    assert calls == ["a.start", "b.start", "a.close(True)", "b.close(True)"]


def test_every_hook_closes_after_one_fails_and_the_first_failure_is_raised() -> None:
    """A hook that fails to close neither keeps the others open nor lets a later one (the
    mirror's last push) act as if the session ended well."""
    calls: list[str] = []
    hooks = Hooks([Recording("a", calls, fail_on_close=True), Recording("b", calls, fail_on_close=True), Recording("c", calls)])
    with pytest.raises(OSError, match="a could not close"):
        hooks.close(None, None, completed=True)  # type: ignore[arg-type]
    assert calls == ["a.close(True)", "b.close(False)", "c.close(False)"]
