"""Reflection sequences (ReflectionCoder) from a model's own attempts: the turns it is asked, the code read out of its
answers, the sandbox's verdict as an execution block, and the finished training sample. Pure: no Ray, no engine.

    from raylib.synth.reflection_seq import Turn, build_sample, execution_text, read_answer, round_messages
    messages = round_messages(prompts, problem, turns)       # the chat for the next round (turns so far: all failed)
    prose, program = read_answer(answer, problem)             # program "" when the answer holds no code
    block = execution_text(results_row, problem)              # which tests failed, expected vs got, the error
    sample = build_sample(problem, turns, prompts, model="m", dataset="humaneval")   # turns[-1] passed

A sample is what raylib/train/data/reflection.py renders and jobs/sft.py trains on (`--data.format reflection`):

    user:      [text: the first turn as the model was asked it (prompts `code`)]
    assistant: [text: the answer's prose?, code, execution,  text: the reflection, code, execution,  ...]
    user:      [text: the one-off request (prompts `final`: the problem again, to answer in one go)]
    assistant: [code: the program that passed]

Every code block is followed by its execution block, so the sequence ends with the passing program and the sandbox
saying so. The code blocks hold the whole programs that were run (the answer's code with what the problem's prompt
gives it, as jobs/evaluate.py assembles a chat answer). The final answer is that passing program itself, not asked for
again: ReflectionCoder has its model write the one-off answer in a second stage; taking the verified program instead
needs no further round and cannot fail. The last user message restates the problem because the student of the
self-distillation (raylib/train/objectives/reflection.py) does not see the first one.
"""

from __future__ import annotations

import ast
import dataclasses
import re

from raylib.data.problems import Problem
from raylib.data.samples import assemble_program, extract_code
from raylib.generate.prompts import PromptSettings, build_prompt
from raylib.scale.feedback import leetcode_case, one_call_per_case, split_assertion
from raylib.synth.prompts import PromptSet
from raylib.train.data.reflection import render_reflection

__all__ = ["MAX_EXECUTION_CHARS", "Turn", "build_sample", "execution_text", "problem_text", "read_answer",
           "round_messages"]

MAX_EXECUTION_CHARS = 1500  # longest execution block, characters
_SHOWN_FAILURES = 3  # failed tests described in an execution block
_VALUE_CHARS = 300  # characters of one shown value (a test, an input, an output, an error)
# "AssertionError (tests.py:10: assert candidate(3.5) == 0.5)": the error, then where it happened
_LOCATION = re.compile(r"^(?P<error>.*?)\s*\((?:tests|solution)\.py:\d+: (?P<source>.*)\)$", re.DOTALL)
_VERB = {"failed": "failed", "runtime-error": "raised an error", "timeout": "timed out", "memory": "ran out of memory"}


@dataclasses.dataclass(frozen=True)
class Turn:
    """One round of a problem: the model's answer, what was read out of it, and the sandbox's verdict on it."""

    answer: str       # the answer as the engine gave it (the next round's chat repeats it)
    prose: str        # the answer's text before its code: a plan (round 1) or the reflection (later rounds)
    program: str      # the whole program run
    execution: str    # the execution block (execution_text)
    passed: bool
    status: str


def problem_text(problem: Problem) -> str:
    """The problem as codeloop's instruct prompt asks it (raylib.generate.prompts.build_prompt, no system message):
    the `{problem}` of the prompt file, so the one-off request of a sample is what jobs/evaluate.py asks."""
    return build_prompt(problem, PromptSettings(style="instruct", prefill=False)).messages[-1]["content"]


def round_messages(prompts: PromptSet, problem: Problem, turns: list[Turn]) -> list[dict]:
    """The chat that asks for round len(turns) + 1: the first turn, then per earlier (failed) round the model's
    answer and a `reflect` turn carrying its execution block."""
    chat = [prompts.fill("code", problem=problem_text(problem), language=problem.language)]
    for turn in turns:
        chat += [turn.answer, prompts.fill("reflect", execution=turn.execution, language=problem.language)]
    return prompts.messages(*chat)


