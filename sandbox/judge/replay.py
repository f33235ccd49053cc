"""The replay: the dataset's tests run again, in a process no candidate ever touched, against the candidate's answers.

Stdlib only; the worker runs `replay` in its own process (it never runs candidate code: candidates are forked from
its zygote, and their answers reach it only as plain-data text, parsed strictly by `plain.decode`). Every
assertion, tolerance and property check of the dataset runs here on plain values; helpers come from the reference
solution's namespace; `random` starts from the recording's seed.

Each call the tests make is matched with the recording: the same function, the same arguments, in the same order
within its test. A call that differs (the tests' later arguments depend on the candidate's earlier answers, or a
wrong answer took the tests down another path) is a divergence: `replay` reports it, and the worker records again
with that call in place (sandbox/inside/worker.py).
"""

from __future__ import annotations

import builtins

if "plain" not in globals():  # imported as a package module (host, tests); the worker passes in its own copy
    from sandbox.inside import plain
if "record" not in globals():
    from sandbox.judge import record

_MUTABLE = (list, dict, set, bytearray)


class Diverged(BaseException):
    """The tests made a call the recording does not have at this point."""


class Answer:
    """What the candidate's process said about one call: returned `value` (and the arguments after the call, when it
    changed them), raised `exception` ("Type", "message"), returned something that is not plain data (`not_plain`),
    or nothing (`missing`: it ended, timed out or broke the protocol first; `status`, `error` say which)."""

    __slots__ = ("value", "after", "exception", "not_plain", "missing", "status", "error")

    def __init__(self, value=None, after=None, exception=None, not_plain="", missing=False, status="", error=""):
        self.value, self.after, self.exception, self.not_plain = value, after, exception, not_plain
        self.missing, self.status, self.error = missing, status, error


def _rebuilt(exception: tuple[str, str]) -> BaseException:
    """The exception the candidate claims it raised: the builtin of that name, else a plain Exception subclass."""
    name, message = exception
    cls = getattr(builtins, name, None) if name.isidentifier() else None
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        cls = type(name if name.isidentifier() else "ProgramError", (Exception,), {})
    try:
        return cls(message)
    except BaseException:  # noqa: BLE001 - exceptions whose constructor wants other arguments
        return RuntimeError(f"{name}: {message}")


def _mutate(args: tuple, after: list) -> None:
    """Give the tests' own argument objects the state the candidate left them in (in place, as a call would)."""
    for arg, state in zip(args, after):
        if type(arg) is type(state) and type(arg) in _MUTABLE and arg != state:
            if type(arg) in (list, bytearray):
                arg[:] = state
            else:
                arg.clear()
                arg.update(state)


def replay(tests: dict, namespace: dict, names: list[str], plan: list[list],
           answers: list[list]) -> tuple[list[dict], dict]:
    """Run the tests with each of `names` answering from `answers` (one `Answer` per call of `plan`, per test).

    Returns (one outcome dict per test: passed, status, error; {test index: (call index, the call made)} for the
    tests that diverged from the plan: their outcomes are not verdicts)."""
    diverged: dict[int, tuple[int, list]] = {}
    cursor = [0] * len(plan)

    def callable_for(test: int, name: str):
        def candidate(*args, **kwargs):
            index = cursor[test]
            cursor[test] += 1
            try:
                call = [name, plain.encode(list(args)), plain.encode(kwargs)]
            except plain.NotPlain as exc:
                raise record.ReplayFailure("failed", f"{name} was called with a {exc}: the program's earlier answer "
                                           "cannot be judged outside its process") from None
            planned = plan[test]
            if index >= len(planned) or planned[index] != call:
                diverged.setdefault(test, (index, call))
                raise Diverged(f"call {index} of test {test} differs from the recording")
            answer = answers[test][index]
            if answer.missing:
                raise record.ReplayFailure(answer.status, answer.error)
            if answer.exception is not None:
                raise _rebuilt(answer.exception)
            if answer.not_plain:
                raise record.ReplayFailure("failed", f"{name} returned a value of type {answer.not_plain}; tests only "
                                           "accept plain data")
            if answer.after is not None:
                _mutate(args, answer.after)
            return answer.value

        candidate.__name__ = candidate.__qualname__ = name
        return candidate

    outcomes = record.run_tests(tests, namespace, names, callable_for)
    return outcomes, diverged
