"""What a scaling loop needs of a problem: its first turn, the solution an answer stands for, the key answers are
voted by, and how an answer is checked. Code problems are judged in the sandbox (the runner ships the requests made
here); math problems by final-answer equivalence, here. Pure: no Ray, no engine.

    from raylib.scale.tasks import CodeTasks, MathTasks
    tasks = CodeTasks(problems, PromptSettings(), protocol="codeloop")
    turn = tasks.first_turn("HumanEval/0")      # Turn(messages=(...), response_prefix="```python\\n", stop=("\\n```",))
    tasks.solution("HumanEval/0", answer)       # the whole program that is run
    tasks.key("HumanEval/0", program)           # normalised code (self-consistency votes over it)

Protocols (`protocol`): `codeloop` asks with codeloop's prompts (raylib.generate.prompts: a fenced answer, prefilled
and stopped at the closing fence by local engines); `fttt` asks with FTTT's templates (HumanEval: "Write a solution to
the following problem and make sure that it passes the tests:" + the prompt in a fence; MBPP: "You are an expert
Python programmer, and here is your task: ... Your code should pass the following tests: ...") and takes the program
from the answer's first fenced block (the answer itself when it is valid Python), as FTTT does. Math problems are
always asked with FTTT's GSM8K / MATH500 instructions.
"""

from __future__ import annotations

import ast
import dataclasses
import re

from raylib.data.math_problems import MathProblem, answers_equal, final_answer, normalize_answer
from raylib.data.problems import Problem
from raylib.generate.prompts import PromptSettings, answer_to_sample, build_prompt, sample_program
from raylib.scale.feedback import ShownRun, ShownTest, leetcode_case, one_call_per_case, split_assertion

__all__ = ["FTTT_GSM8K", "FTTT_HUMANEVAL", "FTTT_MATH500", "FTTT_MBPP", "CodeTasks", "MathTasks", "Turn",
           "first_fenced_block", "normalized_code"]

FTTT_HUMANEVAL = ("Write a solution to the following problem and make sure that it passes the tests:\n```python\n\n\n"
                  "{question}\n\n```")
FTTT_MBPP = ("You are an expert Python programmer, and here is your task:\n{text}\nYour code should pass the following "
             "tests:\n{tests}")
FTTT_GSM8K = ("Given the following problem, reason and give a final answer to the problem.\nProblem: {question}\nYour "
              "response should end with \"The final answer is [answer]\" where [answer] is the response to the "
              "problem.")
FTTT_MATH500 = ("Solve the following math problem efficiently and clearly:\n\n- For simple problems (2 steps or fewer):"
                "\nProvide a concise solution with minimal explanation.\n\n- For complex problems (3 steps or more):\n"
                "Use this step-by-step format:\n\n## Step 1: [Concise description]\n[Brief explanation and "
                "calculations]\n\n## Step 2: [Concise description]\n[Brief explanation and calculations]\n\n...\n\n"
                "Regardless of the approach, always conclude with:\n\nTherefore, the final answer is: "
                "$\\boxed{{answer}}$. I hope it is correct.\n\nWhere [answer] is just the final number or expression "
                "that solves the problem.\n\nProblem: {question}")
_MARK = "\x1ecodeloop-value\x1e"
_VALUE_DRIVER = """

def __codeloop_values(calls):
    import sys
    for index, call in enumerate(calls):
        try:
            value = repr(eval(call, globals()))
        except BaseException as exc:
            value = "raised " + type(exc).__name__ + ": " + str(exc)[:200]
        sys.stdout.write("%s%d %s\\n" % ({mark!r}, index, value[:300].replace("\\n", "\\\\n")))
        sys.stdout.flush()

__codeloop_values({calls})
"""


@dataclasses.dataclass(frozen=True)
class Turn:
    """The chat that asks a problem, and how its answers are shaped."""

    messages: tuple[dict, ...]
    response_prefix: str = ""
    stop: tuple[str, ...] = ()


def first_fenced_block(text: str) -> str | None:
    """FTTT's extraction: the first ```...``` block (a leading `python` tag dropped), else the whole answer when it is
    valid Python, else None."""
    trimmed = text.strip()
    match = re.search(r"```(.*?)```", trimmed, re.DOTALL)
    if match:
        code = match.group(1).strip()
        return code[len("python"):].strip() if code.startswith("python") else code
    try:
        compile(trimmed, "<answer>", "exec")
    except (SyntaxError, ValueError):
        return None
    return trimmed


def normalized_code(program: str) -> str:
    """A program with comments, docstrings and layout normalised away (ast round trip); the text with whitespace
    collapsed when it does not parse."""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError):
        return " ".join(program.split())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


