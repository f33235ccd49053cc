"""Which Python programs can be traced, and checking what a traced run sends back. Stdlib only; runs in the worker.

A trace is only worth anything if the program could not have written it. The tracer (sandbox/inside/tracer.py) has
to run in the program's own process (it reads the program's frames), so the defence is what the program can name:
before a program is traced, this module parses it and refuses it unless it stays inside a subset of Python in which
nothing leads to the interpreter's machinery, where the tracer and its channel live:

  - imports only of an allow-list of pure modules (math, collections, heapq, ...), which the tracer hands over as
    fresh modules holding only allow-listed names (`sys` is a stand-in with stdin, stdout, setrecursionlimit, ...);
  - no attribute whose name starts with "_" unless it is a data-model method (`__init__`, `__lt__`, ...), no
    frame, code, traceback or generator-internals attribute (`f_back`, `gi_frame`, `tb_frame`, `co_code`, ...), no
    `obj` (an AttributeError's: the object a failed lookup was made on); `.format`/`.format_map` on string literals
    only, whose fields are checked the same way (they read the attributes they name);
  - no positional class pattern (`case P(x)` reads the attribute `P.__match_args__` names) but of builtin types;
  - no builtins that reach objects by name or run text (getattr, setattr, vars, globals, eval, exec, compile,
    __import__, breakpoint, ...): they are absent at run time too, and named here for a clear error; `open` is there
    for `open(0)` (stdin) only.

What the program cannot name it cannot reach: not the tracer, not `os`, not a file object to write the trace
descriptor with. Its stdout and stderr are separate streams the judge never parses for events. Every event that
comes back is read strictly (`parse_events`) and checked against this module's own parse of the program: lines
must be statement lines of the program, names must be names the program binds, steps must chain.

Not protected against: a memory-safety bug of the interpreter reachable from this subset.
"""

from __future__ import annotations

import ast
import json
import re

SOLUTION_FILE = "solution.py"

# Pure modules, and the names of each a traced program may use (what CodeNet and HumanEval programs import).
# Left out on purpose: anything that reads or sets attributes by a name given at run time (operator.attrgetter,
# functools.wraps, string.Formatter, dataclasses, typing.get_type_hints, copy: its __reduce_ex__ protocol sets
# attributes named by the program), runs text, or holds files or processes.
MODULES: dict[str, tuple[str, ...]] = {
    "math": ("*",),
    "cmath": ("*",),
    "heapq": ("heappush", "heappop", "heapify", "heapreplace", "heappushpop", "nlargest", "nsmallest", "merge"),
    "bisect": ("bisect", "bisect_left", "bisect_right", "insort", "insort_left", "insort_right"),
    "itertools": ("*",),
    "functools": ("reduce", "lru_cache", "cache", "partial", "cmp_to_key", "total_ordering"),
    "collections": ("deque", "defaultdict", "Counter", "OrderedDict", "namedtuple", "ChainMap"),
    "string": ("ascii_letters", "ascii_lowercase", "ascii_uppercase", "digits", "hexdigits", "octdigits",
               "punctuation", "printable", "whitespace", "capwords"),
    "re": ("compile", "search", "match", "fullmatch", "split", "findall", "finditer", "sub", "subn", "escape",
           "IGNORECASE", "I", "MULTILINE", "M", "DOTALL", "S", "VERBOSE", "X", "ASCII", "A", "error"),
    "random": ("random", "randint", "randrange", "choice", "choices", "shuffle", "sample", "uniform", "seed",
               "gauss", "Random"),
    "fractions": ("Fraction",),
    "decimal": ("Decimal", "getcontext", "localcontext", "ROUND_HALF_UP", "ROUND_HALF_EVEN", "ROUND_DOWN",
                "ROUND_UP", "ROUND_FLOOR", "ROUND_CEILING", "InvalidOperation"),
    "array": ("array",),
    "hashlib": ("md5", "sha1", "sha256"),
    "operator": ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos", "abs", "eq", "ne", "lt",
                 "le", "gt", "ge", "and_", "or_", "xor", "not_", "truth", "invert", "lshift", "rshift", "itemgetter",
                 "concat", "contains", "countOf", "indexOf", "index", "iadd", "imul", "mul", "matmul"),
    "typing": ("List", "Dict", "Tuple", "Set", "FrozenSet", "Optional", "Union", "Any", "Callable", "Iterable",
               "Iterator", "Sequence", "Mapping", "Generator", "Deque", "DefaultDict", "TypeVar"),
    "sys": ("stdin", "stdout", "stderr", "setrecursionlimit", "getrecursionlimit", "maxsize", "exit", "argv",
            "float_info", "set_int_max_str_digits"),
}