def read_answer(answer: str, problem: Problem) -> tuple[str, str]:
    """(prose, program) of an answer: the text before its code, and the whole program its code stands for
    (raylib.data.samples.assemble_program: the fenced block that defines the entry point, else the longest; with the
    prompt's imports and helpers when it rewrote the function, after the prompt when it wrote a body only).

    An answer without a fenced block holds code only when it is Python from its first `def`/`class`/`import` line on
    and defines or imports something (prose alone, even a word that parses, is no code). No code: program ""."""
    text = answer.replace("\r\n", "\n")
    fence = text.find("```")
    code = extract_code(text, problem.language, problem.entry_point)
    if fence >= 0:
        prose = _outside_block(text, code) or text[:fence]
    elif problem.language != "python" or not _defines_something(code):
        return text.strip(), ""
    else:
        prose = text[:max(0, text.find(code.strip()))]
    if not code.strip():
        return prose.strip(), ""
    return prose.strip(), assemble_program(problem, text, None, extract=True)


def _outside_block(text: str, code: str) -> str | None:
    """The answer without the fenced block its code came from (a reflection may come after the code, or quote a line
    in a fence of its own before it); None when that block is not found as such."""
    at = text.find(code.strip()) if code.strip() else -1
    start = text.rfind("```", 0, at) if at >= 0 else -1
    end = text.find("```", at + len(code.strip())) if at >= 0 else -1
    if start < 0 or end < 0:
        return None
    return (text[:start].rstrip() + "\n\n" + text[end + 3:].lstrip()).strip()


def _defines_something(code: str) -> bool:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom))
               for node in tree.body)


