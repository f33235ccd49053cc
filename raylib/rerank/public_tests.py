"""The tests a problem's prompt shows (never its hidden ones), as sandbox tests: what a public-tests verifier runs.

    from raylib.rerank.public_tests import docstring_examples, public_inputs, public_tests
    docstring_examples(problem.prompt, problem.entry_point)  # [Example(call="add(2, 3)", expected="5"), ...]
    tests = public_tests(problem)         # AssertionTests (one assertion per example) / StdioTests / None: none shown
    request = build_request(problem.model_copy(update={"tests": tests}), program, limit_s=1.0, memory_mb=1024)
    public_inputs(problem)                # ["add(2, 3)", ...] (Python calls) / the public stdin texts / None

Where the visible tests come from, in order:

1. `problem.public_tests` when the loader (LiveCodeBench, CodeContests public cases) or the user's jsonl set it.
2. Python problems whose prompt shows `assert` statements that name the entry point (MBPP, MBPP+; any assert line
   when the entry point is unknown, as in google MBPP rows): those assertions, as the prompt writes them.
3. Otherwise the examples of the entry point's docstring (HumanEval, HumanEval+, MultiPL-E Python), in every form
   HumanEval writes them: `>>> f(x)` and its output lines (or `>>> f(x) == y`); `f(x) == y`, `f(x) ➞ y` (also `->`,
   `=>`, `==>`, `→`, `=`, `# =>`), `f(x) returns y`, `f(x) should return y`, `f(x) == 1 + 2 = 3` (checked
   arithmetic, the last value); `Input: a = 1, b = [2]` ... `Output: y` (names are the parameters; `name : value`
   lines too); `For a = 1, b = 2 the output should be y`. Only examples whose arguments and expected value are
   Python literals are kept (a `>>>` line may also wrap the call in a builtin, e.g. `round(f(x), 2)`); prose numbers,
   recurrences over names (`fib(n) -> fib(n-1) + ...`), calls of another name and unquoted strings are dropped.

Each example becomes one assertion, so a program's score is the fraction it passes: `assert f(x) == y`, `assert f(x)
is None`, or `assert _public_close(f(x), y)` when `y` holds a float (equal within 1e-6 absolute or 1e-9 relative,
also inside lists, tuples and dicts; the helper is the tests' setup_code). The assertions carry the problem's
reference solution, so the sandbox judges them by replay. Docstring examples that are themselves wrong (the canonical
solution disagrees) are listed in `ERRATA` and dropped from `public_tests`. Pure: stdlib and pydantic only.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import math
import operator
import re
import tokenize
from io import StringIO

from raylib.data.problems import Problem
from sandbox.schema import AssertionTests, StdioTests, Tests

__all__ = ["ERRATA", "Example", "docstring_examples", "prompt_tests", "public_inputs", "public_tests"]

# HumanEval docstring examples the canonical solution disagrees with, by (task id, call as docstring_examples gives
# it); tests/test_public_tests.py checks that each one really fails with the canonical solution.
ERRATA = frozenset({
    ("HumanEval/47", "median([-10, 4, 6, 1000, 10, 20])"),  # shows 15.0; the median is 8.0
    ("HumanEval/116", "sort_array([1, 5, 2, 3, 4])"),  # shows [1, 2, 3, 4, 5]; by count of ones: [1, 2, 4, 3, 5]
    ("HumanEval/116", "sort_array([-2, -3, -4, -5, -6])"),  # shows [-6, ..., -2]; the solution gives [-4, -2, -6, ...]
    # HumanEval/130 states the Tribonacci recurrence as `tri(1) = 3`, `tri(2) = 1 + (2 / 2) = 2`, `tri(4) = 3`: values
    # of the sequence, while tri(n) returns its first n + 1 values (tri(3) = [1, 3, 2, 8] is an example and is kept)
    ("HumanEval/130", "tri(1)"),
    ("HumanEval/130", "tri(2)"),
    ("HumanEval/130", "tri(4)"),
    ("HumanEval/148", "bf('Earth', 'Mercury')"),  # `==> ("Venus")` is the string 'Venus'; the answer is ('Venus',)
})

_FLOAT_HELPER = '''import math as _public_math


def _public_close(got, want):
    """got == want, floats within 1e-6 absolute or 1e-9 relative (also inside lists, tuples and dicts)."""
    if isinstance(want, (list, tuple)):
        return (isinstance(got, (list, tuple)) and isinstance(got, list) == isinstance(want, list)
                and len(got) == len(want) and all(map(_public_close, got, want)))
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(_public_close(got[k], want[k]) for k in want)
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return _public_math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-6)
    return got == want
'''

# Builtins a `>>>` example may wrap the call in (their value, not printed text, is what the output line shows).
_WRAPPERS = frozenset({"abs", "bool", "dict", "float", "frozenset", "int", "len", "list", "max", "min", "repr",
                       "round", "set", "sorted", "str", "sum", "tuple"})
_SEPARATOR = re.compile(r"[ \t]*(?:#[ \t]*)?(?:==>|=>|==|->|➞|→|=(?![=<>])|\breturns\b|\bshould\s+return\b|"
                        r"\bshould\s+be\b|\bwill\s+return\b)[ \t]*")
_STOP_WORDS = ("and", "because", "since", "as")  # prose that may follow an expected value: `returns 15 and ...`
_INPUT = re.compile(r"\bInput\s*:", re.IGNORECASE)
_OUTPUT = re.compile(r"\bOutput\s*:[ \t]*", re.IGNORECASE)
_FOR = re.compile(r"\bfor\s+(?=[A-Za-z_]\w*\s*=[^=])(?P<args>[^\n]*?)\s*\bthe\s+(?:output|result)\s+should\s+be\b"
                  r"[ \t]*", re.IGNORECASE)
_NAMED_LINE = re.compile(r"^\s*([A-Za-z_]\w*)\s*[:=]\s*(\S.*)$")
_MAX_SPAN = 4000  # characters a call or a value may span


@dataclasses.dataclass(frozen=True)
class Example:
    """One example a prompt shows: `call` is a Python expression calling the entry point, `expected` a Python literal
    for its value (both valid Python, as ast.unparse writes them)."""

    call: str
    expected: str


# ---------------------------------------------------------------------------------------------- text helpers


def _literal(text: str) -> ast.expr | None:
    """The expression node of `text` when it is a Python literal, else None."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
        ast.literal_eval(node)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return None
    return node