BUILTINS = (
    "abs", "all", "any", "ascii", "bin", "bool", "bytearray", "bytes", "callable", "chr", "classmethod", "complex",
    "dict", "divmod", "enumerate", "filter", "float", "format", "frozenset", "hash", "hasattr", "hex", "id", "input",
    "int", "isinstance", "issubclass", "iter", "len", "list", "map", "max", "memoryview", "min", "next", "object",
    "oct", "ord", "pow", "print", "property", "range", "repr", "reversed", "round", "set", "slice", "sorted",
    "staticmethod", "str", "sum", "super", "tuple", "type", "zip", "aiter", "anext",
    "True", "False", "None", "Ellipsis", "NotImplemented",
)
REMOVED_BUILTINS = frozenset(("getattr", "setattr", "delattr", "vars", "globals", "locals", "dir", "eval", "exec",
                              "compile", "breakpoint", "help", "__import__", "__build_class__", "copyright",
                              "credits", "license", "__loader__", "__spec__", "__builtins__"))

# Data-model methods: calling them does what an operator does. Everything else that starts with "_" is off limits
# (__dict__, __globals__, __subclasses__, __self__, __closure__, __reduce__, __getattribute__, ...).
DATA_MODEL = frozenset(
    "__init__ __new__ __name__ __qualname__ __doc__ __class__ __slots__ __repr__ __str__ __format__ __hash__ "
    "__bool__ __eq__ __ne__ __lt__ __le__ __gt__ __ge__ __len__ __iter__ __next__ __reversed__ __contains__ "
    "__getitem__ __setitem__ __delitem__ __missing__ __call__ __enter__ __exit__ __add__ __radd__ __iadd__ __sub__ "
    "__rsub__ __isub__ __mul__ __rmul__ __imul__ __truediv__ __rtruediv__ __itruediv__ __floordiv__ __rfloordiv__ "
    "__ifloordiv__ __mod__ __rmod__ __imod__ __pow__ __rpow__ __ipow__ __divmod__ __rdivmod__ __neg__ __pos__ "
    "__abs__ __invert__ __and__ __rand__ __iand__ __or__ __ror__ __ior__ __xor__ __rxor__ __ixor__ __lshift__ "
    "__rlshift__ __ilshift__ __rshift__ __rrshift__ __irshift__ __matmul__ __rmatmul__ __index__ __int__ "
    "__float__ __complex__ __round__ __floor__ __ceil__ __trunc__ __post_init__".split())
SELF_MATCHING = frozenset(("bool", "bytearray", "bytes", "dict", "float", "frozenset", "int", "list", "set", "str",
                           "tuple"))  # `case int(x)` binds the subject itself: no attribute is read
INTERNALS = re.compile(r"^(f|gi|cr|ag|tb|co)_")  # frames, generators, coroutines, tracebacks, code
# An AttributeError's `obj` is the object a failed lookup was made on, which may be one the program never held; and
# str.format / format_map read attributes named in the format string (checked here when the string is a constant).
ATTRIBUTES_REFUSED = frozenset(("obj",))
FORMATTERS = frozenset(("format", "format_map"))


class NotTraceable(ValueError):
    """The program uses something outside the traceable subset; `line` is where (1-based), or 0."""

    def __init__(self, line: int, message: str):
        super().__init__(f"{SOLUTION_FILE}:{line}: {message}" if line else message)
        self.line = line


def _attribute_allowed(name: str) -> bool:
    if INTERNALS.match(name) or name in ATTRIBUTES_REFUSED:
        return False
    return not name.startswith("_") or name in DATA_MODEL


def _check_format_string(text: str, line: int) -> None:
    """Every field of a str.format template may only name allowed attributes (nested specs too)."""
    import string

    try:
        fields = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise NotTraceable(line, f"a format string that does not parse: {exc}") from None
    for _, field, spec, _ in fields:
        for name in re.findall(r"\.([^.\[]*)", field or ""):
            if not _attribute_allowed(name):
                raise NotTraceable(line, f"attribute {name!r} (in a format string) is not available when tracing")
        if spec and "{" in spec:
            _check_format_string(spec, line)


