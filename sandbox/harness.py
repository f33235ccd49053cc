"""In-process Python harness, run by a forked child of the sandbox worker after it dropped privileges.

Stdlib only: this file is loaded by the worker inside the isolation (not as part of the `sandbox` package).

Verdicts leave the child on a dedicated pipe (the verdict channel), one line per event, each prefixed by a
per-run random nonce; the worker ignores lines without it. stdout, stderr and the exit status never decide a
verdict, so a program that prints "PASSED", exits 0 early (sys.exit, os._exit, atexit) or crashes the harness
cannot pass: passing needs a "test passed" event for every test followed by "done".

Against operator tricks ("always-equal" objects whose __eq__ answers True), the program's functions are handed to
the tests wrapped: a returned value must be plain data (exact builtin scalar/container types, checked
recursively), else the test fails. The tests also run with a copy of the builtins taken before the program ran,
so patching builtins does not reach them.

Not defended here (see sandbox/__init__.py): a program that deliberately inspects this harness's memory (frames,
gc, /proc/self/fd) to learn the nonce and fake the channel, or that patches stdlib modules the tests import.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import sys
import time
import traceback
import types

# Bound before any candidate code runs, so later patches of builtins or modules do not reach the harness.
_write = os.write
_dumps = json.dumps
_perf = time.perf_counter
_type = type
_id = id
_FunctionType = types.FunctionType
_format_exc = traceback.format_exception_only
_extract_tb = traceback.extract_tb
_PLAIN_SCALARS = frozenset({type(None), bool, int, float, complex, str, bytes})
_PLAIN_CONTAINERS = frozenset({list, tuple, set, frozenset, dict})
_MAX_ITEMS = 10_000_000
_SOLUTION_FILE = "solution.py"


class UntrustedReturn(BaseException):
    """A function under test returned something other than plain data."""


def _is_plain(value) -> str:
    """'' if `value` is plain data, else the name of the first offending type."""
    stack, seen, count = [value], set(), 0
    while stack:
        item = stack.pop()
        t = _type(item)
        if t in _PLAIN_SCALARS:
            continue
        if t not in _PLAIN_CONTAINERS:
            return f"{t.__module__}.{t.__qualname__}"
        if _id(item) in seen:
            continue
        seen.add(_id(item))
        count += len(item)
        if count > _MAX_ITEMS:
            return "container-too-large"
        if t is dict:
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            stack.extend(item)
    return ""


def _guard(fn):
    def guarded(*args, **kwargs):
        result = fn(*args, **kwargs)
        bad = _is_plain(result)
        if bad:
            raise UntrustedReturn(
                f"{fn.__name__} returned a value of type {bad}; tests only accept plain data "
                "(set strict_return_types=False to allow other types)"
            )
        return result

    guarded.__name__ = fn.__name__
    guarded.__qualname__ = getattr(fn, "__qualname__", fn.__name__)
    guarded.__doc__ = fn.__doc__
    guarded.__wrapped__ = fn
    return guarded


_PRISTINE_BUILTINS = dict(builtins.__dict__)
_builtins_dict = builtins.__dict__
_dict_clear = dict.clear
_dict_update = dict.update


def restore_builtins() -> None:
    """Undo any patching of the builtins module by the program (the harness and json rely on them)."""
    _dict_clear(_builtins_dict)
    _dict_update(_builtins_dict, _PRISTINE_BUILTINS)


class VerdictChannel:
    def __init__(self, fd: int, nonce: str):
        self._fd, self._prefix = fd, nonce + " "

    def emit(self, **event) -> None:
        restore_builtins()
        # Leading newline: bytes the program wrote to this descriptor cannot run into our line.
        line = "\n" + self._prefix + _dumps(event, default=str) + "\n"
        data = line.encode("utf-8", "backslashreplace")
        while data:
            n = _write(self._fd, data)
            data = data[n:]


def _describe(exc: BaseException) -> str:
    restore_builtins()  # traceback formatting relies on the real builtins
    text = "".join(_format_exc(_type(exc), exc)).strip()
    frames = [f for f in _extract_tb(exc.__traceback__) if f.filename in (_SOLUTION_FILE, "tests.py")]
    if frames:
        f = frames[-1]
        where = f"{f.filename}:{f.lineno}"
        if f.line:
            where += f": {f.line.strip()}"
        text = f"{text} ({where})"
    return text[:2000]


def _classify(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, (AssertionError, UntrustedReturn)):
        return "failed"
    if isinstance(exc, RecursionError):
        return "runtime-error"
    return "runtime-error"


def setup_stdio() -> None:
    """Rebuild sys.stdin/stdout/stderr on fds 0-2 after the worker redirected them (fork keeps old objects)."""
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="replace")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace")
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True
    )
    sys.argv = [_SOLUTION_FILE]


def flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:
            pass


def run_program(code: str) -> int:
    """Run `code` as __main__ (stdin/stdout style); returns the exit status."""
    try:
        compiled = compile(code, _SOLUTION_FILE, "exec")
    except (SyntaxError, ValueError) as exc:
        sys.stderr.write("".join(_format_exc(_type(exc), exc)))
        return 1
    namespace = {"__name__": "__main__", "__builtins__": builtins, "__file__": _SOLUTION_FILE}
    try:
        exec(compiled, namespace)
    except SystemExit as exc:
        code_ = exc.code
        if code_ is None:
            return 0
        if isinstance(code_, int):
            return code_ & 0xFF
        try:
            sys.stderr.write(str(code_) + "\n")
        except BaseException:
            pass
        return 1
    except BaseException as exc:
        try:
            traceback.print_exception(_type(exc), exc, exc.__traceback__, file=sys.stderr)
        except BaseException:
            pass
        return 1
    return 0


def run_tests(code: str, tests: dict, channel: VerdictChannel) -> None:
    """Load the program, then run function or assertion tests, reporting every event on `channel`."""
    pristine_builtins = dict(_PRISTINE_BUILTINS)
    try:
        compiled = compile(code, _SOLUTION_FILE, "exec")
    except (SyntaxError, ValueError) as exc:
        channel.emit(ev="compile-error", error=_describe(exc))
        return
    program_globals = {"__name__": "solution", "__builtins__": builtins, "__file__": _SOLUTION_FILE}
    try:
        exec(compiled, program_globals)
    except BaseException as exc:  # SystemExit included: leaving during load is a failure, not a pass
        channel.emit(ev="load-error", status=_classify(exc), error=_describe(exc))
        return
    restore_builtins()
    sys.settrace(None)
    sys.setprofile(None)

    strict = tests.get("strict_return_types", True)
    test_globals = {"__name__": "tests", "__builtins__": pristine_builtins}
    for name, value in program_globals.items():
        if name == "__builtins__":
            continue
        is_program_function = _type(value) is _FunctionType and value.__code__.co_filename == _SOLUTION_FILE
        test_globals[name] = _guard(value) if (strict and is_program_function) else value

    if tests["kind"] == "function":
        _run_check(tests, test_globals, channel)
    else:
        _run_assertions(tests, test_globals, channel)
    channel.emit(ev="done")


_compiled_tests: dict = {}


def compile_test(source: str):
    """Compile trusted test code once per worker (cached), so forked children reuse the code object."""
    code = _compiled_tests.get(source)
    if code is None:
        if len(_compiled_tests) > 4096:
            _compiled_tests.clear()
        code = _compiled_tests[source] = compile(source, "tests.py", "exec")
    return code


def _exec_test(source: str, test_globals: dict, channel: VerdictChannel, index: int, name: str) -> None:
    start = _perf()
    try:
        exec(compile_test(source), test_globals)
    except BaseException as exc:
        channel.emit(ev="test", index=index, name=name, passed=False, status=_classify(exc), error=_describe(exc), duration_s=_perf() - start)
        return
    channel.emit(ev="test", index=index, name=name, passed=True, status="passed", duration_s=_perf() - start)


def _run_check(tests: dict, test_globals: dict, channel: VerdictChannel) -> None:
    entry_point = tests["entry_point"]
    start = _perf()
    try:
        exec(compile_test(tests["test_code"]), test_globals)
        check = test_globals.get("check")
        if check is None:
            raise NameError("test_code does not define check(candidate)")
        if entry_point not in test_globals:
            raise NameError(f"the program does not define {entry_point!r}")
        check(test_globals[entry_point])
    except BaseException as exc:
        channel.emit(ev="test", index=0, name="check", passed=False, status=_classify(exc), error=_describe(exc), duration_s=_perf() - start)
        return
    channel.emit(ev="test", index=0, name="check", passed=True, status="passed", duration_s=_perf() - start)


def _run_assertions(tests: dict, test_globals: dict, channel: VerdictChannel) -> None:
    if tests.get("setup_code"):
        try:
            exec(compile_test(tests["setup_code"]), test_globals)
        except BaseException as exc:
            channel.emit(ev="load-error", status=_classify(exc), error="setup_code: " + _describe(exc))
            return
    for index, assertion in enumerate(tests["assertions"]):
        _exec_test(assertion, test_globals, channel, index, assertion.strip()[:200])