class CodeTasks:
    """Coding problems (raylib.data.problems), judged in the sandbox."""

    kind = "code"

    def __init__(self, problems: dict[str, Problem], prompt: PromptSettings, protocol: str = "codeloop"):
        if prompt.style != "instruct":
            raise ValueError("test-time scaling talks to the model in turns: use prompt.style=instruct")
        self.problems, self.prompt, self.protocol = problems, prompt, protocol

    def first_turn(self, task_id: str) -> Turn:
        problem = self.problems[task_id]
        if self.protocol == "fttt" and problem.language == "python":
            return Turn(({"role": "user", "content": _fttt_code_prompt(problem)},))
        prompt = build_prompt(problem, self.prompt)
        return Turn(tuple(prompt.messages), prompt.response_prefix, prompt.stop)

    def solution(self, task_id: str, response: str) -> str:
        """The whole program an answer (with its prefilled start) stands for; "" when it has none."""
        problem = self.problems[task_id]
        if self.protocol == "fttt" and problem.language == "python":
            return first_fenced_block(response) or ""
        prompt = build_prompt(problem, self.prompt)
        return sample_program(problem, answer_to_sample(problem, prompt, response, prefilled=False))

    def key(self, task_id: str, solution: str) -> str:
        return normalized_code(solution) if solution.strip() else ""

    def shows_tests(self, task_id: str) -> bool:
        from raylib.rerank.public_tests import public_tests

        return public_tests(self.problems[task_id]) is not None

    def hidden_request(self, task_id: str, program: str, limit_s: float, memory_mb: int):
        from raylib.evaluate.requests import build_request

        return build_request(self.problems[task_id], program, limit_s, memory_mb)

    def shown_requests(self, task_id: str, program: str, limit_s: float, memory_mb: int) -> list:
        """The sandbox requests that run `program` on the problem's visible tests: the tests themselves, then (Python
        assertion tests) one run printing what each tested expression returns; [] when the problem shows none."""
        from raylib.evaluate.requests import build_request
        from raylib.rerank.public_tests import public_tests
        from sandbox.schema import AssertionTests, ExecRequest, Limits

        problem = self.problems[task_id]
        tests = public_tests(problem)
        if tests is None:
            return []
        requests = [build_request(problem.model_copy(update={"tests": tests}), program, limit_s, memory_mb)]
        if isinstance(tests, AssertionTests) and problem.language == "python":
            calls = [(split_assertion(a) or ("None", ""))[0] for a in tests.assertions]
            driver = _VALUE_DRIVER.format(calls=repr(calls), mark=_MARK)
            requests.append(ExecRequest(language="python", code=tests.setup_code + "\n" + program + driver,
                                        limits=Limits(wall_time_s=limit_s, cpu_time_s=limit_s, memory_mb=memory_mb)))
        return requests

    def shown_run(self, task_id: str, results: list) -> ShownRun | None:
        """A ShownRun from the results of `shown_requests` (None when the problem shows no tests)."""
        from raylib.rerank.public_tests import public_tests
        from sandbox.schema import AssertionTests, StdioTests

        if not results:
            return None
        tests = public_tests(self.problems[task_id])
        run = results[0]
        got: dict[int, str] = {}
        if len(results) > 1:
            for line in results[1].stdout.split("\n"):
                if line.startswith(_MARK):
                    index, _, value = line[len(_MARK):].partition(" ")
                    if index.isdigit():
                        got[int(index)] = value
        shown = []
        if isinstance(tests, StdioTests):
            for i, case in enumerate(tests.cases):
                verdict = run.tests[i] if i < len(run.tests) else None
                shown.append(ShownTest(test=case.input, passed=bool(verdict and verdict.passed),
                                       status=verdict.status if verdict else run.status,
                                       error=verdict.error if verdict else run.error, expected=case.output,
                                       got=verdict.actual if verdict else None))
            return ShownRun(run.status, run.error, tuple(shown), stdio=True)
        if one_call_per_case(tests):
            for i in range(len(tests.inputs)):
                verdict = run.tests[i] if i < len(run.tests) else None
                status = verdict.status if verdict else run.status
                error = verdict.error if verdict else run.error
                call, expected, got = leetcode_case(tests, i, status if verdict else "", error)
                shown.append(ShownTest(test=call, passed=bool(verdict and verdict.passed), status=status, error=error,
                                       call=call, expected=expected, got=got))
            return ShownRun(run.status, run.error, tuple(shown))
        assertions = tests.assertions if isinstance(tests, AssertionTests) else []
        for i, assertion in enumerate(assertions):
            verdict = run.tests[i] if i < len(run.tests) else None
            parts = split_assertion(assertion)
            shown.append(ShownTest(test=assertion, passed=bool(verdict and verdict.passed),
                                   status=verdict.status if verdict else run.status,
                                   error=verdict.error if verdict else run.error,
                                   call=parts[0] if parts else None, expected=parts[1] if parts else None,
                                   got=got.get(i)))
        if not assertions:  # other test kinds: the run as one test
            shown.append(ShownTest(test="the visible tests", passed=run.passed, status=run.status, error=run.error))
        return ShownRun(run.status, run.error, tuple(shown))


def _fttt_code_prompt(problem: Problem) -> str:
    if re.search(r"^\s*def \w+\(", problem.prompt, re.MULTILINE):  # HumanEval-style: the signature and docstring
        return FTTT_HUMANEVAL.format(question=problem.prompt)
    lines = problem.prompt.strip().strip('"').strip().splitlines()
    tests = [line.strip() for line in lines if line.strip().startswith("assert")]
    text = "\n".join(line for line in lines if not line.strip().startswith("assert")).strip()
    return FTTT_MBPP.format(text=text, tests="\n".join(tests))


class MathTasks:
    """Math problems (raylib.data.math_problems), judged by final-answer equivalence."""

    kind = "math"

    def __init__(self, problems: dict[str, MathProblem], dataset: str):
        self.problems, self.dataset = problems, dataset

    def first_turn(self, task_id: str) -> Turn:
        template = FTTT_GSM8K if self.dataset == "gsm8k" else FTTT_MATH500
        return Turn(({"role": "user", "content": template.format(question=self.problems[task_id].question)},))

    def solution(self, task_id: str, response: str) -> str:
        return final_answer(response) or ""

    def key(self, task_id: str, solution: str) -> str:
        return normalize_answer(solution) if solution else ""

    def judge(self, task_id: str, solution: str) -> tuple[bool, str]:
        """(passed, status) of a final answer."""
        if not solution:
            return False, "no-answer"
        return (True, "passed") if answers_equal(solution, self.problems[task_id].answer) else (False, "failed")
