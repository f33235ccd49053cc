"""LLMExecutor's single-step items: a program, the line about to run, the values now; the answer is the values after
it and the line that runs next. Pure functions over the sandbox's traces (sandbox.schema.TraceSpec).

    from raylib.trace.items import items_from_trace, read_items, split_of
    items = items_from_trace("HumanEval/2#0", program, trace, source="humaneval", variant="sft")
    items[0]["prompt"], items[0]["output"]          # the prompt and the answer (Line / Analysis / Check / Next)
    split_of("HumanEval/2", {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=0)    # by program, never by step

An item (one JSONL row): `item_id`, `program_id` (one program; all inputs of it share it), `trace_id` (one run),
`step` (index in that run's trace), `trace_steps` (its length), `trace_complete`, `source`, `code`, `start_line`
(1-based), `initial_value` ({name: value text} before the step), `subsequent_values` ([[line, {name: value}]]),
`next_line` (a line, "completion", or an exception type), `kind` (sequential / branch / completion / exception),
`variant` (sft / swa), `prompt`, `output`, and `messages` (user prompt + assistant answer, for jobs/sft.py).

The values dict is written as Python writes a dict of those values (`{'x': 1, 's': 'ab'}`); the answer format is
LLMExecutor's, the instruction text is ours.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from raylib.files import DataError, read_records

__all__ = ["COMPLETION", "ITEM_FIELDS", "KINDS", "answer_text", "items_from_trace", "kind_of", "numbered_code",
           "prompt_text", "read_items", "reward_prompt", "split_of", "step_states", "teacher_prompt",
           "template_analysis", "values_text"]

COMPLETION = "completion"
KINDS = ("sequential", "branch", "completion", "exception")
ITEM_FIELDS = {"item_id": str, "program_id": str, "trace_id": str, "step": int, "trace_steps": int,
               "trace_complete": bool, "code": str, "start_line": int, "initial_value": dict,
               "subsequent_values": list, "next_line": (int, str), "kind": str, "prompt": str, "output": str}

_INSTRUCTION = {
    "sft": (
        "Act as the Python interpreter for exactly one statement: the one named above.\n"
        "Answer in four lines:\n"
        "Line: the line number of the statement you execute\n"
        "Analysis: one paragraph on what the statement does to the values and why control goes where it goes\n"
        "Check: the variables of the current scope after the statement, as a Python dict\n"
        "Next statement: the line number executed next, or the exception type if the statement raises one that "
        "ends the program, or 'completion' if the program ends after it"),
    "swa": (
        "Act as the Python interpreter for exactly one statement: the one named above.\n"
        "Answer in three lines:\n"
        "Line: the line number of the statement you execute\n"
        "Check: the variables of the current scope after the statement, as a Python dict\n"
        "Next statement: the line number executed next, or the exception type if the statement raises one that "
        "ends the program, or 'completion' if the program ends after it"),
}


def numbered_code(code: str) -> str:
    """Each line prefixed by its 1-based `<line k>` tag, as LLMExecutor shows code."""
    return "\n".join(f"<line {k}>{line}" for k, line in enumerate(code.splitlines(), 1))


def values_text(values: dict[str, str]) -> str:
    """The dict display of rendered values: `{'x': 1, 's': 'ab'}` (value texts are inserted as they are)."""
    return "{" + ", ".join(f"{name!r}: {text}" for name, text in values.items()) + "}"


def prompt_text(code: str, start_line: int, initial_value: dict[str, str], variant: str = "sft") -> str:
    lines = code.splitlines()
    statement = lines[start_line - 1].strip() if 0 < start_line <= len(lines) else ""
    return (f"Code:\n{numbered_code(code)}\n\n"
            f"Current program state:\nThe statement at <line {start_line}> ({statement}) is about to run. "
            f"The variables of its scope are {values_text(initial_value)}.\n\n"
            f"Instruction:\n{_INSTRUCTION[variant]}")


def answer_text(line: int, values: dict[str, str], next_line: int | str, analysis: str | None) -> str:
    parts = [f"Line: {line}"]
    if analysis is not None:
        parts.append("Analysis: " + " ".join(analysis.split()))
    parts += [f"Check: {values_text(values)}", f"Next statement: {next_line}"]
    return "\n".join(parts)


def reward_prompt(item: dict, window: int = 4, width: int = 100) -> str:
    """A short context for a reward model that reads (prompt, answer) pairs (e.g. MiniLM's 512 tokens): the numbered
    lines around the one about to run (each cut at `width` characters), and the values now."""
    lines = item["code"].splitlines()
    start = item["start_line"]
    shown = "\n".join(f"<line {k}>{lines[k - 1][:width]}" for k in range(max(1, start - window),
                                                                       min(len(lines), start + window) + 1))
    return f"{shown}\n\nAbout to run <line {start}> with {values_text(item['initial_value'])}."


def teacher_prompt(code: str, start_line: int, before: dict[str, str], after: dict[str, str],
                   next_line: int | str) -> str:
    """What a teacher model is asked for an item's Analysis: it is told the outcome and explains it."""
    lines = code.splitlines()
    statement = lines[start_line - 1].strip() if 0 < start_line <= len(lines) else ""
    outcome = ("the program ends" if next_line == COMPLETION else f"it raises {next_line}, which ends the program"
               if isinstance(next_line, str) else f"line {next_line} runs next")
    return (f"Code:\n{numbered_code(code)}\n\nThe statement at <line {start_line}> ({statement}) runs with the "
            f"variables {values_text(before)}. After it the variables are {values_text(after)} and {outcome}.\n\n"
            "In one paragraph, without lists, explain step by step how the statement produces these values and why "
            "execution continues where it does. Do not repeat the code.")


def kind_of(start_line: int, next_line: int | str) -> str:
    """LLMExecutor's categories: completion; sequential (the next line down); branch (any other line); and,
    apart, exception (an exception ends the program)."""
    if next_line == COMPLETION:
        return "completion"
    if isinstance(next_line, str):
        return "exception"
    return "sequential" if next_line == start_line + 1 else "branch"


def template_analysis(code: str, start_line: int, before: dict[str, str], after: dict[str, str],
                      next_line: int | str) -> str:
    """The Analysis when no teacher model writes one: what changed, and where control goes."""
    lines = code.splitlines()
    statement = lines[start_line - 1].strip() if 0 < start_line <= len(lines) else ""
    changes = [f"{name} becomes {value}" if name in before else f"{name} is set to {value}"
               for name, value in after.items() if before.get(name) != value]
    gone = [name for name in before if name not in after]
    text = f"Line {start_line} runs `{statement}`. "
    text += ("; ".join(changes) + ". ") if changes else "No variable of this scope changes. "
    if gone:
        text += f"{', '.join(gone)} no longer exist{'s' if len(gone) == 1 else ''}. "
    kind = kind_of(start_line, next_line)
    text += {"completion": "Nothing runs after it: the program ends.",
             "exception": f"It raises {next_line}, which nothing catches: the program stops.",
             "sequential": f"Execution continues with the next line, {next_line}.",
             "branch": f"Control moves to line {next_line}."}[kind]
    return text


def items_from_trace(program_id: str, code: str, trace: dict, *, source: str = "", variant: str = "sft",
                     trace_id: str | None = None, analyses: list[str | None] | None = None) -> list[dict]:
    """One item per step of `trace` (ExecResult.trace) whose values were not cut. `analyses[i]`: a teacher's Analysis
    of step i (None: the template's); ignored for the swa variant."""
    if variant not in _INSTRUCTION:
        raise ValueError(f"variant must be one of {sorted(_INSTRUCTION)}, got {variant!r}")
    trace_id = trace_id or program_id
    steps = trace["steps"]
    complete = trace["ending"] in ("completed", "exception") and not trace["truncated"]
    items = []
    for index, (step, before, next_line) in enumerate(step_states(trace)):
        if any(value.endswith("...") for value in (*before.values(), *step["vars"].values())):
            continue  # a cut value cannot be predicted
        analysis = None
        if variant == "sft":
            given = analyses[index] if analyses is not None else None
            analysis = given or template_analysis(code, step["line"], before, step["vars"], next_line)
        output = answer_text(step["line"], step["vars"], next_line, analysis)
        prompt = prompt_text(code, step["line"], before, variant)
        items.append({
            "item_id": f"{trace_id}@{index}", "program_id": program_id, "trace_id": trace_id, "step": index,
            "trace_steps": len(steps), "trace_complete": complete, "source": source, "code": code,
            "start_line": step["line"], "initial_value": before, "subsequent_values": [[step["line"], step["vars"]]],
            "next_line": next_line, "kind": kind_of(step["line"], next_line), "variant": variant,
            "prompt": prompt, "output": output,
            "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}],
        })
    return items


def step_states(trace: dict) -> list[tuple[dict, dict, int | str]]:
    """(step, the values of its scope before it, its next line as an answer says it) for each step of a trace: the
    values before a frame's first step are its arguments, later the values after its previous step."""
    before_by_frame: dict[int, dict] = {}
    states = []
    for step in trace["steps"]:
        frame = step.get("frame", 0)
        before = step["entry"] if step.get("entry") is not None else before_by_frame.get(frame, {})
        before_by_frame[frame] = step["vars"]
        following = step["next"]
        next_line = COMPLETION if following == "<END>" else following[1:] if isinstance(following, str) else following
        states.append((step, before, next_line))
    return states


def split_of(program_id: str, fractions: dict[str, float], seed: int = 0) -> str:
    """The split a program belongs to (a hash of its id: every step and input of a program land together)."""
    total = sum(fractions.values())
    point = int(hashlib.sha256(f"{seed}:{program_id}".encode()).hexdigest()[:12], 16) / 16 ** 12 * total
    for name, share in fractions.items():
        if point < share:
            return name
        point -= share
    return list(fractions)[-1]


def read_items(path: str | Path) -> list[dict]:
    """Items from a JSONL file, each field checked; DataError names the file, line and field."""
    items, seen = [], set()
    for line, row in read_records(path):
        for name, kinds in ITEM_FIELDS.items():
            if name not in row:
                raise DataError(path, line, f"missing field {name!r} (an item needs {', '.join(ITEM_FIELDS)})")
            if not isinstance(row[name], kinds) or (kinds is int and isinstance(row[name], bool)):
                expected = " or ".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))
                raise DataError(path, line, f"field {name!r} is {type(row[name]).__name__}, expected {expected}")
        if row["kind"] not in KINDS:
            raise DataError(path, line, f"field 'kind' is {row['kind']!r}, expected one of {KINDS}")
        values = row["subsequent_values"]
        if (len(values) != 1 or not isinstance(values[0], list) or len(values[0]) != 2
                or not isinstance(values[0][1], dict)):
            raise DataError(path, line, "field 'subsequent_values' must be [[line, {name: value}]]")
        if row["item_id"] in seen:
            raise DataError(path, line, f"item_id {row['item_id']!r} appears twice")
        seen.add(row["item_id"])
        items.append(row)
    if not items:
        raise DataError(path, 0, "no items")
    return items