def check_traceable(source: str) -> ast.Module:
    """Parse `source` and raise NotTraceable at the first construct outside the traceable subset; returns the tree."""
    try:
        tree = ast.parse(source, SOLUTION_FILE)
    except SyntaxError as exc:
        raise NotTraceable(exc.lineno or 0, f"SyntaxError: {exc.msg}") from None
    except ValueError as exc:  # null bytes
        raise NotTraceable(0, f"the program does not parse: {exc}") from None
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Attribute) and not _attribute_allowed(node.attr):
            raise NotTraceable(line, f"attribute {node.attr!r} is not available when tracing (introspection)")
        if isinstance(node, ast.Attribute) and node.attr == "__class__" and not isinstance(node.ctx, ast.Load):
            raise NotTraceable(line, "assigning __class__ is not available when tracing")
        if isinstance(node, ast.Attribute) and node.attr in FORMATTERS:
            if not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
                raise NotTraceable(line, f".{node.attr} is available when tracing on a string literal only (it reads "
                                         "the attributes its template names); use an f-string")
            _check_format_string(node.value.value, line)
        if isinstance(node, ast.Name) and node.id in REMOVED_BUILTINS:
            raise NotTraceable(line, f"{node.id!r} is not available when tracing")
        if isinstance(node, ast.Import):
            for alias in node.names:
                _check_import(alias.name, line)
        elif isinstance(node, ast.ImportFrom):
            if node.level or not node.module:
                raise NotTraceable(line, "relative imports are not available when tracing")
            allowed = _check_import(node.module, line)
            for alias in node.names:
                if alias.name != "*" and "*" not in allowed and alias.name not in allowed:
                    raise NotTraceable(line, f"{node.module}.{alias.name} is not available when tracing "
                                             f"(allowed: {', '.join(allowed)})")
        elif isinstance(node, ast.MatchClass):
            for name in node.kwd_attrs:
                if not _attribute_allowed(name):
                    raise NotTraceable(line, f"attribute {name!r} is not available when tracing (introspection)")
            if node.patterns and not (isinstance(node.cls, ast.Name) and node.cls.id in SELF_MATCHING):
                # `case P(v)` reads the attribute P.__match_args__ names: an attribute by a name given at run time
                raise NotTraceable(line, "positional class patterns are available when tracing for builtin types "
                                         f"only ({', '.join(sorted(SELF_MATCHING))})")
    if SELF_MATCHING & bound_names(tree):
        for node in ast.walk(tree):  # `case int(x)` must mean the builtin int
            if (isinstance(node, ast.MatchClass) and node.patterns and isinstance(node.cls, ast.Name)
                    and node.cls.id in bound_names(tree)):
                raise NotTraceable(node.lineno, f"a positional class pattern of {node.cls.id!r}, which the "
                                                "program rebinds")
    return tree


def _check_import(module: str, line: int) -> tuple[str, ...]:
    if module not in MODULES:
        raise NotTraceable(line, f"module {module!r} is not available when tracing (allowed: "
                                 f"{', '.join(sorted(MODULES))})")
    return MODULES[module]


def code_lines(tree: ast.Module) -> frozenset[int]:
    """Lines that hold bytecode of the program (compiled here, never run): the only lines a line event can name."""
    lines: set[int] = set()
    stack = [compile(tree, SOLUTION_FILE, "exec")]
    while stack:
        code = stack.pop()
        lines.update(line for _, _, line in code.co_lines() if line is not None)
        stack.extend(const for const in code.co_consts if isinstance(const, type(code)))
    return frozenset(lines)


def star_names(module: str) -> list[str]:
    """What `from MODULE import *` binds in a traced program: the names its stand-in holds (sandbox/inside/tracer.py
    builds it the same way)."""
    allowed = MODULES.get(module, ())
    if "*" not in allowed:
        return list(allowed)
    import types

    source = __import__(module)
    return [n for n in dir(source) if not n.startswith("_") and not isinstance(getattr(source, n), types.ModuleType)]


