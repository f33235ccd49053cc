"""Test-code mode: the program and its test code in one process, as the openai harness runs them (stdlib only).

Runs in a candidate's process (a child the worker's zygote forked, after it dropped privileges). Used only for what
cannot be recorded and replayed (see sandbox/judge/): Python tests without a reference solution, tests whose calls
are not plain data, tests whose calls depend on the program's answers. A program written against this harness CAN
forge a pass here: it shares the process with the tests and the key that signs their verdicts. Results say so
(`ExecResult.judged_by == "test-code"`) and summaries count them apart.

The guards it keeps against programs that are not written against it: verdicts leave on a dedicated descriptor, one
line per event, each prefixed by its MAC (a BLAKE2b keyed hash under a per-run random key); stdout, stderr and the
exit status never decide a verdict, so printing "PASSED", exiting early or crashing the harness cannot pass. Values
the program's functions return to the tests must be plain data (exact builtin types, checked recursively; unchanged
namedtuples and the stdlib's Counter/OrderedDict/defaultdict count as their base). The worker loads this file with a
private copy of the builtins and keeps it out of `sys.modules`; events are serialised by C functions bound at load.
"""

from __future__ import annotations

import builtins
import collections
import os
import sys
import time
import types
from _blake2 import blake2b as _blake2b  # C, like _quote: a program cannot patch them in place
from _json import encode_basestring_ascii as _quote

# Bound before any candidate code runs, so later patches of modules do not reach the harness.
_write = os.write
_perf = time.perf_counter
_type = type
_id = id
_FunctionType = types.FunctionType
_settrace = sys.settrace
_setprofile = sys.setprofile
_float_repr = float.__repr__
_int_repr = int.__repr__
# The builtins this module's functions see: a private copy when loaded by `worker.load_isolated`.
OWN_BUILTINS = __builtins__ if _type(__builtins__) is dict else __builtins__.__dict__
ISOLATED = OWN_BUILTINS is not builtins.__dict__
_PLAIN_SCALARS = frozenset({type(None), bool, int, float, complex, str, bytes})
_PLAIN_CONTAINERS = frozenset({list, tuple, set, frozenset, dict})
_WITHHELD = object()
_PRELOADED: dict = {}  # the modules the worker had loaded before any program ran (set by warm_up)
_MAX_ITEMS = 10_000_000
_SOLUTION_FILE = "solution.py"


class UntrustedReturn(BaseException):
    """A function under test returned something other than plain data."""


# Subclasses of the plain types count as their plain base when nothing between them and it changes how they compare,
# hash or give up their contents: namedtuples, and the stdlib's Counter/OrderedDict/defaultdict as they were before
# the program ran. Correct HumanEval solutions return them, and the openai harness accepts them.
_NT_PROBE = collections.namedtuple("_NT_PROBE", "a")
_NAMEDTUPLE_CODES = frozenset(f.__code__ for f in (
    vars(_NT_PROBE)["__repr__"], vars(_NT_PROBE)["_asdict"], vars(_NT_PROBE)["__getnewargs__"],
    vars(_NT_PROBE)["_replace"], vars(_NT_PROBE)["_make"].__func__))
_TUPLEGETTER = _type(vars(_NT_PROBE)["a"])  # a namedtuple field: reads a tuple slot, in C
_CONSTRUCTION_ONLY = frozenset({  # class attributes that only matter while an instance is made, or not at all
    "__new__", "__init__", "__module__", "__qualname__", "__doc__", "__slots__", "__dict__", "__weakref__",
    "__match_args__", "_fields", "_field_defaults", "__annotations__", "__orig_bases__", "__parameters__",
    "__firstlineno__", "__static_attributes__"})
_TRUSTED_CLASSES = {cls: dict(vars(cls))
                    for cls in (collections.Counter, collections.OrderedDict, collections.defaultdict)}


def _unchanged_namedtuple_member(value) -> bool:
    t = _type(value)
    if t is _TUPLEGETTER:
        return True
    function = value.__func__ if t is classmethod else value
    return _type(function) is _FunctionType and function.__code__ in _NAMEDTUPLE_CODES