def _unquoted(text: str, start: int = 0, end: int | None = None):
    """(index, char) of each character of text[start:end] outside string literals; a quote still open at the end of
    its line was prose (an apostrophe), not a string: it ends there."""
    quote, index, end = "", start, len(text) if end is None else end
    while index < end:
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
            elif char == "\n":  # a one-line string literal never spans lines: it was prose
                quote = ""
                continue
        elif char in "'\"":
            quote = char
        else:
            yield index, char
        index += 1


def _scan(text: str, start: int, stop_at_newline: bool) -> int:
    """Index after the expression that starts at `start`: with `stop_at_newline`, the end of the line at bracket depth
    0 (brackets may span lines), else just after the bracket opened at `start` closes; -1 if it does not."""
    depth, end = 0, min(len(text), start + _MAX_SPAN)
    for index, char in _unquoted(text, start, end):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0 and not stop_at_newline:
                return index + 1
            if depth < 0:
                return index if stop_at_newline else -1
        elif char == "\n" and stop_at_newline and depth <= 0:
            return index
    return end if stop_at_newline else -1


def _top_level_commas(text: str) -> list[int]:
    commas, depth = [], 0
    for index, char in _unquoted(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            commas.append(index)
    return commas


def _strip_comment(text: str) -> str:
    for index, char in _unquoted(text):
        if char == "#":
            return text[:index]
    return text


_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
               ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.USub: operator.neg, ast.UAdd: operator.pos}


