"""Trace mode: run a Python program line by line and write its trace on the result descriptor (stdlib only).

Runs in a candidate's process, like child.py, after the worker checked that the program stays inside the traceable
subset (sandbox/judge/traceable.py). The program runs with a builtins dict holding only the allowed builtins and an
`__import__` that hands out fresh stand-in modules holding only allowed names (`sys` among them: stdin, stdout,
setrecursionlimit, ...). So the program holds no name for this module, `sys.settrace`, `os` or any file object, and
cannot write on the result descriptor or change what the tracer records.

The tracer never calls the program's code: values are rendered by the tracer itself (plain data as Python's repr
writes it, other objects as `<TypeName>`), so a `__repr__` cannot run inside it.

One line per step, when both halves of it are known:
    ["s", line, [[name, value], ...], next, frame, entry]
line: the statement that ran; the variables of its frame after it ran (taken at that frame's next event: its next
line, its return, an exception leaving it), in the order they first got a value, functions, classes and modules left
out; next: the line of the following step, "<END>" after the last one, or "!ExceptionType" when an exception ends
the run; frame: which call this step ran in (numbered from 0 in order of first entry); entry: on the first step of
a frame, its variables on entry (the arguments), else null. Then ["e", "completed" | "exception", detail, truncated].
Past `max_steps` steps or `max_trace_bytes` bytes the tracer stops recording (the program runs on untraced) and
`truncated` is true.
"""

from __future__ import annotations

import builtins
import collections
import functools
import gc
import json
import operator
import os
import sys
import types

SOLUTION_FILE = "solution.py"
END = "<END>"
_write = os.write
_dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
_type = type
# Left out of the variables: functions, methods, modules, classes (any metaclass) and the like, by exact type.
_LEFT_OUT = {id(t) for t in (types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType,
                             staticmethod, classmethod, property, types.BuiltinMethodType, functools.partial,
                             types.GeneratorType)}
_type_name = type.__dict__["__name__"].__get__  # type's own slot: a metaclass's __name__ property never runs here
_function_name = types.FunctionType.__dict__["__name__"].__get__
_function_code = types.FunctionType.__dict__["__code__"].__get__
_RECURSION_CAP = 20_000
_RECURSION_FLOOR = 100
_TRACER_FRAMES = 5
_SUSPENDS = 0x20 | 0x80 | 0x200  # CO_GENERATOR, CO_COROUTINE, CO_ASYNC_GENERATOR
_OPTIMIZED = 0x1  # CO_OPTIMIZED: a function's frame, whose locals are the interpreter's own
_args = BaseException.__dict__["args"].__get__  # the real args, whatever a subclass defines
_mro = type.__dict__["__mro__"].__get__
_gc_disable, _gc_enable = gc.disable, gc.enable


# Kinds of value by the id of their exact type: `t in (int, ...)` would ask t's metaclass __eq__ (program code).
_SCALARS = {id(t) for t in (int, bool, float, complex, type(None), type(Ellipsis))}
_ATOMS = _SCALARS | {id(t) for t in (str, bytes, range)}  # values without finalizers, held or not
_INT_BITS_SHOWN = 14_000  # about 4,300 decimal digits (CPython's default limit for int -> str)
_second = operator.itemgetter(1)
_NUMBERS = {id(int), id(bool), id(float)}
_SIZES = {id(t): t.__sizeof__ for t in (list, tuple, dict, set, frozenset, bytearray, collections.deque)}
_HELD_BYTES = 256 * 1024 * 1024
_KEPT: list = []
_OUT_OF_MEMORY = b'\n["e","exception","MemoryError",true]\n'  # a torn line before it is dropped by the judge
_TEXTS = {id(t) for t in (str, bytes, bytearray)}
_SEQUENCES = {id(list): ("[", "]", "[]"), id(tuple): ("(", ")", "()"), id(set): ("{", "}", "set()"),
              id(frozenset): ("frozenset({", "})", "frozenset()"),
              id(collections.deque): ("deque([", "])", "deque([])")}
_MAPPINGS = {id(dict): "", id(collections.Counter): "Counter(", id(collections.OrderedDict): "OrderedDict(",
             id(collections.defaultdict): "defaultdict("}


