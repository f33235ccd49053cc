"""Output comparison for stdin/stdout tests (stdlib only: it also runs inside the sandbox worker).

`outputs_match(actual, expected, float_tolerance)` is True when the two outputs have the same whitespace-separated
tokens, where two tokens that both parse as finite numbers match within `float_tolerance` (absolute or relative),
as LiveCodeBench/TACO graders do. Line structure and trailing whitespace are ignored.
"""

from __future__ import annotations

import math


def _as_number(token: str) -> float | None:
    try:
        value = float(token)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def tokens_match(actual: str, expected: str, float_tolerance: float) -> bool:
    if actual == expected:
        return True
    if float_tolerance <= 0:
        return False
    a, b = _as_number(actual), _as_number(expected)
    if a is None or b is None:
        return False
    return math.isclose(a, b, rel_tol=float_tolerance, abs_tol=float_tolerance)


def outputs_match(actual: str, expected: str, float_tolerance: float = 1e-6) -> bool:
    """Whitespace-normalised, float-tolerant equality of two program outputs."""
    actual_tokens, expected_tokens = actual.split(), expected.split()
    if len(actual_tokens) != len(expected_tokens):
        return False
    return all(tokens_match(a, e, float_tolerance) for a, e in zip(actual_tokens, expected_tokens))
