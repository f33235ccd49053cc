"""Critic-Evol (CodeFavor): a critic model reflects on a weak solution and, where the solution is not good enough,
writes a criterion, a second attempt and feedback. The second attempt must parse; where the problem has tests, it
must not fail a test that the first attempt passed (both are run in the sandbox by jobs/synth_prefs.py).

    from raylib.synth.critic_evol import Attempt, critic_messages, read_critique, pair_from_critique, regressions
    messages = critic_messages(prompts, attempt)
    critique, reason = read_critique(answer, attempt)          # {"reflection", "criteria", "attempt_2", "feedback"}
    regressions(first_tests, second_tests)                     # names of tests the first passed and the second not
    pair = pair_from_critique(attempt, critique, prompts, model, checks={...})

Attempts come from a generation job's samples (the problem's prompt is the instruction, the sample's whole program
the first attempt) or from rows {"instruction", "solution" | "response"} without tests. Pure.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from raylib.data.problems import Problem
from raylib.files import DataError, read_records
from raylib.synth.pairs import make_pair
from raylib.synth.prompts import PromptSet
from raylib.synth.sections import marked_sections, strip_fence

__all__ = ["Attempt", "attempts_from_samples", "check_parses", "critic_messages", "pair_from_critique",
           "read_attempt_rows", "read_critique", "regressions"]

IMPROVEMENT = ["CRITERIA", "ATTEMPT_2", "FEEDBACK"]
NO_IMPROVEMENT = "good enough: the critic proposed no improvement"


@dataclasses.dataclass(frozen=True)
class Attempt:
    key: str            # task_id#sample_id: the answer's and the pair's source id
    task_id: str
    instruction: str
    program: str
    language: str
    has_tests: bool


def attempts_from_samples(samples: list, problems: dict[str, Problem]) -> list[Attempt]:
    """One Attempt per distinct program of each task (a generation job's samples; their problems' tests apply)."""
    attempts, seen = [], set()
    for sample in samples:
        if not sample.program.strip() or (sample.task_id, sample.sha) in seen:
            continue
        seen.add((sample.task_id, sample.sha))
        problem = problems[sample.task_id]
        attempts.append(Attempt(f"{sample.task_id}#{sample.sample_id}", sample.task_id, problem.prompt,
                                sample.program, problem.language, has_tests=True))
    return attempts


def read_attempt_rows(path: str | Path) -> tuple[list[Attempt], list[dict]]:
    """(attempts without tests, skipped rows) from rows {"instruction", "solution" | "response", "task_id"?,
    "language"?} (CodeFavor starts from self-oss-instruct's instructions and a weak model's responses). A response's
    first fenced block is its code; a response without one is used whole if it parses, else skipped ({"source",
    "line", "reason"}).

    Raises:
        DataError: a row lacks the instruction or the solution (names file, line, field), or no row has code.
    """
    attempts, skipped = [], []
    for line, row in read_records(path):
        if not isinstance(row.get("instruction"), str):
            raise DataError(path, line, "field 'instruction' is missing or not a string (without --dataset, rows are "
                            "{instruction, solution | response}; with --dataset, a generation job's samples)")
        text = row.get("solution", row.get("response"))
        if not isinstance(text, str):
            raise DataError(path, line, "field 'solution' (or 'response') is missing or not a string")
        task_id, language = str(row.get("task_id", f"line-{line}")), str(row.get("language", "python"))
        program = strip_fence(text)
        error = "no code" if not program.strip() else "" if "```" in text else check_parses(program, language)
        if error:
            skipped.append({"source": f"{task_id}#{line}", "line": line, "reason": f"the solution holds no code "
                            f"({error})" if error != "no code" else "the solution holds no code"})
            continue
        attempts.append(Attempt(f"{task_id}#{line}", task_id, row["instruction"], program, language, has_tests=False))
    if not attempts:
        raise DataError(path, 0, "no row with code in the file")
    return attempts, skipped


def critic_messages(prompts: PromptSet, attempt: Attempt) -> list[dict]:
    return prompts.messages(prompts.fill("critic", instruction=attempt.instruction.strip(), language=attempt.language,
                                         attempt=attempt.program.strip()))


def check_parses(code: str, language: str) -> str:
    """"" when `code` parses (Python: ast.parse; other languages are not checked here), else the syntax error."""
    if language != "python":
        return ""
    try:
        ast.parse(code)
    except SyntaxError as err:
        return f"SyntaxError: {err.msg} (line {err.lineno})"
    except ValueError as err:  # e.g. null bytes
        return f"ValueError: {err}"
    return ""


def read_critique(answer: str, attempt: Attempt) -> tuple[dict | None, str]:
    """The critique's parts {"reflection", "criteria", "attempt_2" (code), "feedback"}, read from the answer's last
    reflection on (an answer that first repeats an example is read from its own part), or (None, why not): no
    reflection; only a reflection (the critic found the attempt good enough); some but not all of the other
    sections; a second attempt without code, equal to the first, or that does not parse; feedback that names
    neither attempt."""
    found, missing = marked_sections(answer, ["REFLECTION", *IMPROVEMENT], after="REFLECTION")
    if "REFLECTION" in missing:
        return None, "missing section REFLECTION"
    if set(missing) == set(IMPROVEMENT):
        return None, NO_IMPROVEMENT
    if missing:
        return None, f"missing section {missing[0]}"
    second = strip_fence(found["ATTEMPT_2"])
    if not second.strip():
        return None, "ATTEMPT_2 holds no code"
    if second.strip() == attempt.program.strip():
        return None, "the second attempt is the first"
    error = check_parses(second, attempt.language)
    if error:
        return None, f"the second attempt does not parse ({error})"
    if "[ATTEMPT_1]" not in found["FEEDBACK"] and "[ATTEMPT_2]" not in found["FEEDBACK"]:
        return None, "the feedback names neither [ATTEMPT_1] nor [ATTEMPT_2]"
    return {"reflection": found["REFLECTION"], "criteria": found["CRITERIA"], "attempt_2": second,
            "feedback": found["FEEDBACK"]}, ""


def regressions(first: list[dict], second: list[dict]) -> list[str]:
    """Names of the tests (results rows' "tests": [{"name", "passed"}]) that the first attempt passed and the second
    did not (a test missing from the second's verdicts counts as not passed)."""
    passed_second = {t["name"] for t in second if t["passed"]}
    return [t["name"] for t in first if t["passed"] and t["name"] not in passed_second]


def pair_from_critique(attempt: Attempt, critique: dict, prompts: PromptSet, model: str, checks: dict) -> dict:
    """The pair: the second attempt chosen over the first. `checks` (recorded in provenance): what the tests said,
    e.g. {"first_passed": False, "second_passed": True}, or {} without tests."""
    feedback = critique["feedback"].replace("[ATTEMPT_1]", "[NAIVE_CODE]").replace("[ATTEMPT_2]", "[IMPROVED_CODE]")
    provenance = {"method": "critic-evol", "prompts": prompts.label, "model": model, "sample": attempt.key,
                  "reflection": critique["reflection"], "tests": checks or None}
    return make_pair(task_id=attempt.task_id, instruction=attempt.instruction, criteria=critique["criteria"],
                     chosen=critique["attempt_2"], rejected=attempt.program, objective="improvement",
                     feedback=feedback, provenance=provenance)
