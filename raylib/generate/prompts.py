"""Prompts for coding problems and the samples made from a model's answers (pure functions, no Ray, no engine).

    from raylib.generate.prompts import answer_to_sample, build_prompt, PromptSettings
    prompt = build_prompt(problem, PromptSettings(style="instruct"))
    # Prompt(messages=[...], response_prefix="```python\\n", stop=["\\n```"])
    sample = answer_to_sample(problem, prompt, "def add(a, b):\\n    return a + b\\n```")   # {"solution": "..."}

Two styles:
- `instruct` (default; chat models): the problem inside a user message that asks for one fenced code block; the
  answer is prefilled with the opening fence (local engines) and stops at the closing one. The sample is the
  extracted code as a whole program (`solution`): a function the model rewrote whole, or the prompt plus a body.
- `completion` (base models; HumanEval-style problems with a code prefix): the prompt is the problem's code prefix,
  the answer its continuation, stopped at the next top-level statement (Codex's stop sequences for Python); the
  sample is that continuation (`completion`), appended to the prompt exactly as the openai harness does.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from raylib.data.problems import Problem
from raylib.data.samples import assemble_program, extract_code
from raylib.generate.engines.base import GenerationRequest, GenerationResult, SamplingParams

__all__ = ["COMPLETION_STOPS", "Prompt", "PromptSettings", "answer_to_sample", "build_prompt", "engine_prompt_settings",
           "prompt_request", "sample_program", "sample_rows"]

# Where a completion of a top-level Python function ends (the Codex paper's stop sequences).
COMPLETION_STOPS = {"python": ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]}
_LANGUAGE_NAMES = {"python": "Python", "cpp": "C++", "javascript": "JavaScript"}
_FENCE_TAGS = {"python": "python", "cpp": "cpp", "javascript": "javascript"}

FUNCTION_INSTRUCTION = ("Complete the following {language} function. Answer with the whole function, and the imports "
                        "it needs, in one ```{tag} code block.\n\n```{tag}\n{prompt}\n```")
PROGRAM_INSTRUCTION = ("Solve the following problem with a {language} program. Answer with the whole program in one "
                       "```{tag} code block.\n\n{prompt}")
STDIO_INSTRUCTION = ("Solve the following problem with a {language} program that reads standard input and writes "
                     "standard output. Answer with the whole program in one ```{tag} code block.\n\n{prompt}")


class PromptSettings(BaseModel):
    """How problems become prompts."""

    model_config = ConfigDict(extra="forbid")

    style: Literal["instruct", "completion"] = Field("instruct", description="instruct: a chat message asking for a "
                                                     "code block (chat models); completion: the problem's code prefix "
                                                     "to continue (base models, HumanEval-style problems).")
    instruction: str | None = Field(None, description="Your own user-message template with {prompt}, {language}, {tag} "
                                    "and {entry_point} (instruct style); None: a built-in one per problem kind.")
    system: str | None = Field(None, description="System message (instruct style); None: the chat template's default.")
    prefill: bool = Field(True, description="Start the answer with the opening code fence (instruct style; local "
                          "engines).")

    @field_validator("instruction")
    @classmethod
    def _check_instruction(cls, template: str | None) -> str | None:
        if template is None:
            return None
        if "{prompt}" not in template:
            raise ValueError("the instruction template must contain {prompt} (where the problem goes)")
        try:
            template.format(prompt="", language="", tag="", entry_point="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"the instruction template can use only {{prompt}}, {{language}}, {{tag}} and "
                             f"{{entry_point}}; write other braces doubled ({{{{ and }}}}): {exc!r}") from None
        return template


@dataclasses.dataclass(frozen=True)
class Prompt:
    """What an engine is given for one problem."""

    style: str
    text: str | None = None  # completion style
    messages: tuple[dict, ...] | None = None  # instruct style
    response_prefix: str = ""
    stop: tuple[str, ...] = ()


def build_prompt(problem: Problem, settings: PromptSettings) -> Prompt:
    """The prompt for `problem`. Completion style needs a code prefix (HumanEval, MultiPL-E); problems without one
    (MBPP, stdin/stdout) are always asked instruct-style."""
    language = problem.language
    if settings.style == "completion" and problem.completion_prefix:
        return Prompt(style="completion", text=problem.prompt or problem.completion_prefix,
                      stop=problem.stop or tuple(COMPLETION_STOPS.get(language, ())))
    tag = _FENCE_TAGS.get(language, language)
    fields = dict(language=_LANGUAGE_NAMES.get(language, language), tag=tag, entry_point=problem.entry_point,
                  prompt=problem.prompt.strip())
    if settings.instruction is not None:
        template = settings.instruction
    elif problem.completion_prefix:
        template = FUNCTION_INSTRUCTION
    elif problem.tests.kind == "stdio":
        template = STDIO_INSTRUCTION
    else:
        template = PROGRAM_INSTRUCTION
    messages = ([{"role": "system", "content": settings.system}] if settings.system else []) + \
        [{"role": "user", "content": template.format(**fields)}]
    prefix = f"```{tag}\n" if settings.prefill else ""
    return Prompt(style="instruct", messages=tuple(messages), response_prefix=prefix, stop=("\n```",) if prefix else ())


def answer_to_sample(problem: Problem, prompt: Prompt, answer: str, prefilled: bool = True) -> dict:
    """The sample-file fields for one answer: `completion` (completion style) or `solution`, a whole program
    (instruct style: the code taken out of `response_prefix` + `answer` when the engine prefilled it)."""
    if prompt.style == "completion":
        return {"completion": answer}
    text = (prompt.response_prefix if prefilled else "") + answer  # a fence left open (stopped at "```") still counts
    if problem.language != "python" and problem.completion_prefix:
        completion = _braced_completion(problem, extract_code(text, problem.language))
        if completion is not None:
            return {"completion": completion}
    return {"solution": assemble_program(problem, text, None, extract=True)}


_SIGNATURE = re.compile(r"([A-Za-z_]\w*)\s*\([^()]*\)\s*(?:const\s*)?\{\s*$")


def _braced_completion(problem: Problem, code: str) -> str | None:
    """For C++/JavaScript prompts that end by opening a function (MultiPL-E): the body of that function in the
    answer, which continues the prompt; with the closing brace when the tests do not start with it (C++ tests do).
    None when the answer does not define the function."""
    lines = [line for line in problem.completion_prefix.splitlines() if line.strip()]
    match = _SIGNATURE.search(lines[-1]) if lines else None
    if match is None:
        return None
    found = re.search(rf"\b{re.escape(match.group(1))}\s*\([^()]*\)[^{{;]*\{{", code)
    if found is None:
        return None
    depth, start = 1, found.end()
    for i in range(start, len(code)):
        depth += {"{": 1, "}": -1}.get(code[i], 0)
        if depth == 0:
            body = code[start:i].strip("\n") + "\n"
            closes = getattr(problem.tests, "test_code", "").lstrip().startswith("}")
            return body if closes else body + "}\n"
    return None


def sample_program(problem: Problem, row: dict) -> str:
    """The program a sample-file row stands for: its `solution`, or the problem's prefix + its `completion`."""
    return row["solution"] if "solution" in row else problem.completion_prefix + row["completion"]