def _plain_base(t: type):
    """The plain type instances of `t` behave as (see above), or None."""
    if _type(t) is not type:  # a metaclass could fake the MRO or attribute lookups
        return None
    mro = t.__mro__
    for position, cls in enumerate(mro):
        if cls in _PLAIN_SCALARS or cls in _PLAIN_CONTAINERS:
            break
    else:
        return None
    for between in mro[:position]:
        names = vars(between)
        snapshot = _TRUSTED_CLASSES.get(between)
        if snapshot is not None:
            if len(names) != len(snapshot) or any(snapshot.get(k, _WITHHELD) is not v for k, v in names.items()):
                return None  # the program patched Counter (say, its __eq__)
            continue
        for name, value in names.items():
            if name not in _CONSTRUCTION_ONLY and not _unchanged_namedtuple_member(value):
                return None
    return cls


def _is_plain(value) -> str:
    """'' if `value` is plain data, else the name of the first offending type."""
    stack, seen, count = [value], set(), 0
    while stack:
        item = stack.pop()
        t = _type(item)
        if t in _PLAIN_SCALARS:
            continue
        if t not in _PLAIN_CONTAINERS:
            base = _plain_base(t)
            if base is None:
                return f"{t.__module__}.{t.__qualname__}"
            if base in _PLAIN_SCALARS:
                continue
            t = base
        if _id(item) in seen:
            continue
        seen.add(_id(item))
        count += t.__len__(item)
        if count > _MAX_ITEMS:
            return "container-too-large"
        if t is dict:  # the base type's own methods: a subclass's cannot answer for them
            stack.extend(dict.keys(item))
            stack.extend(dict.values(item))
        else:
            stack.extend(t.__iter__(item))
    return ""


def _guard(fn):
    """`fn` for the tests: what it returns must be plain data, else the test fails (UntrustedReturn)."""
    name = getattr(fn, "__name__", None) or _type(fn).__name__

    def guarded(*args, **kwargs):
        result = fn(*args, **kwargs)
        bad = _is_plain(result)
        if bad:
            raise UntrustedReturn(
                f"{name} returned a value of type {bad}; tests only accept plain data "
                "(set strict_return_types=False to allow other types)"
            )
        return result

    guarded.__name__ = name
    guarded.__qualname__ = getattr(fn, "__qualname__", name)
    guarded.__doc__ = getattr(fn, "__doc__", None)
    guarded.__wrapped__ = fn
    return guarded


def _for_tests(value, entry_point: bool):
    """What the tests see of one name the program defined and the tests use (strict mode).

    Names of builtins (`abs`, `len`, `sorted`, ...) are never taken from the program: the tests keep the real ones.
    Callables, however they were made (def, exec, lambda, partial, an instance with __call__), are guarded; so is
    the entry point of function tests even when it is a class. Other classes pass as they are (assertion tests
    construct the program's helper classes, e.g. MBPP's `Pair`); modules too. Any other value must be plain data,
    else the name is withheld and a test that uses it fails with a NameError."""
    if _type(value) is types.ModuleType:
        # Only the module the import system holds under that name (a program-made `math` with an `isclose` that
        # always agrees is withheld); patching a real module the tests use is not defended (sandbox/__init__.py).
        return value if _PRELOADED.get(value.__name__, sys.modules.get(value.__name__)) is value else _WITHHELD
    if isinstance(value, type) and not entry_point:
        return value
    if callable(value):
        return _guard(value)
    return value if not _is_plain(value) else _WITHHELD


def _encode_value(value) -> str:
    t = _type(value)
    if t is str:
        return _quote(value)
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return _int_repr(value)
    if t is float:
        return _float_repr(value)
    if value is None:
        return "null"
    return _quote("<unserialisable " + t.__name__ + ">")


def _encode_event(event: dict) -> str:
    """JSON for a flat event of scalars, built only from C functions bound at load (see the module docstring)."""
    return "{" + ", ".join([_quote(key) + ": " + _encode_value(value) for key, value in event.items()]) + "}"


