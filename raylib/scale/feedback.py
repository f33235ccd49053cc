"""The feedback a model gets after a failed attempt, at three levels; never from the hidden tests.

    from raylib.scale.feedback import BINARY, feedback_text, split_assertion
    feedback_text("binary", None)                         # FTTT's exact words: "Your answer is incorrect. Please ..."
    feedback_text("public-tests", shown)                  # which visible test failed: expected versus got
    feedback_text("traceback", shown)                     # the error of the visible tests' run
    split_assertion("assert add(2, 3) == 5")              # ("add(2, 3)", "5")

`shown` is a `ShownRun`: the candidate run on the tests its prompt shows (raylib.rerank.public_tests), plus what each
failed call returned (`got`, from a second run that prints the reprs). The hidden tests decide `passed`; what they
saw is never put into feedback, so a loop cannot learn the hidden tests from it. A problem that shows no tests gets
the binary text at every level (there is nothing visible to report).
"""

from __future__ import annotations

import ast
import dataclasses

__all__ = ["BINARY", "FTTT_FEEDBACK", "LEVELS", "ShownRun", "ShownTest", "feedback_text", "leetcode_case",
           "one_call_per_case", "split_assertion"]

BINARY = "Your answer is incorrect. Please try again."  # FTTT's feedback turn, word for word
FTTT_FEEDBACK = "Your answer is incorrect."  # what FTTT's test-time training step learns from (prelim/fttt.py)
LEVELS = ("binary", "public-tests", "traceback")
_MAX_VALUE = 200  # characters of an expected or returned value shown
_MAX_TESTS = 3  # failed tests described


@dataclasses.dataclass(frozen=True)
class ShownTest:
    """One visible test's outcome: `test` (the assertion, or the stdin text), its status and error, `expected` (a
    value's source, or stdout) and `got` (the candidate's repr or stdout; None when unknown)."""

    test: str
    passed: bool
    status: str
    error: str = ""
    expected: str | None = None
    got: str | None = None
    call: str | None = None  # the expression whose value is compared (assertion tests)


@dataclasses.dataclass(frozen=True)
class ShownRun:
    """The candidate on its problem's visible tests: the run's status and error, and each test."""

    status: str
    error: str
    tests: tuple[ShownTest, ...]
    stdio: bool = False

    @property
    def passed(self) -> int:
        return sum(t.passed for t in self.tests)


def _clip(text: str, limit: int = _MAX_VALUE) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."


def split_assertion(assertion: str) -> tuple[str, str] | None:
    """(the expression tested, the expected value's source) of `assert X == Y`, `assert X is None` or `assert
    _public_close(X, Y)`; None for any other assertion."""
    try:
        node = ast.parse(assertion.strip())
    except SyntaxError:
        return None
    if len(node.body) != 1 or not isinstance(node.body[0], ast.Assert):
        return None
    test = node.body[0].test
    if (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.Is))
            and (isinstance(test.ops[0], ast.Eq) or _is_none(test.comparators[0]))):
        return ast.unparse(test.left), ast.unparse(test.comparators[0])
    if (isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and test.func.id == "_public_close"
            and len(test.args) == 2):
        return ast.unparse(test.args[0]), ast.unparse(test.args[1])
    return None


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _describe(test: ShownTest, stdio: bool) -> str:
    if stdio:
        got = "nothing" if test.got is None else f"\n{_clip(test.got)}"
        return (f"- input:\n{_clip(test.test)}\n  expected output:\n{_clip(test.expected or '')}\n  got: {got}"
                + (f" ({test.status})" if test.status not in ("failed", "passed") else ""))
    if test.call is not None and test.expected is not None:
        if test.status == "failed" and test.got is not None:
            return f"- `{_clip(test.call)}` should be `{_clip(test.expected)}`, got `{_clip(test.got)}`."
        reason = _clip(test.error, 300) if test.error and test.error != "not run" else test.status
        return f"- `{_clip(test.call)}` should be `{_clip(test.expected)}`; it failed with {reason}."
    reason = _clip(test.error, 300) if test.error and test.error != "not run" else test.status
    return f"- `{_clip(test.test, 300)}` failed: {reason}."


def one_call_per_case(tests) -> bool:
    """Whether `tests` are LeetCode-style cases: call tests with given answers, each call its own test ("case N")."""
    return getattr(tests, "kind", "") == "calls" and tests.expected is not None and \
        len(tests.groups) == len(tests.inputs)


def leetcode_case(tests, index: int, status: str, error: str) -> tuple[str, str, str | None]:
    """Case `index` of `one_call_per_case` tests as (the call, e.g. "twoSum([2, 7], 9)"; the expected answer's repr;
    what the program returned where the judge's `error` says so, "expected X, got Y" on a failed case, else None)."""
    from sandbox.inside import plain

    call = f"{tests.entry_point}({', '.join(map(repr, plain.decode(tests.inputs[index])))})"
    got = error.rpartition(", got ")[2] if status == "failed" and ", got " in error else None
    return call, repr(plain.decode(tests.expected[index])), got


def feedback_text(level: str, shown: ShownRun | None) -> str:
    """The user turn after a failed attempt (see the module docstring)."""
    if level not in LEVELS:
        raise ValueError(f"unknown feedback level {level!r}; expected one of {LEVELS}")
    if level == "binary" or shown is None or not shown.tests:
        return BINARY
    failed = [t for t in shown.tests if not t.passed]
    if level == "traceback":
        errors = [t.error for t in failed if t.error and t.error != "not run"] or [shown.error]
        lines = [f"{shown.status}: {_clip(e, 600)}" for e in dict.fromkeys(errors) if e][:_MAX_TESTS]
        if not lines:
            lines = [shown.status]
        return "Your answer is incorrect. Running it on the tests shown in the problem:\n" + "\n".join(lines) + \
            "\nPlease try again."
    if shown.status == "compile-error":
        return f"Your answer is incorrect: it does not compile ({_clip(shown.error, 300)}). Please try again."
    if not failed:  # the visible tests pass; the hidden ones do not
        return "Your answer passes the tests shown in the problem but is incorrect on other inputs. Please try again."
    parts = [_describe(t, shown.stdio) for t in failed[:_MAX_TESTS]]
    more = f"\n(and {len(failed) - _MAX_TESTS} more)" if len(failed) > _MAX_TESTS else ""
    return (f"Your answer is incorrect. It fails {len(failed)} of the {len(shown.tests)} tests shown in the problem:\n"
            + "\n".join(parts) + more + "\nPlease try again.")