def bound_names(tree: ast.Module) -> frozenset[str]:
    """Every name the program binds (assignments, loop targets, parameters, imports, defs, except/with/match
    targets): the only variable names a step can report."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
            names.update(star_names(node.module))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
    # private names (`__x`) inside a class are mangled to `_Class__x`; any class may be the one (over-approximate)
    classes = {node.name.lstrip("_") for node in ast.walk(tree) if isinstance(node, ast.ClassDef)} - {""}
    names.update(f"_{cls}{name}" for cls in classes for name in list(names)
                 if name.startswith("__") and not name.endswith("__"))
    return frozenset(names)


# ------------------------------------------------------------------------------------------ reading the events

END = "<END>"  # `next` of the last step of a run that completed


OUT_OF_MEMORY = b'["e","exception","MemoryError",true]'  # what the tracer writes when it runs out of memory


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


class BadTrace(ValueError):
    """The events are not a trace of this program (malformed, or inconsistent with its source)."""


class Program:
    """What the judge knows of a traceable program from its own parse: the lines that hold code and the names bound."""

    def __init__(self, source: str):
        tree = check_traceable(source)
        self.lines = code_lines(tree)
        self.names = bound_names(tree)


def parse_events(data: bytes, program: Program, *, max_steps: int, max_value_chars: int, cut: bool = False) -> dict:
    """Read the tracer's lines strictly and check them against the program's own parse (`program`).

    Lines: ["s", line, [[name, value_repr], ...], next, frame, entry] per step (`next`: a line number, "<END>", or an
    exception type name prefixed by "!"; `frame`: the call's number; `entry`: null, or on a frame's first step its
    variables on entry), then one ["e", ending, detail, truncated] line. Returns {"steps": [{"line", "vars", "next",
    "frame", "entry"}], "ending", "detail", "truncated"}; raises BadTrace on anything else. `cut`: the run was
    stopped (time, memory): the complete lines are the trace, ending "stopped", truncated."""
    lines, names = program.lines, program.names
    steps: list[dict] = []
    ending = None
    raw_lines = data.split(b"\n")
    if cut or data.endswith(b"\n"):
        raw_lines.pop()  # "" after the last newline, or a line the stop cut short
    if raw_lines and raw_lines[-1] == OUT_OF_MEMORY:  # the tracer ran out of memory: a line may be torn before it
        raw_lines = [line for line in raw_lines if _is_json(line)]
    for number, raw in enumerate(raw_lines, 1):
        if ending is not None:
            raise BadTrace(f"event {number} after the end event")
        try:
            event = json.loads(raw)
        except ValueError:
            raise BadTrace(f"event {number} is not JSON") from None
        if not isinstance(event, list) or not event or event[0] not in ("s", "e"):
            raise BadTrace(f"event {number} is not a step or end event")
        if event[0] == "e":
            if (len(event) != 4 or event[1] not in ("completed", "exception")
                    or not isinstance(event[2], str) or not isinstance(event[3], bool)):
                raise BadTrace(f"end event {number} is malformed")
            ending = {"ending": event[1], "detail": event[2][:1000], "truncated": event[3]}
            continue
        steps.append(_step(event, number, lines, names, max_value_chars))
        if len(steps) > max_steps:
            raise BadTrace(f"more than {max_steps} steps")
    if cut:
        ending = ending or {"ending": "stopped", "detail": "", "truncated": True}
    if ending is None:
        raise BadTrace("no end event")
    for index in range(len(steps) - 1):  # consecutive steps chain: what one says runs next is what runs next
        if steps[index]["next"] != steps[index + 1]["line"]:
            raise BadTrace(f"step {index} says line {steps[index]['next']} runs next, step {index + 1} ran line "
                           f"{steps[index + 1]['line']}")
    if steps and ending["ending"] == "completed" and not ending["truncated"] and steps[-1]["next"] != END:
        raise BadTrace("the run completed but its last step does not end it")
    return {"steps": steps, **ending}


def _step(event: list, number: int, lines: frozenset[int], names: frozenset[str], max_value_chars: int) -> dict:
    if len(event) != 6 or not isinstance(event[2], list) or type(event[4]) is not int or event[4] < 0:
        raise BadTrace(f"step event {number} is malformed")
    _, line, pairs, following, frame, entry = event
    if type(line) is not int or line not in lines:
        raise BadTrace(f"step event {number}: line {line!r} holds no code of the program")
    if type(following) is int:
        if following not in lines:
            raise BadTrace(f"step event {number}: next line {following} holds no code of the program")
    elif not (following == END or (isinstance(following, str) and following.startswith("!")
                                   and following[1:].isidentifier())):
        raise BadTrace(f"step event {number}: next {following!r} is not a line, {END} or !Exception")
    variables = _variables(pairs, number, names, max_value_chars)
    if entry is not None:
        if not isinstance(entry, list):
            raise BadTrace(f"step event {number}: entry is not a list of variables")
        entry = _variables(entry, number, names, max_value_chars)
    return {"line": line, "vars": variables, "next": following, "frame": frame, "entry": entry}


def _variables(pairs: list, number: int, names: frozenset[str], max_value_chars: int) -> dict[str, str]:
    variables: dict[str, str] = {}
    for pair in pairs:
        if (not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str)
                or not isinstance(pair[1], str)):
            raise BadTrace(f"step event {number}: a variable is not [name, value]")
        name, value = pair
        if name not in names:
            raise BadTrace(f"step event {number}: {name!r} is not a name the program binds")
        if name in variables:
            raise BadTrace(f"step event {number}: {name!r} twice")
        if len(value) > max_value_chars + 3:  # "..." marks a cut value
            raise BadTrace(f"step event {number}: the value of {name!r} is longer than the limit")
        variables[name] = value
    return variables