def _render(value, budget: int) -> str:
    """Python's repr of plain data (exact builtin types, deque/Counter/defaultdict/OrderedDict), else <TypeName>;
    cut at `budget` characters (then '...'). Runs none of the program's code: types are told apart by identity."""
    parts: list[str] = []
    size = [0]

    def put(text: str) -> bool:
        parts.append(text)
        size[0] += len(text)
        return size[0] <= budget

    def walk(v, depth: int) -> bool:
        t = _type(v)
        kind = id(t)
        if kind in _SCALARS:
            if t is int and v.bit_length() > _INT_BITS_SHOWN:  # decimal text of a huge int takes quadratic time
                return put("<int of %d bits>" % v.bit_length())
            return put(repr(v))
        if kind in _TEXTS:
            return put(repr(v[:budget + 1]) if len(v) > budget else repr(v))
        if depth > 50:
            return put("...")
        if kind in _SEQUENCES:
            opening, closing, empty = _SEQUENCES[kind]
            if not v:
                return put(empty)
            if not put(opening):
                return False
            for i, item in enumerate(v):  # a set in its own order, as repr writes it (hash seed 0: reproducible)
                if (i and not put(", ")) or not walk(item, depth + 1):
                    return False
            if t is collections.deque and v.maxlen is not None:
                closing = "], maxlen=%d)" % v.maxlen
            return put("," + closing if t is tuple and len(v) == 1 else closing)
        if kind in _MAPPINGS:
            prefix = _MAPPINGS[kind]
            if t is collections.defaultdict:
                factory = v.default_factory
                if factory is None:
                    prefix += "None, "
                elif issubclass(_type(factory), type):
                    prefix += "<class '%s'>, " % _class_name(factory)
                elif _type(factory) is types.FunctionType:
                    name = _function_name(factory)  # a str subclass's __str__ would run in "%s"
                    prefix += "<function %s>, " % (name if _type(name) is str and name.isidentifier() else "?")
                else:
                    prefix += "<%s>, " % _class_name(_type(factory))
            items = list(dict.items(v))  # dict's own order: an OrderedDict's may differ, and it is found by hashing
            if t is collections.OrderedDict or t is collections.Counter:
                if not all(id(_type(key)) in _ATOMS for key, _ in items):
                    return put("<%s>" % _class_name(t))  # its order needs the keys' hashes: program code
                if t is collections.OrderedDict:
                    items = list(collections.OrderedDict.items(v))
                    if not items:
                        return put("OrderedDict()")
                    if not put("OrderedDict(["):
                        return False
                    for i, (key, item) in enumerate(items):
                        if (i and not put(", ")) or not put("(") or not walk(key, depth + 1) or not put(", ") \
                                or not walk(item, depth + 1) or not put(")"):
                            return False
                    return put("])")
                if not items:
                    return put("Counter()")
                if not all(id(_type(count)) in _NUMBERS for _, count in items):
                    return put("<Counter>")  # its order compares the counts: program code for other types
                items.sort(key=_second, reverse=True)  # most_common order, as its repr writes it
            if not put(prefix + "{"):
                return False
            for i, (key, item) in enumerate(items):
                if (i and not put(", ")) or not walk(key, depth + 1) or not put(": ") or not walk(item, depth + 1):
                    return False
            return put("}" + (")" if prefix else ""))
        return put("<%s>" % _class_name(t))

    walk(value, 0)
    text = "".join(parts)
    return text if len(text) <= budget else text[:budget] + "..."


def _class_name(t: type) -> str:
    """The class's name, or its nearest base's when the program named it otherwise than with an exact str that is
    an identifier (a str subclass's __str__ would run when formatted)."""
    for base in _mro(t):
        name = _type_name(base)
        if _type(name) is str and name.isidentifier():
            return name
    return "object"


class _Stdin:
    """The stand-in for sys.stdin: the real stream's methods, behind closures the program cannot open."""

    def __init__(self, stream):
        self.readline = stream.readline
        self.read = stream.read
        self.readlines = stream.readlines
        self.buffer = _Buffer(stream.buffer)

    def __iter__(self):
        return iter(self.readline, "")


class _Buffer:
    def __init__(self, raw):
        self.readline = raw.readline
        self.read = raw.read
        self.readlines = raw.readlines

    def __iter__(self):
        return iter(self.readline, b"")


