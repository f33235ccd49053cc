"""The trusted recording: the dataset's reference solution under the dataset's own tests, noting every call the tests
make to the program's functions (judge side: no candidate ever runs here).

Stdlib only. The worker runs `record` in a judge child (forked from the worker itself, never from the zygote that
forks candidates; as the judge uid, with limits) once per distinct (reference, tests) and caches the result. What a
candidate later receives is only the recorded arguments; its answers are checked by `sandbox.judge.replay`, which
runs the same tests again with the same seed through `run_tests` below.

A recording is replayable when every recorded call's arguments and the reference's answers are plain data and the
tests reach the program only through functions (a class or constant of the program the tests use directly would
have to be judged in the candidate's process: test-code mode).
"""

from __future__ import annotations

import builtins
import random
import time
import types

if "plain" not in globals():  # imported as a package module (host, tests); the worker passes in its own copy
    from sandbox.inside import plain

SEED = 0  # `random` starts from this state before the tests run, in the recording and in every replay
REFERENCE_FILE = "<reference>"
TESTS_FILE = "tests.py"
_compiled: dict = {}


class ReplayFailure(BaseException):
    """A call the tests made could not be answered from the candidate's answers; `status` says how the test ends."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


def compile_cached(source: str, filename: str):
    code = _compiled.get((source, filename))
    if code is None:
        if len(_compiled) > 4096:
            _compiled.clear()
        code = _compiled[(source, filename)] = compile(source, filename, "exec")
    return code


def reference_namespace(reference: str, prelude: str = "") -> dict:
    """The reference solution's module namespace (after `prelude`, the harness's imports): the tests' helpers
    (HumanEval's `poly`, `encode_cyclic`) come from here, never from the candidate."""
    namespace = {"__name__": "reference", "__builtins__": builtins, "__file__": REFERENCE_FILE}
    if prelude:
        exec(compile_cached(prelude, "<prelude>"), namespace)
    exec(compile_cached(reference, REFERENCE_FILE), namespace)
    return namespace


def _names_in(code) -> set:
    names, stack = set(), [code]
    while stack:
        item = stack.pop()
        names.update(item.co_names)
        stack.extend(c for c in item.co_consts if type(c) is types.CodeType)
    return names


def program_names(tests: dict, namespace: dict) -> tuple[list[str], str]:
    """(the program's functions the tests call, why the tests cannot be replayed or '').

    Function tests reach the program through `check(candidate)`: the entry point. Assertion tests name the program's
    functions themselves: every function the reference defines that the assertions or their setup mention."""
    if tests["kind"] == "function":
        return [tests["entry_point"]], ""
    used = set()
    for source in (tests.get("setup_code") or "", *tests["assertions"]):
        if source:
            used |= _names_in(compile_cached(source, TESTS_FILE))
    names = []
    for name in sorted(used):
        value = namespace.get(name)
        if type(value) is types.FunctionType and value.__code__.co_filename == REFERENCE_FILE:
            names.append(name)
        elif isinstance(value, type) and value.__module__ == "reference":
            return [], f"the tests use the program's class {name}"
        elif name in namespace and not isinstance(value, (types.ModuleType, types.BuiltinFunctionType, type)) \
                and not callable(value) and not name.startswith("__"):
            return [], f"the tests read the program's value {name}"
    if not names:
        return [], "the tests call no function of the program"
    return names, ""


def describe(exc: BaseException, source: str) -> str:
    """`Type: message (tests.py:line: source)` at the innermost frame of the tests."""
    try:
        message = str(exc)
    except BaseException:  # noqa: BLE001
        message = ""
    if isinstance(exc, ReplayFailure):  # the judge's own words about the program's answer
        text = message
    else:
        text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    where, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == TESTS_FILE:
            where = tb.tb_lineno
        tb = tb.tb_next
    if where is not None:
        lines = source.splitlines()
        line = lines[where - 1].strip() if 0 < where <= len(lines) else ""
        text += f" ({TESTS_FILE}:{where}: {line})" if line else f" ({TESTS_FILE}:{where})"
    return text[:2000]


def _outcome(exc: BaseException | None, source: str) -> dict:
    if exc is None:
        return {"passed": True, "status": "passed", "error": ""}
    if isinstance(exc, ReplayFailure):
        status = exc.status
    elif isinstance(exc, AssertionError):
        status = "failed"
    elif isinstance(exc, MemoryError):
        status = "memory"
    else:
        status = "runtime-error"
    return {"passed": False, "status": status, "error": describe(exc, source)}


def run_tests(tests: dict, namespace: dict, names: list[str], callable_for) -> list[dict]:
    """Run the dataset's tests in a copy of the reference namespace where each of `names` is
    `callable_for(test_index, name)`; `random` seeded first. One outcome dict (passed, status, error) per test."""
    scope = dict(namespace)
    random.seed(SEED)
    if tests["kind"] == "function":
        source = tests["test_code"]
        entry = callable_for(0, tests["entry_point"])
        scope[tests["entry_point"]] = entry
        try:
            exec(compile_cached(source, TESTS_FILE), scope)
            check = scope.get("check")
            if check is None:
                raise NameError("test_code does not define check(candidate)")
            check(entry)
        except BaseException as exc:  # noqa: BLE001 - the verdict of the one test
            return [_outcome(exc, source)]
        return [_outcome(None, source)]
    outcomes = []
    setup = tests.get("setup_code") or ""
    if setup:
        try:
            exec(compile_cached(setup, TESTS_FILE), scope)
        except BaseException as exc:  # noqa: BLE001
            failure = _outcome(exc, setup)
            failure["error"] = "setup_code: " + failure["error"]
            return [failure] * len(tests["assertions"])
    for index, assertion in enumerate(tests["assertions"]):
        for name in names:
            scope[name] = callable_for(index, name)
        try:
            exec(compile_cached(assertion, TESTS_FILE), scope)
        except BaseException as exc:  # noqa: BLE001
            outcomes.append(_outcome(exc, assertion))
        else:
            outcomes.append(_outcome(None, assertion))
    return outcomes


def record(reference: str, tests: dict) -> dict:
    """Run the reference under the tests: {"calls": [[name, args_text, kwargs_text], ...] per test, "times": seconds
    per call, "reference": outcome per test, "unreplayable": '' or why}."""
    try:
        namespace = reference_namespace(reference)
    except BaseException as exc:  # noqa: BLE001
        return {"unreplayable": f"the reference solution does not load: {type(exc).__name__}: {exc}"[:500]}
    names, why = program_names(tests, namespace)
    if why:
        return {"unreplayable": why}
    count = 1 if tests["kind"] == "function" else len(tests["assertions"])
    calls = [[] for _ in range(count)]
    times = [[] for _ in range(count)]
    problems: list[str] = []

    def callable_for(test: int, name: str):
        function = namespace.get(name)

        def recorder(*args, **kwargs):
            # Timed: the call and what a candidate's process does around it (decoding the arguments, encoding the
            # answer and the arguments after it), so that a per-call limit is not eaten by the wire format.
            start = time.perf_counter()
            try:
                call = [name, plain.encode(list(args)), plain.encode(kwargs)]
                plain.decode(call[1])
            except plain.NotPlain as exc:
                problems.append(f"{name} is called with a {exc}, not plain data")
                call = None
            try:
                result = function(*args, **kwargs)
                try:
                    plain.encode(result)
                    plain.encode(list(args))
                except plain.NotPlain as exc:
                    problems.append(f"the reference's {name} returns a {exc}, not plain data")
            finally:  # a call that raised is recorded too: the tests may expect the exception
                if call is not None:
                    calls[test].append(call)
                    times[test].append(time.perf_counter() - start)
            return result

        if not callable(function):
            raise NameError(f"the reference solution does not define {name}")
        return recorder

    try:
        outcomes = run_tests(tests, namespace, names, callable_for)
    except NameError as exc:
        return {"unreplayable": str(exc)}
    return {"calls": calls, "times": times, "reference": outcomes, "unreplayable": problems[0] if problems else ""}


MAX_EXPECTED_BYTES = 256 * 1024 * 1024  # recorded answers are kept decoded by every worker: bound them


def record_calls(reference: str, entry_point: str, inputs: list[str], not_none: bool, prelude: str = "",
                 instance_of: str = "") -> dict:
    """The reference's answer and time on each input of call tests: {"expected": [plain text, or None where it
    raised], "raised": {index: "Type: message"}, "times": seconds, "unreplayable": '' or why}. With `not_none`
    the answer recorded is whether the reference's answer is not None (EvalPlus's not-none oracle). `prelude` and
    `instance_of` as in sandbox.schema.CallTests."""
    try:
        namespace = reference_namespace(reference, prelude)
        owner = namespace.get(instance_of) if instance_of else None
        function = getattr(owner(), entry_point) if isinstance(owner, type) else namespace[entry_point]
    except BaseException as exc:  # noqa: BLE001
        return {"unreplayable": f"the reference solution does not load: {type(exc).__name__}: {exc}"[:500]}
    expected, raised, times, size = [], {}, [], 0
    for index, text in enumerate(inputs):
        # Timed as in `record`: the call, decoding its arguments and encoding the answer and the arguments after it.
        start = time.perf_counter()
        args = plain.decode(text)
        try:
            answer = function(*args)
        except Exception as exc:  # noqa: BLE001 - the reference raises here: the answer is that exception
            times.append(time.perf_counter() - start)
            expected.append(None)
            raised[index] = f"{type(exc).__name__}: {exc}"[:500]
            continue
        try:
            encoded = plain.encode(answer)
            plain.encode(args)
            expected.append(plain.encode(answer is not None) if not_none else encoded)
        except plain.NotPlain as exc:
            if not not_none:
                return {"unreplayable": f"the reference's answer on input {index} is a {exc}, not plain data"}
            expected.append(plain.encode(answer is not None))
        times.append(time.perf_counter() - start)
        size += len(expected[-1])
        if size > MAX_EXPECTED_BYTES:
            return {"unreplayable": f"the reference's answers exceed {MAX_EXPECTED_BYTES >> 20} MiB"}
    return {"expected": expected, "raised": raised, "times": times, "unreplayable": ""}