def engine_prompt_settings(settings: PromptSettings, engine) -> PromptSettings:
    """`settings` for `engine`: an engine that cannot prefill the opening fence must not stop at the closing one
    either (it would stop at the opening fence of an answer that starts with prose)."""
    return settings.model_copy(update={"prefill": settings.prefill and getattr(engine, "can_prefill", True)})


def prompt_request(prompt: Prompt, sampling: SamplingParams, key: str, first: int, count: int) -> GenerationRequest:
    """The engine request for samples `first`..`first + count - 1` of problem `key` asked with `prompt`."""
    return GenerationRequest(prompt=prompt.text, messages=list(prompt.messages) if prompt.messages else None,
                             response_prefix=prompt.response_prefix, key=key, first_sample=first,
                             params=sampling.model_copy(update={"n": count, "stop": [*sampling.stop, *prompt.stop]}))


def sample_rows(problem: Problem, prompt: Prompt, result: GenerationResult, first: int, count: int,
                model: str) -> list[tuple[dict, str, str]]:
    """One (samples.jsonl row, program, error) per sample of `result`: an answer that failed, or whose program could
    not be made, still gets its row (error set, empty program), so nothing is dropped."""
    rows = []
    for j in range(count):
        row = {"task_id": problem.task_id, "sample_id": first + j}
        error = result.error or ("" if j < len(result.outputs) else
                                 f"the engine returned {len(result.outputs)} answers for {count} samples")
        if not error:
            out = result.outputs[j]
            try:
                fields = answer_to_sample(problem, prompt, out.text, result.prefilled)
            except Exception as exc:  # noqa: BLE001 - never lose a row to post-processing
                error = f"making a program of the answer failed: {type(exc).__name__}: {exc}"
            else:
                row.update(fields, raw_output=(prompt.response_prefix if result.prefilled else "") + out.text,
                           finish_reason=out.finish_reason, prompt_tokens=result.prompt_tokens,
                           output_tokens=out.tokens, error="", retryable=False)
        if error:
            row.update(solution="", raw_output="", finish_reason="error", prompt_tokens=result.prompt_tokens,
                       output_tokens=0, error=error, retryable=result.retryable)
        row["model"] = model
        rows.append((row, "" if error else sample_program(problem, row), error))
    return rows
