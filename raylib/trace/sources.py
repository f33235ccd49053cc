"""What to trace: programs and their inputs, from a problem set or from program files (pure functions).

    from raylib.trace.sources import runs_from_problems, runs_from_program_files
    runs = runs_from_problems(load_problems("humaneval"), inputs_per_problem=3)   # canonical solutions, test inputs
    runs = runs_from_program_files("codenetmut/")       # a.py (+ a.in, a.1.in, ...) or a JSONL of programs

A run is {"trace_id", "program_id", "source", "code", "stdin", "call"}: `call` is None (the program runs as a script on
`stdin`) or [entry_point, arguments as sandbox.inside.plain text] (the program is loaded, then that call is traced).

Inputs of function-style problems: call tests' inputs as they are (HumanEval+, MBPP+); for HumanEval's `check` and
MBPP's assertions, the calls of the entry point whose arguments are literals, read from the test code (parsed, never
run). Stdin/stdout problems: each test case's input.

Program files (CodeNetMut style): a directory of `NAME.py` files, each with its inputs in `NAME.in` or `NAME.K.in`
(none: one run on empty stdin), or a JSONL of {"id", "code", "inputs": [stdin text, ...]}.
"""

from __future__ import annotations

import ast
from pathlib import Path

from raylib.files import DataError, read_records

__all__ = ["literal_calls", "runs_from_problems", "runs_from_program_files"]


def literal_calls(test_code: str, names: set[str]) -> list[list]:
    """Argument lists of the calls to any of `names` in `test_code` whose arguments are all literals, in order,
    without repeats."""
    try:
        tree = ast.parse(test_code)
    except SyntaxError:
        return []
    calls, seen = [], set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names):
            continue
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            continue
        try:
            args = [ast.literal_eval(a) for a in node.args]
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        key = repr(args)
        if key not in seen:
            seen.add(key)
            calls.append(args)
    return calls


def _call_inputs(problem) -> list[str]:
    from sandbox.inside import plain

    tests = problem.tests
    kind = tests.kind
    if kind == "calls":
        return list(tests.inputs)
    if kind == "function":
        return [plain.encode(args) for args in literal_calls(tests.test_code, {"candidate", problem.entry_point})]
    if kind == "assertions":
        names = {problem.entry_point} if problem.entry_point else _defined_functions(problem.reference_solution)
        return [plain.encode(args) for args in literal_calls("\n".join(tests.assertions), names)]
    return []


def _defined_functions(code: str | None) -> set[str]:
    try:
        return {n.name for n in ast.parse(code or "").body if isinstance(n, ast.FunctionDef)}
    except SyntaxError:
        return set()


def runs_from_problems(problems: dict, inputs_per_problem: int = 3, source: str = "") -> tuple[list[dict], list[str]]:
    """(runs, task ids left out and why): each problem's reference solution on its first `inputs_per_problem`
    test inputs. Python problems only; a problem without a reference solution or usable inputs is left out."""
    runs, left_out = [], []
    for task_id, problem in problems.items():
        if problem.language != "python" or not problem.reference_solution:
            left_out.append(f"{task_id}: no Python reference solution")
            continue
        instance_of = getattr(problem.tests, "instance_of", "")
        if instance_of and f"class {instance_of}" in problem.reference_solution:
            left_out.append(f"{task_id}: LeetCode style (a method of {instance_of}); trace mode calls functions")
            continue
        if problem.tests.kind == "stdio":
            inputs = [(case.input, None) for case in problem.tests.cases[:inputs_per_problem]]
        else:
            entry = problem.tests.entry_point if problem.tests.kind == "calls" else problem.entry_point
            if not entry:
                entry = next(iter(_defined_functions(problem.reference_solution)), "")
            inputs = [("", [entry, args]) for args in _call_inputs(problem)[:inputs_per_problem]] if entry else []
        if not inputs:
            left_out.append(f"{task_id}: no test input with literal arguments")
            continue
        for k, (stdin, call) in enumerate(inputs):
            runs.append({"trace_id": f"{task_id}#{k}", "program_id": task_id, "source": source or problem.source,
                         "code": problem.reference_solution, "stdin": stdin, "call": call})
    return runs, left_out


def runs_from_program_files(path: str | Path, inputs_per_program: int = 3) -> list[dict]:
    """Runs of user programs: a directory of NAME.py (+ NAME.in / NAME.K.in) or a JSONL of {"id", "code", "inputs"}."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, 0, "no such file or directory")
    runs = []
    if path.is_dir():
        programs = sorted(path.glob("*.py"))
        if not programs:
            raise DataError(path, 0, "no .py files in this directory")
        for program in programs:
            try:
                ast.parse(program.read_text())
            except SyntaxError as exc:
                raise DataError(program, exc.lineno or 0, f"the program does not parse: {exc.msg}") from None
            inputs = [p.read_text() for p in sorted(path.glob(f"{program.stem}.in"))
                      + sorted(path.glob(f"{program.stem}.*.in"))] or [""]
            runs += _program_runs(program.stem, program.read_text(), inputs[:inputs_per_program], str(path))
        return runs
    seen = set()
    for line, row in read_records(path):
        for field, kind in (("id", str), ("code", str)):
            if not isinstance(row.get(field), kind):
                raise DataError(path, line, f"field {field!r} is missing or not a {kind.__name__}")
        inputs = row.get("inputs", [""])
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            raise DataError(path, line, "field 'inputs' must be a list of stdin texts")
        if row["id"] in seen:
            raise DataError(path, line, f"id {row['id']!r} appears twice")
        seen.add(row["id"])
        try:
            ast.parse(row["code"])
        except SyntaxError as exc:
            raise DataError(path, line, f"the program of {row['id']!r} does not parse: {exc.msg} (its line "
                            f"{exc.lineno})") from None
        runs += _program_runs(row["id"], row["code"], (inputs or [""])[:inputs_per_program], str(path))
    if not runs:
        raise DataError(path, 0, "no programs")
    return runs


def _program_runs(program_id: str, code: str, inputs: list[str], source: str) -> list[dict]:
    return [{"trace_id": f"{program_id}#{k}", "program_id": program_id, "source": source, "code": code,
             "stdin": stdin, "call": None} for k, stdin in enumerate(inputs)]