def _clip(text: str, limit: int = _VALUE_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _stdio_case(problem: Problem, name: str):
    """The stdin/stdout case a verdict named "case N" is about, or None."""
    match = re.fullmatch(r"case (\d+)", name)
    cases = getattr(problem.tests, "cases", None) if problem.tests.kind == "stdio" else None
    return cases[int(match.group(1))] if match and cases and int(match.group(1)) < len(cases) else None


def _call_case(problem: Problem, name: str) -> int | None:
    """The input a LeetCode-style verdict named "case N" is about (one call per test), or None."""
    tests = problem.tests
    match = re.fullmatch(r"case (\d+)", name)
    if not match or not one_call_per_case(tests):
        return None
    return int(match.group(1)) if int(match.group(1)) < len(tests.inputs) else None


def _describe_call(test: dict, problem: Problem, index: int, verb: str) -> str:
    """A failed LeetCode-style case as a call: `twoSum([2, 7], 9)` failed: expected `[0, 1]`, got `[1, 0]`."""
    tests, status = problem.tests, str(test.get("status", "failed"))
    error = str(test.get("error") or "").removeprefix(f"input {index} {tests.inputs[index][:200]}: ")
    call, expected, got = leetcode_case(tests, index, status, error)
    if got is not None:
        return f"- `{_clip(call)}` failed: expected `{_clip(expected)}`, got `{_clip(got)}`"
    return f"- `{_clip(call)}` {verb}" + (f": {_clip(error)}" if error else "") + f" (expected `{_clip(expected)}`)"


def _describe(test: dict, problem: Problem) -> str:
    """One failed test: what was tested, how it failed, expected vs got (got when the verdict carries it)."""
    name, status = str(test.get("name", "")), str(test.get("status", "failed"))
    call_case = _call_case(problem, name)
    if call_case is not None:
        return _describe_call(test, problem, call_case, _VERB.get(status, status))
    error, source = str(test.get("error") or ""), ""
    located = _LOCATION.match(error)
    if located:
        error, source = located.group("error").strip(), located.group("source").strip()
    verb = _VERB.get(status, status)
    actual = test.get("actual")
    case = _stdio_case(problem, name)
    if case is not None:
        lines = [f"- {name} {verb}" + (f": {_clip(error)}" if error else ""), f"  input:\n{_clip(case.input)}",
                 f"  expected output:\n{_clip(str(test.get('expected') or case.output))}"]
        if actual is not None:
            lines.append(f"  got:\n{_clip(str(actual))}")
        return "\n".join(lines)
    what = source or name
    if problem.tests.kind == "function" and problem.entry_point:  # HumanEval's check(candidate): name the function
        what = re.sub(r"\bcandidate\b", problem.entry_point, what)
    line = f"- `{_clip(what)}` {verb}" + (f": {_clip(error)}" if error else "")
    parts = split_assertion(what) if status == "failed" else None
    if parts:
        line += f" (expected `{_clip(parts[0])}` to be `{_clip(parts[1])}`" + \
            (f", got `{_clip(str(actual))}`)" if actual is not None else ")")
    elif test.get("expected") is not None:
        line += f"\n  expected: {_clip(str(test['expected']))}" + \
            (f"\n  got: {_clip(str(actual))}" if actual is not None else "")
    return line


def execution_text(row: dict, problem: Problem, max_chars: int = MAX_EXECUTION_CHARS) -> str:
    """The execution block of a sandbox run (a results.jsonl row of raylib.evaluate.pipeline: `passed`, `status`,
    `error`, `tests` [{name, passed, status, error, expected?, actual?}]): that it passed; or that it does not
    compile, with the compiler's message; or how many tests failed and, for the first few, the test, how it failed and
    expected vs got (a stdin/stdout case shows its input and expected output). At most `max_chars` characters."""
    tests = row.get("tests") or []
    if row.get("passed"):
        return f"All {len(tests)} tests passed." if len(tests) > 1 else "The tests passed."
    error = str(row.get("error") or "").strip()
    if row.get("status") == "compile-error":
        text = "The program does not compile:\n" + _clip(error, max_chars)
        return text[:max_chars]
    failed = [t for t in tests if not t.get("passed") and t.get("status") != "skipped" and t.get("error") != "not run"]
    head = (f"{len(failed)} of {len(tests)} tests failed." if len(tests) > 1
            else "The tests failed." if row.get("status") == "failed" else f"The run ended with {row.get('status')}.")
    lines = [head] + [_describe(t, problem) for t in failed[:_SHOWN_FAILURES]]
    if len(failed) > _SHOWN_FAILURES:
        lines.append(f"(and {len(failed) - _SHOWN_FAILURES} more failed tests)")
    if not failed and error:
        lines.append(f"Error: {_clip(error)}")
    text = "\n".join(lines)
    return text if len(text) <= max_chars else text[:max_chars - 12].rstrip() + "\n... (cut)"


def build_sample(problem: Problem, turns: list[Turn], prompts: PromptSet, *, model: str, dataset: str) -> dict:
    """The training row of a finished problem (its last turn passed): `messages` in the reflection format (see the
    module docstring; checked with raylib.train.data.reflection.render_reflection), `task_id`, `type` ("reflection",
    as ReflectionCoder labels its rows), `rounds` and `provenance`."""
    if not turns or not turns[-1].passed:
        raise ValueError("a sample needs turns that end in a passing program")
    blocks = []
    for turn in turns:
        if turn.prose:
            blocks.append({"type": "text", "content": turn.prose})
        blocks += [{"type": "code", "content": turn.program}, {"type": "execution", "content": turn.execution}]
    language = problem.language
    messages = [
        {"role": "user", "content": [{"type": "text", "content": prompts.fill("code", problem=problem_text(problem),
                                                                               language=language)}]},
        {"role": "assistant", "content": blocks},
        {"role": "user", "content": [{"type": "text", "content": prompts.fill("final", problem=problem_text(problem),
                                                                               language=language)}]},
        {"role": "assistant", "content": [{"type": "code", "content": turns[-1].program}]},
    ]
    render_reflection(messages)
    return {"task_id": problem.task_id, "type": "reflection", "rounds": len(turns), "messages": messages,
            "provenance": {"method": "reflection", "dataset": dataset, "model": model, "prompts": prompts.label,
                           "statuses": [t.status for t in turns]}}
