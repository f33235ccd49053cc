"""What runs in a candidate's process: load the program, then call what the judge asked for, or run it as a script.

Stdlib only; loaded by the worker (`worker.load_isolated`) before its zygote starts, so forked children find it
warm. Nothing here decides a verdict: whatever this process writes is a claim the judge checks. The program can
patch, trace or replace everything in this module; the worst it achieves is to claim other answers, which is no
more than returning them.

Call mode (`run_calls`): the judge sends the calls its trusted recording made of the entry point(s), arguments
encoded by `plain`. This process answers one line per call on the result descriptor, in order:
    [i, "r", <value>, <arguments after the call, or null when unchanged>]   returned
    [i, "x", "ExceptionType", "message"]                                     raised
    [i, "n", "type name"]                                                     returned something that is not plain data
after a first line ["load", "ok"] or ["load", "compile-error" | "runtime-error", "description"].
With `instance_of` (LeetCode style) and a program that defines that class, a call's name is a method of one
instance of it, made at the first call (an exception there is that call's answer, and the next call tries again).

A prelude (the imports a benchmark's harness gives every solution) runs in the program's namespace first.
"""

from __future__ import annotations

import builtins
import numbers
import sys
import traceback

SOLUTION_FILE = "solution.py"
PRELUDE_FILE = "<prelude>"
_MAX_MESSAGE = 1000
if "plain" not in globals():  # imported as a package module (tests); the worker passes in its own copy
    from sandbox.inside import plain


def _write_all(fd: int, data: bytes) -> None:
    import os

    while data:
        data = data[os.write(fd, data):]


def describe(exc: BaseException, source: str | None = None) -> str:
    """`Type: message (solution.py:line: source)` at the innermost frame in the program; without `traceback`,
    which costs a forked run ~250 page faults."""
    name = type(exc).__name__
    if isinstance(exc, SyntaxError):
        text = f"{name}: {exc.msg}"
        line = (exc.text or "").strip()
        if exc.lineno:
            text += f" ({SOLUTION_FILE}:{exc.lineno}: {line})" if line else f" ({SOLUTION_FILE}:{exc.lineno})"
        return text[:2000]
    try:
        message = str(exc)
    except BaseException:  # noqa: BLE001 - the program's own exception class
        message = "<exception message raised an error>"
    text = f"{name}: {message}" if message else name
    where, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == SOLUTION_FILE:
            where = tb.tb_lineno
        tb = tb.tb_next
    if where is not None and source is not None:
        lines = source.splitlines()
        line = lines[where - 1].strip() if 0 < where <= len(lines) else ""
        text += f" ({SOLUTION_FILE}:{where}: {line})" if line else f" ({SOLUTION_FILE}:{where})"
    return text[:2000]


def load(code: str, prelude: str = "") -> tuple[dict | None, list | None]:
    """(the program's namespace, None) or (None, the load line that says why it could not be loaded)."""
    try:
        compiled = compile(code, SOLUTION_FILE, "exec")
    except (SyntaxError, ValueError) as exc:
        return None, ["load", "compile-error", describe(exc)]
    namespace = {"__name__": "solution", "__builtins__": builtins, "__file__": SOLUTION_FILE}
    try:
        if prelude:
            exec(compile(prelude, PRELUDE_FILE, "exec"), namespace)
        exec(compiled, namespace)
    except BaseException as exc:  # noqa: BLE001 - SystemExit included: leaving during load is a failure
        return None, ["load", "runtime-error", describe(exc, code)]
    return namespace, None