def mac(key: bytes, body: bytes) -> str:
    """The tag that authenticates one verdict line (the worker checks it with the same function)."""
    return _blake2b(body, key=key, digest_size=16).hexdigest()


class VerdictChannel:
    def __init__(self, fd: int, key: bytes):
        self._fd, self._key = fd, key

    def emit(self, **event) -> None:
        body = _encode_event(event).encode("utf-8", "backslashreplace")
        # Leading newline: bytes the program wrote to this descriptor cannot run into our line.
        data = b"\n" + mac(self._key, body).encode() + b" " + body + b"\n"
        while data:
            n = _write(self._fd, data)
            data = data[n:]


_sources: dict = {}  # file name -> source text, for the line an error points at


def _describe(exc: BaseException) -> str:
    """`Type: message (file:line: source)`, at the innermost frame in the program or the tests.

    Written without `traceback`/`linecache`: after the program ran, those modules may be patched."""
    name = _type(exc).__name__
    try:
        message = str(exc)
    except BaseException:  # noqa: BLE001 - the program's own exception class
        message = "<exception message raised an error>"
    text = f"{name}: {message}" if message else f"{name}"
    where, tb = None, exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename in _sources:
            where = (filename, tb.tb_lineno)
        tb = tb.tb_next
    if where is not None:
        filename, lineno = where
        lines = _sources[filename].splitlines()
        line = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
        text = f"{text} ({filename}:{lineno}: {line})" if line else f"{text} ({filename}:{lineno})"
    return text[:2000]


def _describe_compile_error(exc: BaseException) -> str:
    """`SyntaxError: message (solution.py:line: source)`; formatted here, not by `traceback`, which costs a forked
    run ~250 page faults (a quarter of a millisecond) for this alone."""
    text = f"{_type(exc).__name__}: {getattr(exc, 'msg', None) or exc}"
    lineno, line = getattr(exc, "lineno", None), (getattr(exc, "text", None) or "").strip()
    if lineno:
        text += f" ({_SOLUTION_FILE}:{lineno}: {line})" if line else f" ({_SOLUTION_FILE}:{lineno})"
    return text[:2000]


def _classify(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, (AssertionError, UntrustedReturn)):
        return "failed"
    return "runtime-error"


def run_tests(code: str, tests: dict, channel: VerdictChannel, used: frozenset | None = None) -> None:
    """Load the program, then run function or assertion tests, reporting every event on `channel`.

    `used`: `referenced_names(tests)`, when the caller already has it (the worker computes it before forking)."""
    _sources[_SOLUTION_FILE] = code
    try:
        compiled = compile(code, _SOLUTION_FILE, "exec")
    except (SyntaxError, ValueError) as exc:
        channel.emit(ev="compile-error", error=_describe_compile_error(exc))
        return
    program_globals = {"__name__": "solution", "__builtins__": builtins, "__file__": _SOLUTION_FILE}
    try:
        exec(compiled, program_globals)
    except BaseException as exc:  # SystemExit included: leaving during load is a failure, not a pass
        channel.emit(ev="load-error", status=_classify(exc), error=_describe(exc))
        return
    _settrace(None)
    _setprofile(None)

    strict = tests.get("strict_return_types", True)
    function_tests = tests["kind"] == "function"
    entry = tests.get("entry_point") if function_tests else None
    used = referenced_names(tests) if used is None else used
    test_globals = {"__name__": "tests", "__builtins__": OWN_BUILTINS}
    for name, value in list(program_globals.items()):
        if name == "__builtins__":
            continue
        if strict and (name == entry or name in used):
            if name != entry and name in OWN_BUILTINS:
                continue  # `def abs(x): return 0` must not change what the tests' abs() means
            value = _for_tests(value, entry_point=name == entry)
            if value is _WITHHELD:
                continue
        test_globals[name] = value

    if function_tests:
        _run_check(tests, test_globals, channel)
    else:
        _run_assertions(tests, test_globals, channel)
    channel.emit(ev="done")


