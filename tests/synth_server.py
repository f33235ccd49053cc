"""A real OpenAI-compatible chat endpoint for the synthetic-preference tests: it answers Commit-Instruct,
Critic-Evol and CodeFavor-judge prompts by rule (the `synth_url` fixture in conftest.py serves it on 127.0.0.1).

Commit-Instruct: commit messages steer it: "[minor]" -> "[NO]", "[unsure]" -> no decision, "[broken]" -> an example
without [FEEDBACK], "[same]" -> the same code twice; else [YES] and a well-formed example (naive = old code,
improved = new code). Critic-Evol: an attempt with "a + b" is good enough (reflection only); "BADSYNTAX" gets a second
attempt that does not parse, "REGRESS" one that returns a - b, "CUTSHORT" an answer cut inside ATTEMPT_2; else the
second attempt returns a + b. Judge: prefers the program with "a + b" (both or neither: A); "MUDDLED" gets no
verdict; "FAIL" shown as Code A gets HTTP 400, "FLAKY" HTTP 503 while `down` is set; `biased`: always A;
`status`: every request gets that HTTP status.

Reflection sequences (jobs/synth_reflection.py), by the function `NAME(a, b)` the problem defines: `add` first gets
a - b, after an execution block a + b; `sub` always gets a + b; `mul` gets a * b at once; `talk` gets an answer
without code; `quiet` first gets `return a`, then a fenced a + b without any reflection text.
"""

from __future__ import annotations

import re

from tests.judge_server import JudgeServer

GOOD = "def add(a, b):\n    return a + b"


def _between(text: str, start: str, end: str) -> str:
    """The text after the first `start` up to the next `end`."""
    return text.split(start, 1)[1].split(end)[0]


class SynthServer(JudgeServer):
    status: int | None = None  # answer every request with this HTTP status (an endpoint that is down)

    @classmethod
    def answer(cls, messages: list[dict]) -> tuple[int, str]:
        if cls.status:
            return cls.status, "unavailable"
        last = messages[-1]["content"]
        if "Explain briefly what the change does" in last:
            return 200, "The change rewrites the function so that it returns the right value."
        first = next(m["content"] for m in messages if m["role"] == "user")
        if "Start your answer with [YES] or [NO]" in last:
            if "[minor]" in first:
                return 200, "[NO] The change is cosmetic."
            if "[unsure]" in first:
                return 200, "It depends on what one values."
            return 200, "[YES] The new code fixes a bug."
        if "write one self-contained training example" in last:
            return 200, cls.example(first)
        if "======== Your turn" in last:
            return 200, cls.critique(_between(last.split("======== Your turn")[1], "```python\n", "\n```"))
        if "[RESULT]" in last and "[CODE_A]" in last:
            return cls.verdict(last)
        if "Before the code, explain your approach" in first:
            return 200, cls.reflection(first, sum("Execution result:" in m["content"] for m in messages
                                                  if m["role"] == "user"))
        return 400, "unexpected prompt"

    @staticmethod
    def example(first: str) -> str:
        message = _between(first, "Commit message: ", "\n")
        old = _between(first.split("[OLD_CODE]")[1], "```python\n", "\n```")
        new = _between(first.split("[NEW_CODE]")[1], "```python\n", "\n```")
        feedback = "" if "[broken]" in message else "\n[FEEDBACK]\n[IMPROVED_CODE] fixes what [NAIVE_CODE] got wrong.\n"
        improved = old if "[same]" in message else new
        return (f"Here is the example.\n\n[INSTRUCTION]\nWrite the function: {message}\n\n[CRITERIA]\nIt must return "
                f"the right value for every input.\n\n[NAIVE_CODE]\n```python\n{old}\n```\n\n[IMPROVED_CODE]\n"
                f"```python\n{improved}\n```\n{feedback}")

    @staticmethod
    def critique(attempt: str) -> str:
        reflection = "-- BEGIN [REFLECTION] --\n{}\n-- END [REFLECTION] --\n"
        if "a + b" in attempt:
            return reflection.format("The attempt is correct and clear; it is good enough.")
        second = {"BADSYNTAX": "def add(a, b):\n    return (a +", "REGRESS": "def add(a, b):\n    return a - b"}
        code = next((c for marker, c in second.items() if marker in attempt), GOOD)
        feedback = "It is better now." if "NOFEEDBACKNAME" in attempt else "[ATTEMPT_2] adds; [ATTEMPT_1] does not."
        text = (reflection.format("The attempt does not add its arguments.")
                + "-- BEGIN [CRITERIA] --\nThe function must return the sum.\n-- END [CRITERIA] --\n"
                + f"-- BEGIN [ATTEMPT_2] --\n```python\n{code}\n```\n-- END [ATTEMPT_2] --\n"
                + f"-- BEGIN [FEEDBACK] --\n{feedback}\n-- END [FEEDBACK] --\n")
        return text.split("-- END [ATTEMPT_2]")[0] if "CUTSHORT" in attempt else text

    @staticmethod
    def reflection(first: str, fixes: int) -> str:
        """The answer for the problem defining NAME(a, b) after `fixes` execution blocks."""
        name = re.search(r"def (\w+)\(a, b\)", first).group(1)
        body = {"add": "a - b" if fixes == 0 else "a + b", "sub": "a + b", "mul": "a * b", "quiet": "a"}.get(name)
        if body is None:
            return "I would rather explain the idea than write the code."
        code = f"```python\ndef {name}(a, b):\n    return {body}\n```"
        if name == "quiet" and fixes:
            return code
        prose = ("I combine the two arguments with one operator." if fixes == 0
                 else f"The test failed because `{name}` computes the wrong operation; it must use the other one.")
        return f"{prose}\n\n{code}\n"

    @classmethod
    def verdict(cls, prompt: str) -> tuple[int, str]:
        code_a, code_b = (_between(prompt.split(f"[CODE_{x}]\n")[1], "```python\n", "\n```") for x in "AB")
        if cls.biased:
            return 200, "[FEEDBACK]\nBoth run.\n\n[RESULT]\n[CODE_A] is better than [CODE_B] on the criteria."
        if "FAIL" in code_a:
            return 400, "the judge refuses"
        if "FLAKY" in code_a + code_b and cls.down:
            return 503, "overloaded"
        if "MUDDLED" in code_a + code_b:
            return 200, "[FEEDBACK]\nHard to tell.\n\n[RESULT]\nNeither is better."
        better = "B" if re.search(r"a \+ b", code_b) and not re.search(r"a \+ b", code_a) else "A"
        other = "A" if better == "B" else "B"
        return 200, (f"[FEEDBACK]\nCode {better} adds its arguments.\n\n[RESULT]\n[CODE_{better}] is better than "
                     f"[CODE_{other}] on the criteria.")