def plain_numbers(value, depth: int = 0):
    """`value` with every number of a non-plain type (Fraction, Decimal, a numpy scalar) that equals an int or a float
    replaced by that int or float, inside lists, tuples, sets and dicts too: LeetCode-style harnesses compare answers
    with ==, where Fraction(3) is 3. Whatever this returns is the program's claim, as if it had returned it."""
    kind = type(value)
    if depth > 100:
        return value
    if kind in (list, tuple, set, frozenset):
        return kind(plain_numbers(item, depth + 1) for item in value)
    if kind is dict:
        return {plain_numbers(k, depth + 1): plain_numbers(v, depth + 1) for k, v in value.items()}
    if kind not in (bool, int, float, complex) and isinstance(value, numbers.Number):
        for plain_kind in (int, float):
            try:
                converted = plain_kind(value)
                if converted == value:
                    return converted
            except BaseException:  # noqa: BLE001 - a number that cannot say what it is stays what it is
                pass
    return value


def run_calls(code: str, calls: list, fd: int, prelude: str = "", instance_of: str = "",
              numbers_as_plain: bool = False) -> None:
    """Load `code`, then make each call [name, args_text, kwargs_text] and write its line on `fd` (see above). With
    `numbers_as_plain` (LeetCode-style oracles), answers go through `plain_numbers` first."""
    dumps = plain._dumps
    namespace, failure = load(code, prelude)
    if failure is not None:
        _write_all(fd, (dumps(failure) + "\n").encode())
        return
    _write_all(fd, b'["load","ok"]\n')
    owner = namespace.get(instance_of) if instance_of else None
    instance = None
    for index, (name, args_text, kwargs_text) in enumerate(calls):
        args, kwargs = plain.decode(args_text), plain.decode(kwargs_text)
        try:
            if isinstance(owner, type):
                if instance is None:
                    instance = owner()
                function = getattr(instance, name)
            elif name in namespace:
                function = namespace[name]
            else:
                raise NameError(f"name {name!r} is not defined")
            result = function(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - an exception is an answer too
            try:
                message = str(exc)[:_MAX_MESSAGE]
            except BaseException:  # noqa: BLE001
                message = ""
            line = dumps([index, "x", type(exc).__name__, message])
        else:
            try:
                value = plain.encode(plain_numbers(result) if numbers_as_plain else result)
            except plain.NotPlain as exc:
                line = dumps([index, "n", str(exc)])
            else:
                after = plain.encode(args)
                line = f'[{index},"r",{value},{"null" if after == args_text else after}]'
        _write_all(fd, (line + "\n").encode())


def run_program(code: str, prelude: str = "") -> int:
    """Run `code` as __main__ (stdin/stdout style), after `prelude` in its namespace; returns the exit status."""
    try:
        compiled = compile(code, SOLUTION_FILE, "exec")
    except (SyntaxError, ValueError) as exc:
        sys.stderr.write("".join(traceback.format_exception_only(type(exc), exc)))
        return 1
    main = type(sys)("__main__")
    main.__file__ = SOLUTION_FILE
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    try:
        if prelude:
            exec(compile(prelude, PRELUDE_FILE, "exec"), main.__dict__)
        exec(compiled, main.__dict__)
    except SystemExit as exc:
        status = exc.code
        if status is None:
            return 0
        if isinstance(status, int):
            return status & 0xFF
        try:
            sys.stderr.write(str(status) + "\n")
        except BaseException:  # noqa: BLE001
            pass
        return 1
    except BaseException as exc:  # noqa: BLE001
        try:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        except BaseException:  # noqa: BLE001
            pass
        return 1
    return 0


def flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass


def warm_up(fd: int, rounds: int = 16) -> None:
    """Run trusted programs through `run_calls` before the zygote starts, so children inherit warm code."""
    calls = [["f", plain.encode([[1, 2], 3]), plain.encode({})], ["f", plain.encode([[], 0]), plain.encode({})]]
    programs = ("from typing import List\ndef f(xs: List[int], k: int) -> List[int]:\n    return [x + k for x in xs]\n",
                "def f(xs, k):\n    xs.append(k)\n    return None\n", "def f(xs, k):\n    raise ValueError('x')\n",
                "def f(xs, k):\n    return (\n")
    for _ in range(rounds):
        for program in programs:
            run_calls(program, calls, fd)