def _arithmetic(node: ast.expr) -> float | int:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        return _ARITHMETIC[type(node.op)](_arithmetic(node.left), _arithmetic(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _ARITHMETIC:
        return _ARITHMETIC[type(node.op)](_arithmetic(node.operand))
    raise ValueError("not arithmetic")


def _checked_chain(text: str) -> ast.expr | None:
    """`1 + 9 + 0 = 10`: the last value, when every step before it is arithmetic on numbers that equals it."""
    parts = re.split(r"(?<![=<>!])=(?!=)", text)
    if len(parts) < 2 or any(q in text for q in "'\""):
        return None
    last = _literal(parts[-1])
    if last is None or type(ast.literal_eval(last)) not in (int, float):
        return None
    value = ast.literal_eval(last)
    for part in parts[:-1]:
        try:
            step = _arithmetic(ast.parse(part.strip(), mode="eval").body)
        except (SyntaxError, ValueError, ZeroDivisionError, OverflowError):
            return None
        if not math.isclose(step, value, rel_tol=1e-9, abs_tol=1e-9):
            return None
    return last


def _value(text: str, start: int) -> ast.expr | None:
    """The expected value written at `start` (to the end of its line, brackets may span lines): a literal, maybe
    followed by a comment, a full stop, a checked arithmetic chain or a little prose (`15 and ...`, `'No' (why)`)."""
    raw = _strip_comment(text[start:_scan(text, start, stop_at_newline=True)]).strip()
    candidate = raw.rstrip(" \t.,;")
    if candidate in ("true", "false"):
        candidate = candidate.capitalize()
    if not candidate:
        return None
    node = _literal(candidate) or _checked_chain(candidate)
    if node is not None:
        return node
    try:  # the longest literal prefix that prose follows
        ends = [t.end[1] for t in tokenize.generate_tokens(StringIO(candidate).readline) if t.start[0] == 1]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    for end in sorted(set(ends), reverse=True):
        rest = candidate[end:]
        word = rest.split(None, 1)[0] if rest.strip() else ""
        prose = (word in _STOP_WORDS and rest[:1].isspace()) or re.match(r"\s+\(|[,;]\s+[A-Za-z_]", rest)
        if prose and (node := _literal(candidate[:end])) is not None:
            return node
    return None


def _has_float(value) -> bool:
    if isinstance(value, (float, complex)):
        return True
    if isinstance(value, dict):
        return any(map(_has_float, value.values()))
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(map(_has_float, value))
    return False


# ---------------------------------------------------------------------------------------------- the prompt


def _entry_def(prompt: str, entry_point: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    try:
        tree = ast.parse(prompt)
    except (SyntaxError, ValueError):
        return None
    found = None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            found = node
    return found


def _docstring_text(prompt: str, entry_point: str) -> str:
    """The entry point's body as the prompt writes it (its docstring, escapes unprocessed), else the whole prompt."""
    node = _entry_def(prompt, entry_point)
    if node is None or not node.body:
        return prompt
    lines = prompt.splitlines(keepends=True)
    return "".join(lines[node.body[0].lineno - 1:node.end_lineno])


def _parameters(prompt: str, entry_point: str) -> tuple[list[str], int] | None:
    """(the entry point's positional parameter names, how many are required), or None when it is not in the prompt."""
    node = _entry_def(prompt, entry_point)
    if node is None:
        return None
    names = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
    return names, len(names) - len(node.args.defaults)


def _calls(node: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name]


def _literal_call(node: ast.expr, entry_point: str) -> bool:
    """`entry_point(literal, ..., key=literal)`."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point):
        return False
    values = [*node.args, *(k.value for k in node.keywords)]
    if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        return False
    try:
        for value in values:
            ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _doctest_call(node: ast.expr, entry_point: str) -> bool:
    """A `>>>` expression: a call of the entry point, or of a builtin wrapped around one (`round(f(x), 2)`), naming
    nothing but those."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return False
    if node.func.id != entry_point and node.func.id not in _WRAPPERS:
        return False
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    return bool(_calls(node, entry_point)) and names <= {entry_point, *_WRAPPERS}


def _doctests(lines: list[str], entry_point: str) -> tuple[list[tuple[int, Example]], set[int]]:
    """Examples of `>>>` lines: (line index, example) and the indices of the lines they use."""
    found, used, index = [], set(), 0
    while index < len(lines):
        stripped = lines[index].strip()
        if not stripped.startswith(">>>"):
            index += 1
            continue
        first, source = index, [stripped[3:].strip()]
        index += 1
        while index < len(lines) and lines[index].strip().startswith("..."):
            source.append(lines[index].strip()[3:].strip())
            index += 1
        output = []
        while index < len(lines):
            line = lines[index].strip()
            if not line or line.startswith((">>>", '"""', "'''")):
                break
            output.append(line)
            index += 1
        used.update(range(first, index))
        example = _doctest_example("\n".join(source), output, entry_point)
        if example is not None:
            found.append((first, example))
    return found, used


def _doctest_example(source: str, output: list[str], entry_point: str) -> Example | None:
    try:
        node = ast.parse(source, mode="eval").body
    except SyntaxError:
        return None
    if (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq)
            and output in ([], ["True"])):  # `>>> f(x) == y`, shown without output or with True
        expected = node.comparators[0]
        try:
            ast.literal_eval(expected)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
        node = node.left
    elif not output:  # doctest: no output line means the value is None
        expected = ast.Constant(None)
    else:  # the longest run of output lines that is a literal (prose may follow without a blank line)
        expected = next((e for k in range(len(output), 0, -1) if (e := _literal("\n".join(output[:k]))) is not None),
                        None)
        if expected is None:
            return None
    if not _doctest_call(node, entry_point):
        return None
    return Example(call=ast.unparse(node), expected=ast.unparse(expected))


def _prose_examples(text: str, entry_point: str, skip: list[tuple[int, int]]) -> list[tuple[int, Example]]:
    """`f(x) <separator> y` anywhere in `text` (outside the `skip` spans): (position, example)."""
    found = []
    for match in re.finditer(rf"(?<![\w.]){re.escape(entry_point)}\s*\(", text):
        start = match.start()
        if any(a <= start < b for a, b in skip):
            continue
        end = _scan(text, match.end() - 1, stop_at_newline=False)
        if end < 0:
            continue
        try:
            call = ast.parse(text[start:end], mode="eval").body
        except SyntaxError:
            continue
        separator = _SEPARATOR.match(text, end)
        if not _literal_call(call, entry_point) or separator is None:
            continue
        expected = _value(text, separator.end())
        if expected is not None:
            found.append((start, Example(call=ast.unparse(call), expected=ast.unparse(expected))))
    return found


def _arguments(text: str, parameters: tuple[list[str], int] | None, keywords_only: bool = False) -> list | None:
    """Argument nodes, in parameter order, of `a = 1, b = [2]` / `1, [2]` / `a : 1` lines; None if they do not fit."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and all(_NAMED_LINE.match(line) for line in lines):
        text = ", ".join("{} = {}".format(*_NAMED_LINE.match(line).groups()) for line in lines)
    else:
        text = " ".join(line.strip() for line in lines)
        if len(lines) == 1 and (named := re.match(r"^\s*([A-Za-z_]\w*)\s*:\s*(\S.*)$", text)):
            text = "{} = {}".format(*named.groups())
    try:
        call = ast.parse(f"_({text.strip().rstrip(',')})", mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(call, ast.Call) or not _literal_call(call, "_"):
        return None
    names, required = parameters or ([], 0)
    if call.keywords and (call.args or parameters is None):
        return None
    if keywords_only and not call.keywords:
        return None
    if not call.keywords:
        return list(call.args) if parameters is None or required <= len(call.args) <= len(names) else None
    given = {k.arg: k.value for k in call.keywords}
    if set(given) <= set(names) and set(names[:required]) <= set(given):
        values = [given.get(name) for name in names]
        while values and values[-1] is None:
            values.pop()
        return values if None not in values else None
    if not keywords_only and len(given) == len(names) and all(map(_same_name, given, names)):
        return list(given.values())  # `grid : ...`, `bucket_capacity : ...` for (grid, capacity), in order
    return None


def _same_name(shown: str, parameter: str) -> bool:
    return shown == parameter or shown.endswith("_" + parameter) or parameter.endswith("_" + shown)


def _input_output(text: str, entry_point: str, parameters) -> list[tuple[int, Example]]:
    """`Input: <arguments>` ... `Output: <value>` blocks."""
    found = []
    for match in _INPUT.finditer(text):
        output = _OUTPUT.search(text, match.end())
        if output is None or _INPUT.search(text, match.end(), output.start()):
            continue
        if text.count("\n", match.end(), output.start()) > 8:
            continue
        arguments = _arguments(text[match.end():output.start()], parameters)
        start = output.end()
        if text[start:start + 1] == "\n":  # the value on the next line
            start += len(text[start:]) - len(text[start:].lstrip())
        expected = _value(text, start)
        if arguments is None or expected is None:
            continue
        call = ast.Call(func=ast.Name(entry_point, ast.Load()), args=arguments, keywords=[])
        found.append((match.start(), Example(call=ast.unparse(call), expected=ast.unparse(expected))))
    return found


def _for_the_output(text: str, entry_point: str, parameters) -> list[tuple[int, Example]]:
    """`For a = 1, b = "x" [prose] the output (result) should be <value>` lines."""
    found = []
    for match in _FOR.finditer(text):
        words = match.group("args")
        arguments = None
        for cut in [len(words), *reversed(_top_level_commas(words))]:  # the longest run of `name = value` pairs
            arguments = _arguments(words[:cut], parameters, keywords_only=True)
            if arguments is not None:
                break
        expected = _value(text, match.end())
        if arguments is None or expected is None:
            continue
        call = ast.Call(func=ast.Name(entry_point, ast.Load()), args=arguments, keywords=[])
        found.append((match.start(), Example(call=ast.unparse(call), expected=ast.unparse(expected))))
    return found


def docstring_examples(prompt: str, entry_point: str) -> list[Example]:
    """The examples the entry point's docstring shows, in the order it shows them, without repeats.

    Args:
        prompt: what the model is shown (HumanEval: imports, helpers and the entry point's signature and docstring).
        entry_point: the function the examples must call.
    Returns:
        one Example per example parsed (see the module docstring for the forms); [] when there are none.
    """
    if not entry_point or not entry_point.isidentifier():
        return []
    text = _docstring_text(prompt, entry_point)
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    doctests, used = _doctests(lines, entry_point)
    found = [(offsets[i], e) for i, e in doctests]
    skip = [(offsets[i], offsets[i + 1]) for i in used]
    parameters = _parameters(prompt, entry_point)
    found += _prose_examples(text, entry_point, skip)
    found += _input_output(text, entry_point, parameters)
    found += _for_the_output(text, entry_point, parameters)
    examples: list[Example] = []
    for _, example in sorted(found, key=lambda item: item[0]):
        if example not in examples:
            examples.append(example)
    return examples


def _prompt_assertions(prompt: str, entry_point: str) -> list[str]:
    """The `assert` statements the prompt shows that name the entry point (any, when it is unknown), as written."""
    assertions, lines, index = [], prompt.splitlines(), 0
    while index < len(lines):
        if not re.match(r"\s*assert\b", lines[index]):
            index += 1
            continue
        text = "\n".join(lines[index:])
        end = _scan(text, 0, stop_at_newline=True)
        statement = text[:end].strip()
        index += text.count("\n", 0, end) + 1
        try:
            tree = ast.parse(statement)
        except SyntaxError:
            continue
        if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
            continue
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        if (entry_point in names) if entry_point else any(_program_calls(tree)):
            assertions.append(statement)
    return assertions


def _program_calls(tree: ast.AST) -> list[ast.Call]:
    """Calls of names that are not builtins (the program's functions, when the entry point is unknown)."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            and not hasattr(builtins, n.func.id)]


def _assertion(example: Example) -> str:
    value = ast.literal_eval(example.expected)
    if value is None:
        return f"assert {example.call} is None"
    if _has_float(value):
        return f"assert _public_close({example.call}, {example.expected})"
    return f"assert {example.call} == {example.expected}"


def public_tests(problem: Problem) -> Tests | None:
    """The tests `problem`'s prompt shows, as sandbox tests (see the module docstring); None when it shows none.

    Python: AssertionTests, one assertion per example, carrying problem.reference_solution (judged by replay).
    stdin/stdout: problem.public_tests (the dataset's public cases), None when the dataset has no such split."""
    if problem.public_tests is not None:
        return problem.public_tests
    if problem.language != "python" or isinstance(problem.tests, StdioTests):
        return None
    setup = problem.tests.setup_code if isinstance(problem.tests, AssertionTests) else ""
    return prompt_tests(problem.prompt, problem.entry_point, setup, problem.reference_solution, problem.task_id)


def prompt_tests(prompt: str, entry_point: str, setup: str = "", reference_solution: str | None = None,
                 task_id: str = "") -> AssertionTests | None:
    """The assertions a Python prompt shows (its own asserts, else its docstring's examples less `ERRATA` of
    `task_id`), run after `setup`; None when it shows none."""
    assertions = _prompt_assertions(prompt, entry_point)
    if assertions:
        if any(re.search(r"\bmath\.", a) for a in assertions) and not re.search(r"\bimport\s+math\b", setup):
            setup = "import math\n" + setup
    else:
        examples = [e for e in docstring_examples(prompt, entry_point) if (task_id, e.call) not in ERRATA]
        assertions = [_assertion(e) for e in examples]
        if any(a.startswith("assert _public_close(") for a in assertions):
            setup = _FLOAT_HELPER + setup
    if not assertions:
        return None
    return AssertionTests(assertions=assertions, setup_code=setup, reference_solution=reference_solution)


def public_inputs(problem: Problem) -> list[str] | None:
    """The inputs the prompt shows: Python, the calls of the entry point in its examples or assertions (e.g.
    "add(2, 3)"; "find_zero([1, 2])" of `round(find_zero([1, 2]), 2)`; errata included: the input is right even where
    the docstring's answer is not); stdin/stdout, the public stdin texts. None when it shows none."""
    tests = problem.public_tests
    if isinstance(tests, StdioTests):
        return [case.input for case in tests.cases]
    if problem.language != "python" or isinstance(problem.tests, StdioTests):
        return None
    if isinstance(tests, AssertionTests):
        calls = _assertion_calls(tests.assertions, problem.entry_point)
    elif tests is not None:
        return None
    else:
        calls = _assertion_calls(_prompt_assertions(problem.prompt, problem.entry_point), problem.entry_point)
        if not calls:
            examples = docstring_examples(problem.prompt, problem.entry_point)
            calls = _assertion_calls([e.call for e in examples], problem.entry_point)
    return list(dict.fromkeys(calls)) or None


def _assertion_calls(statements: list[str], entry_point: str) -> list[str]:
    """The outermost calls of the entry point (of the program's functions, when it is unknown) in `statements`."""
    calls = []
    for statement in statements:
        try:
            tree = ast.parse(statement)
        except SyntaxError:
            continue
        nodes = _calls(tree, entry_point) if entry_point else _program_calls(tree)
        inner = {id(c) for node in nodes for c in ast.walk(node) if c is not node}
        calls += [ast.unparse(node) for node in nodes if id(node) not in inner]
    return calls
