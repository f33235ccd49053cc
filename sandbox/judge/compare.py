"""Judging outputs outside the program's process: stdin/stdout text, and answers of calls (stdlib only; run by the
worker).

`outputs_match(actual, expected, float_tolerance)` is True when the two outputs have the same whitespace-separated
tokens, where two tokens that both parse as finite numbers match within `float_tolerance` (absolute or relative),
as LiveCodeBench/TACO graders do. Line structure and trailing whitespace are ignored.

`answer_matches(out, expected, args, atol, oracle)` judges one answer of call tests (EvalPlus's rules, below, or
LiveCodeBench's / TACO's: `harness_equal`).
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


# ------------------------------------------------------------------------------------------ answers of calls
# EvalPlus's rule for one answer (evalplus 0.3.1, evalplus/eval/__init__.py `unsafe_execute`), written here on plain
# values: exact equality; else, with a tolerance, the same type, the same length and numpy.allclose(rtol=1e-7).
# Special oracles by name (evalplus/eval/_special_oracle.py). Differences: `poly-root` passes a root within atol, where
# evalplus 0.3.1 fails every HumanEval/32 sample (a `continue` skips marking the input as passed).

_NUMBERS = (bool, int, float, complex)


def is_floats(value) -> bool:
    """A float, or a non-empty list/tuple of floats (EvalPlus switches on a 1e-6 tolerance when it sees one)."""
    if type(value) is float:
        return True
    return type(value) in (list, tuple) and bool(value) and all(type(item) is float for item in value)


def _allclose(a, b, atol: float, rtol: float = 1e-7) -> bool:
    """numpy.allclose(a, b, rtol, atol) for nested lists/tuples of numbers of the same shape."""
    if type(a) in (list, tuple) or type(b) in (list, tuple):
        if type(a) not in (list, tuple) or type(b) not in (list, tuple) or len(a) != len(b):
            return False
        return all(_allclose(x, y, atol, rtol) for x, y in zip(a, b))
    if type(a) not in _NUMBERS or type(b) not in _NUMBERS:
        return False
    if a == b:
        return True
    try:
        return abs(a - b) <= atol + rtol * abs(b)
    except OverflowError:
        return False


def poly(xs: list, x: float) -> float:
    """EvalPlus's oracle for HumanEval/32: the polynomial with coefficients xs at x."""
    return sum([coeff * math.pow(x, i) for i, coeff in enumerate(xs)])


def surface_area(base_edge, height):
    """EvalPlus's second oracle for Mbpp/581 (height as the perpendicular distance to the apex)."""
    slant_height = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant_height) / 2)


def digit_distance(num1, num2):
    """EvalPlus's second oracle for Mbpp/558 (numbers zero-padded to the same length)."""
    a, b = str(num1), str(num2)
    width = max(len(a), len(b))
    return sum(abs(int(x) - int(y)) for x, y in zip(a.zfill(width), b.zfill(width)))


def harness_equal(out, expected, oracle: str) -> bool:
    """LiveCodeBench's (`lcb`) and TACO/APPS's (`apps`) rule for one answer of call tests, on plain values
    (LiveCodeBench lcb_runner/evaluation/testing_util.py `grade_call_based`; TACO metrics/testing_util.py
    `execute_cb_code`): a tuple answer counts as a list, then ==. APPS also accepts the first item of an expected list
    (its outputs are usually wrapped: [[0, 1]]), and a list of tuples equal to it as lists."""
    if type(out) is tuple:
        out = list(out)
    if out == expected:
        return True
    if oracle != "apps" or type(expected) is not list or not expected:
        return False
    if out == expected[0]:
        return True
    return type(out) is list and bool(out) and type(out[0]) is tuple and [list(x) for x in out] == expected[0]


NOT_PLAIN = object()  # stands for an answer that is not plain data (only the not-none oracle accepts one)
ORACLES_READING_ARGUMENTS = frozenset({"poly-root", "surface-area", "digit-distance"})  # the rest ignore `args`


def answer_matches(out, expected, args: list | None, atol: float, oracle: str) -> tuple[bool, float]:
    """(whether `out` is a right answer for `args`, the tolerance for the inputs after this one).

    `atol` carries over from input to input as in EvalPlus: 0 becomes 1e-6 once an expected answer is a float."""
    if out is NOT_PLAIN and oracle != "not-none":
        return False, atol
    try:
        if oracle == "poly-root":
            return abs(poly(*args, out)) <= atol, atol
        if oracle in ("lcb", "apps"):
            return harness_equal(out, expected, oracle), atol
        exact = out == expected
        if oracle == "always":
            exact = True
        elif oracle == "sum-div":
            exact = exact or out == 0
        elif oracle == "surface-area":
            exact = exact or abs(out - surface_area(*args)) <= atol
        elif oracle == "digit-distance":
            exact = exact or out == digit_distance(*args)
        elif oracle == "set":
            exact = set(out) == set(expected)
        elif oracle == "not-none":
            exact = out == expected if type(out) is bool else expected == (out is not None)
        if atol == 0 and is_floats(expected):
            atol = 1e-6
        if not exact and atol != 0:
            if type(out) is not type(expected):
                return False, atol
            if type(expected) in (list, tuple) and len(out) != len(expected):
                return False, atol
            return _allclose(out, expected, atol), atol
        return bool(exact), atol
    except Exception:  # noqa: BLE001 - an answer the rule cannot even compare (set() of unhashables, ...) is wrong
        return False, atol