class _Stdout:
    def __init__(self, stream):
        self.write = stream.write
        self.flush = stream.flush


def _set_recursion_limit(limit) -> None:
    """sys.setrecursionlimit for the program: within [_RECURSION_FLOOR, _RECURSION_CAP], plus room for the tracer's
    own frame at the deepest call."""
    sys.setrecursionlimit(max(_RECURSION_FLOOR, min(int(limit), _RECURSION_CAP)) + _TRACER_FRAMES)


def _stand_in(name: str, names: list[str], stdin: _Stdin) -> types.ModuleType:
    """A fresh module holding only `names` of the real one (`*`: its public names that are not modules)."""
    module = types.ModuleType(name)
    if name == "sys":
        real = {"stdin": stdin, "stdout": _Stdout(sys.stdout), "stderr": _Stdout(sys.stderr),
                "setrecursionlimit": _set_recursion_limit,
                "getrecursionlimit": sys.getrecursionlimit, "maxsize": sys.maxsize, "exit": sys.exit,
                "argv": [SOLUTION_FILE], "float_info": sys.float_info,
                "set_int_max_str_digits": sys.set_int_max_str_digits}
        for attribute in names:
            setattr(module, attribute, real[attribute])
        return module
    source = __import__(name)
    for attribute in (names if "*" not in names else [n for n in dir(source) if not n.startswith("_")]):
        value = getattr(source, attribute)
        if not isinstance(value, types.ModuleType):
            setattr(module, attribute, value)
    # `from M import *` binds these, whatever the program later sets on the stand-in (the judge expects them)
    module.__all__ = [n for n in vars(module) if not n.startswith("_")]
    return module