_compiled_tests: dict = {}  # source -> (code object, names it uses)
_TESTS_FILE = "tests.py"


def compile_test(source: str):
    """Compile trusted test code once per worker (cached), so forked children reuse the code object."""
    return _compiled(source)[0]


def _compiled(source: str) -> tuple:
    entry = _compiled_tests.get(source)
    if entry is None:
        if len(_compiled_tests) > 4096:
            _compiled_tests.clear()
        code = compile(source, _TESTS_FILE, "exec")
        entry = _compiled_tests[source] = (code, frozenset(_names_in(code)))
    return entry


def _names_in(code) -> set:
    """Every name a code object and the code nested in it may look up (a superset of the globals it reads)."""
    names, stack = set(), [code]
    while stack:
        item = stack.pop()
        names.update(item.co_names)
        stack.extend(c for c in item.co_consts if _type(c) is types.CodeType)
    return names


def referenced_names(tests: dict) -> frozenset:
    """Names the tests may read from the program's namespace: only those need guarding."""
    sources = [tests.get("test_code", ""), tests.get("setup_code", ""), *tests.get("assertions", ())]
    found = frozenset()
    for source in sources:
        if source:
            try:
                found = found | _compiled(source)[1]
            except (SyntaxError, ValueError):
                pass  # reported when the test runs
    return found


def _exec_test(source: str, test_globals: dict, channel: VerdictChannel, index: int, name: str) -> None:
    _sources[_TESTS_FILE] = source
    start = _perf()
    try:
        exec(compile_test(source), test_globals)
    except BaseException as exc:
        channel.emit(ev="test", index=index, name=name, passed=False, status=_classify(exc), error=_describe(exc),
                     duration_s=_perf() - start)
        return
    channel.emit(ev="test", index=index, name=name, passed=True, status="passed", duration_s=_perf() - start)


def _run_check(tests: dict, test_globals: dict, channel: VerdictChannel) -> None:
    entry_point = tests["entry_point"]
    _sources[_TESTS_FILE] = tests["test_code"]
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
        channel.emit(ev="test", index=0, name="check", passed=False, status=_classify(exc), error=_describe(exc),
                     duration_s=_perf() - start)
        return
    channel.emit(ev="test", index=0, name="check", passed=True, status="passed", duration_s=_perf() - start)


def _run_assertions(tests: dict, test_globals: dict, channel: VerdictChannel) -> None:
    if tests.get("setup_code"):
        _sources[_TESTS_FILE] = tests["setup_code"]
        try:
            exec(compile_test(tests["setup_code"]), test_globals)
        except BaseException as exc:
            channel.emit(ev="load-error", status=_classify(exc), error="setup_code: " + _describe(exc))
            return
    for index, assertion in enumerate(tests["assertions"]):
        _exec_test(assertion, test_globals, channel, index, assertion.strip()[:200])


def warm_up(fd: int, rounds: int = 16) -> None:
    """Run the harness on trusted programs in the worker itself, before any fork: its code is then specialised
    (CPython 3.11 rewrites bytecode as it warms up) and type caches are filled once, instead of in - and copied
    into - every forked child."""
    function_tests = {"kind": "function",
                      "test_code": "def check(candidate):\n    assert candidate([1, 2], 3) == [3, 4]\n",
                      "entry_point": "f"}
    assertion_tests = {"kind": "assertions", "assertions": ["assert f([1], 1) == [2]", "assert f([], 0) == [1]"]}
    programs = ("from typing import List\ndef f(xs: List[int], k: int) -> List[int]:\n    return [x + k for x in xs]\n",
                "def f(xs, k):\n    return None\n", "def f(xs, k):\n    raise ValueError('x')\n",
                "def f(xs, k):\n    return (\n")
    _PRELOADED.update(sys.modules)
    channel = VerdictChannel(fd, b"warm-up")
    for _ in range(rounds):
        for program in programs:
            run_tests(program, function_tests, channel)
            run_tests(program, assertion_tests, channel)
    _sources.clear()
