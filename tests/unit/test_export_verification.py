"""How an export is compared with what it must reproduce (``deploy.export.verify``), without torch:
the program under test is a NumPy function standing in for a loaded export."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from atheria_cli.deploy.export import TOLERANCE, verify
from atheria_cli.trainers.base import ExportSubject

INPUTS = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(3, 4)


def subject(expected: list[tuple[np.ndarray, ...]], *, exact: bool = False) -> ExportSubject:
    return ExportSubject(
        capture=None,  # type: ignore[arg-type]  # verify never captures
        samples=[(INPUTS,)] * len(expected),
        expected=expected,
        exact=exact,
        sample_count=len(expected),
        sample_noun="sampled inputs",
        reference="the eager module",
        what="module",
        description={},
    )


def program(*outputs: Any) -> Any:
    return lambda *inputs: tuple(outputs)


def test_within_the_tolerance_passes_and_beyond_it_fails() -> None:
    expected = INPUTS * 2
    close = verify(program(expected + TOLERANCE / 2), subject([(expected,)]))
    assert (close.mismatches, close.samples, close.counted) == (0, 1, "sampled inputs")
    assert close.max_abs_diff == pytest.approx(TOLERANCE / 2, rel=1e-2)
    far = verify(program(expected + 1e-3), subject([(expected,), (expected,)]))
    assert far.mismatches == 2 and far.max_abs_diff == pytest.approx(1e-3, rel=1e-2)


def test_nan_where_both_have_it_is_equal_and_nan_on_one_side_is_not() -> None:
    expected = np.array([[np.nan, 1.0, np.inf]])
    assert verify(program(expected.copy()), subject([(expected,)])).mismatches == 0
    one_sided = verify(program(np.array([[0.0, 1.0, np.inf]])), subject([(expected,)]))
    assert one_sided.mismatches == 1 and one_sided.max_abs_diff == np.inf


def test_shapes_that_cannot_match_and_a_missing_output_fail() -> None:
    expected = np.zeros((3, 1))
    assert verify(program(np.zeros(3)), subject([(expected,)])).mismatches == 0  # (n,) for (n, 1): a policy's actions
    assert verify(program(np.zeros(4)), subject([(expected,)])).mismatches == 1
    assert verify(program(expected), subject([(expected, expected)])).mismatches == 1


def test_complex_outputs_are_compared_by_modulus() -> None:
    expected = np.array([1 + 1j, 2 - 1j], dtype=np.complex64)
    assert verify(program(expected + 1e-7j), subject([(expected,)])).mismatches == 0
    assert verify(program(expected + 1e-3j), subject([(expected,)])).mismatches == 1


def test_exact_outputs_differ_at_any_difference() -> None:
    actions = np.array([0, 1, 1])
    assert verify(program(actions.copy()), subject([(actions,)], exact=True)).mismatches == 0
    assert verify(program(np.array([0, 1, 0])), subject([(actions,)], exact=True)).mismatches == 1