def _program_builtins(allowed_builtins: list[str], allowed_modules: dict[str, list[str]]) -> dict:
    stdin = _Stdin(sys.stdin)
    made: dict[str, types.ModuleType] = {}

    def importer(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002 - __import__'s signature
        if level or name not in allowed_modules:
            raise ImportError(f"module {name!r} is not available when tracing")
        if name not in made:  # on first import only: a module the worker did not preload costs an import
            made[name] = _stand_in(name, allowed_modules[name], stdin)
        return made[name]

    def open_stdin(file, mode="r", *args, **kwargs):  # `open(0).read()`, a common way to read stdin; nothing else
        if file != 0 or mode not in ("r", "rb", "rt"):
            raise PermissionError("only open(0) (stdin) is available when tracing")
        return stdin.buffer if "b" in mode else stdin

    table = {name: getattr(builtins, name) for name in allowed_builtins if hasattr(builtins, name)}
    for name, value in vars(builtins).items():  # every exception class: programs raise and catch them
        if isinstance(value, type) and issubclass(value, BaseException):
            table[name] = value
    table.update(__import__=importer, __build_class__=builtins.__build_class__, __name__="builtins",
                 open=open_stdin, exit=sys.exit, quit=sys.exit)
    return table


class _Recorder:
    def __init__(self, fd: int, max_steps: int, max_value_chars: int, max_trace_bytes: int):
        self.fd, self.max_steps, self.max_value_chars, self.max_bytes = fd, max_steps, max_value_chars, max_trace_bytes
        # [line, pairs or None, next or None, frame, entry], from the first one not yet written
        self.steps: list[list] = []
        self.pending: dict = {}  # frame -> its step still waiting for the variables after it
        self.order: dict = {}  # frame -> names in the order they first had a value
        self.numbers: dict = {}  # frame -> its number
        self.entries: dict = {}  # frame -> its variables on entry, until its first step takes them
        self.calls = 0
        self.buffer: list[str] = []
        self.written = 0
        self.count = 0
        self.stopped = False
        self.truncated = False
        self.opaque: set = set()  # class-body frames: their steps are recorded, their namespace never read
        # CPython copies a function's locals into its f_locals dict before every trace call, which drops the values
        # replaced since the last call: their finalizers (__del__, a generator's finally) would run there, untraced.
        # Every value read from a function's locals (but atoms, which have none) is held, for good (see run_traced).
        self.held: dict[int, object] = {}
        self.held_bytes = 0  # their sizes (exact builtin types' own __sizeof__; 64 for others); past a cap: truncated
        self.depth = 0  # hooks running (nested if one still runs program code)

    # -- the hooks ---------------------------------------------------------------------------------------------
    # An exception in a trace function makes CPython drop it silently, and the program would run on untraced: both
    # hooks catch everything (a RecursionError at the program's deepest call too) and stop recording, truncated.
    # The cyclic collector is off inside them, so no finalizer of the program's garbage runs there.
    def on_call(self, frame, event, arg):
        if self.stopped:
            return None
        self._enter()
        try:
            return self._on_call(frame)
        except BaseException:  # noqa: BLE001 - see above
            self.stopped = self.truncated = True
            return None
        finally:
            self._leave()

    def on_event(self, frame, event, arg):
        if self.stopped:
            return None
        self._enter()
        try:
            return self._on_event(frame, event)
        except BaseException:  # noqa: BLE001 - see above
            self.stopped = self.truncated = True
            return None
        finally:
            self._leave()

    def _enter(self) -> None:
        self.depth += 1
        if self.depth == 1:
            _gc_disable()

    def _leave(self) -> None:
        self.depth -= 1
        if self.depth == 0:
            _gc_enable()

    def _on_call(self, frame):
        code = frame.f_code
        if code.co_filename != SOLUTION_FILE:
            return None
        if code.co_name.startswith("<") and code.co_name != "<module>":  # comprehensions, lambdas, genexprs
            return None
        if not code.co_flags & _OPTIMIZED and code.co_name != "<module>":
            # A class body: its namespace may be the program's own mapping (a metaclass's __prepare__), and reading
            # f_locals would make CPython copy the body's cells into it (and back after each trace call), running
            # the mapping's code or dropping its values outside the trace. Never read.
            self.opaque.add(frame)
        if frame not in self.numbers:  # a generator's frame comes back here each time it resumes
            self.numbers[frame] = self.calls
            self.calls += 1
            self.entries[frame] = self._variables(frame)
        return self.on_event

    def _on_event(self, frame, event):
        step = self.pending.pop(frame, None)
        if step is not None:
            step[1] = self._variables(frame)
        if event == "line":
            if self.steps and self.steps[-1][2] is None:
                self.steps[-1][2] = frame.f_lineno
            if self.count >= self.max_steps:
                self._stop()
                return None
            step = [frame.f_lineno, None, None, self.numbers.get(frame, 0), self.entries.pop(frame, None)]
            self.steps.append(step)
            self.pending[frame] = step
            self.count += 1
        elif event == "return" and not frame.f_code.co_flags & _SUSPENDS:  # a yield returns too: keep its frame
            self.order.pop(frame, None)
            self.numbers.pop(frame, None)
            self.opaque.discard(frame)
        self._flush_ready()
        return self.on_event

    # -- recording ---------------------------------------------------------------------------------------------
    def _variables(self, frame) -> list:
        if frame in self.opaque:
            return []
        local = frame.f_locals  # a function's own dict, or the module's namespace (our dict)
        if frame.f_code.co_flags & _OPTIMIZED:
            held = self.held
            for value in dict.values(local):
                kind = id(_type(value))
                if kind not in _ATOMS and id(value) not in held:
                    held[id(value)] = value
                    size = _SIZES.get(kind)
                    self.held_bytes += size(value) if size is not None else 64
            if self.held_bytes > _HELD_BYTES:
                raise MemoryError("values held for the trace")  # the hooks stop: truncated
        # exact str keys only: a str subclass's __eq__/__hash__ would run on every lookup
        snapshot = {name: value for name, value in dict.items(local) if _type(name) is str}
        order = self.order.setdefault(frame, [])
        seen = set(order)
        for name in snapshot:
            if name not in seen and name.isidentifier() and not (name.startswith("__") and name.endswith("__")):
                order.append(name)
                seen.add(name)
        pairs = []
        for name in order:
            if name in snapshot:
                value = snapshot[name]
                t = _type(value)
                if id(t) not in _LEFT_OUT and not issubclass(t, type):  # not isinstance: it asks value.__class__
                    pairs.append([name, _render(value, self.max_value_chars)])
        return pairs

    def _flush_ready(self) -> None:
        done = 0
        for step in self.steps:
            if step[1] is None or step[2] is None:
                break
            line = _dumps(["s", *step])
            if self.written + len(line) + 1 > self.max_bytes:
                self._stop()
                return
            self.buffer.append(line)
            self.written += len(line) + 1
            done += 1
        if done:
            del self.steps[:done]
        if len(self.buffer) >= 256:
            self._send()

    def _send(self) -> None:
        if self.buffer:
            data = ("\n".join(self.buffer) + "\n").encode()
            self.buffer = []
            while data:
                data = data[_write(self.fd, data):]

    def _stop(self) -> None:
        """Past a limit: keep what is complete, record nothing more."""
        sys.settrace(None)
        self.stopped = self.truncated = True
        self.steps = []
        self.pending.clear()

    def finish(self, exc: BaseException | None) -> int:
        """Write what is left and the end event; returns the exit status. Runs none of the program's code. Out of
        memory, what is complete is kept and a prepared end line says so."""
        try:
            return self._finish(exc)
        except MemoryError:
            self.held = self.steps = self.pending = None
            try:
                self._send()  # the steps already written out, if there is memory for it
            except MemoryError:
                pass
            self.buffer = []
            _write(self.fd, _OUT_OF_MEMORY)
            return 1

    def _finish(self, exc: BaseException | None) -> int:
        if not self.stopped and sys.gettrace() != self.on_call:  # dropped by something the hooks did not see
            self.truncated = True
        sys.settrace(None)
        stopped = self.stopped or self.truncated
        self.stopped = True
        leaving = exc is not None and issubclass(_type(exc), SystemExit)  # not isinstance: it asks exc.__class__
        exception = None if exc is None or leaving else _class_name(_type(exc))
        if stopped:
            self._flush_ready()  # the complete steps from the first unwritten one on; the rest is lost
        else:
            for frame, step in list(self.pending.items()):  # frames still alive at the end (the top level)
                step[1] = self._variables(frame)
            if self.steps and self.steps[-1][2] is None:
                self.steps[-1][2] = "!" + exception if exception else END
            self._flush_ready()
        status, detail = 0, ""
        if leaving:
            code = _args(exc)[0] if len(_args(exc)) == 1 else None
            status = code if _type(code) is int else 0 if code is None else 1
            detail = "SystemExit: " + _render(code, 200)
        elif exc is not None:
            args = _args(exc)
            status = 1
            message = args[0] if len(args) == 1 and _type(args[0]) is str else _render(args, 200) if args else ""
            detail = f"{exception}: {message}" if message else exception
        self.buffer.append(_dumps(["e", "exception" if exception else "completed", detail[:1000], self.truncated]))
        self._send()
        return status & 0xFF


def run_traced(payload: dict, fd: int) -> int:
    """Run the program of a trace payload under the tracer; returns the exit status. `payload`: code, call
    (None, or [entry_point, plain-encoded argument list]), modules, builtins, max_steps, max_value_chars,
    max_trace_bytes."""
    code = payload["code"]
    recorder = _Recorder(fd, payload["max_steps"], payload["max_value_chars"], payload["max_trace_bytes"])
    namespace = {"__name__": "__main__", "__builtins__": _program_builtins(payload["builtins"], payload["modules"])}
    compiled = compile(code, SOLUTION_FILE, "exec")
    call = payload["call"]
    failure = None
    sys.setrecursionlimit(sys.getrecursionlimit() + _TRACER_FRAMES)
    try:
        if call is None:
            sys.settrace(recorder.on_call)
            exec(compiled, namespace)
        else:
            namespace["__name__"] = "solution"
            exec(compiled, namespace)
            args = plain.decode(call[1])
            function = namespace.get(call[0])
            if function is None:
                raise NameError(f"name {call[0]!r} is not defined")
            if (_type(function) is not types.FunctionType or _function_code(function).co_filename != SOLUTION_FILE
                    or _function_code(function).co_name.startswith("<")):
                raise TypeError(f"{call[0]} is not a function the program defines with def (only those are traced)")
            sys.settrace(recorder.on_call)
            function(*args)
    except BaseException as exc:  # noqa: BLE001 - SystemExit included: the program's ending, recorded as such
        failure = exc
    status = recorder.finish(failure)
    # Never released: the child leaves by os._exit, so no finalizer of the program's runs after the trace, where
    # it would print or count unrecorded.
    _KEPT.append((namespace, recorder, failure))
    return status


if "plain" not in globals():  # imported as a package module (tests); the worker passes in its own copy
    from sandbox.inside import plain
