"""Math problems (GSM8K, MATH500) for the test-time scaling loops: loaders of their public formats, final-answer
extraction and an equivalence check. Pure: stdlib and pydantic only.

    from raylib.data.math_problems import answers_equal, final_answer, load_math_problems
    problems = load_math_problems("gsm8k", "test.jsonl")     # {"gsm8k/0": MathProblem(question, answer="72"), ...}
    final_answer("... so she has \\\\boxed{\\\\frac{3}{4}} left")   # "\\\\frac{3}{4}"
    answers_equal("0.75", "\\\\frac{3}{4}")                        # True

Formats (one JSON object per line, or a .json list):
  gsm8k    openai/grade-school-math: {"question", "answer": "... #### 72"} (task ids gsm8k/<line index>)
  math500  HuggingFaceH4/MATH-500 (and hendrycks MATH): {"problem", "solution", "answer"?, "unique_id"?, "level"?,
           "subject"?}; the answer is `answer`, else the last \\boxed{} of `solution`

The final answer of a model's text: the last `\\boxed{...}` (balanced braces), else the number after `####`, else what
follows "The final answer is" (FTTT's GSM8K instruction). Equivalence: both sides normalised (LaTeX wrappers, units,
thousands separators, trailing dots, `\\frac`, `\\sqrt`, degrees, percent), then equal as text, or equal as numbers
when both evaluate, by a small arithmetic evaluator over Python's ast (numbers, + - * / ^, sqrt, pi): never eval,
since the text is a model's.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from fractions import Fraction
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from raylib.files import DataError, read_records

__all__ = ["MATH_DATASETS", "MathProblem", "answers_equal", "final_answer", "load_math_problems", "normalize_answer"]

MATH_DATASETS = ("gsm8k", "math500")


class MathProblem(BaseModel):
    """One math problem: the question a model is shown and the reference final answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_id: str = Field(..., min_length=1)
    question: str = Field(..., min_length=1)
    answer: str = Field(..., description="The reference final answer (as the dataset writes it).")
    difficulty: str | None = None
    tags: tuple[str, ...] = ()


def load_math_problems(dataset: str, path: str | Path) -> dict[str, MathProblem]:
    """The problems of a GSM8K or MATH500 file, in file order; DataError names the file, line and field."""
    if dataset not in MATH_DATASETS:
        raise ValueError(f"unknown math dataset {dataset!r}; expected one of {MATH_DATASETS}")
    problems: dict[str, MathProblem] = {}
    for index, (line, row) in enumerate(read_records(path)):
        if dataset == "gsm8k":
            for field in ("question", "answer"):
                if not isinstance(row.get(field), str) or not row[field].strip():
                    raise DataError(path, line, f"a GSM8K row needs a non-empty string field {field!r}")
            if "####" not in row["answer"]:
                raise DataError(path, line, "a GSM8K answer ends with '#### <number>'; this one has no '####'")
            answer = row["answer"].rsplit("####", 1)[1].strip().replace(",", "")
            problem = MathProblem(task_id=f"gsm8k/{index}", question=row["question"], answer=answer)
        else:
            if not isinstance(row.get("problem"), str) or not row["problem"].strip():
                raise DataError(path, line, "a MATH row needs a non-empty string field 'problem'")
            answer = row.get("answer")
            if not isinstance(answer, str) or not answer.strip():
                answer = final_answer(str(row.get("solution") or ""))
                if answer is None:
                    raise DataError(path, line, "a MATH row needs 'answer', or a 'solution' with a \\boxed{} answer")
            task_id = str(row.get("unique_id") or f"math500/{index}")
            problem = MathProblem(task_id=task_id, question=row["problem"], answer=answer,
                                  difficulty=str(row["level"]) if row.get("level") is not None else None,
                                  tags=(str(row["subject"]),) if row.get("subject") else ())
        if problem.task_id in problems:
            raise DataError(path, line, f"task id {problem.task_id!r} appears twice")
        problems[problem.task_id] = problem
    if not problems:
        raise DataError(path, 0, "no problems in the file")
    return problems


def _last_boxed(text: str) -> str | None:
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    rest = text[start:]
    brace = rest.find("{")
    if brace < 0 or rest[len("\\boxed") if rest.startswith("\\boxed") else len("\\fbox"):brace].strip():
        match = re.match(r"\\boxed\s+([^\s$]+)", rest)  # "\boxed 5"
        return match.group(1) if match else None
    depth = 0
    for i in range(brace, len(rest)):
        depth += {"{": 1, "}": -1}.get(rest[i], 0)
        if depth == 0:
            return rest[brace + 1:i]
    return None


_NUMBER = re.compile(r"-?[0-9][0-9,]*(?:\.[0-9]+)?|-?\.[0-9]+")


def final_answer(text: str) -> str | None:
    """The final answer a solution text states (see the module docstring); None when it states none."""
    boxed = _last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    if "####" in text:
        match = _NUMBER.search(text.rsplit("####", 1)[1])
        if match:
            return match.group(0).replace(",", "")
    if "The final answer is" in text:
        tail = text.rsplit("The final answer is", 1)[1].strip().lstrip(":").strip()
        match = _NUMBER.search(tail)
        if match:
            return match.group(0).replace(",", "")
        tail = tail.split("\n", 1)[0].rstrip(".").strip().strip("$").strip()
        return tail or None
    return None


_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\{([^{}]*)\}")
_UNITS = re.compile(r"\s*(?:\\text\{\s*)?(?:units?|dollars?|cents?|degrees?|cm|meters?|inches|feet|hours?|minutes?"
                    r"|seconds?|days?|miles?)\}?\s*$")


def normalize_answer(answer: str) -> str:
    """A canonical text form of an answer (MATH's usual clean-up): no spaces, no `$`, `\\left`/`\\right`, `\\!`,
    units, degrees, trailing dots or thousands separators; `\\dfrac`/`\\tfrac` as `\\frac`; `0.5` not `.5`."""
    s = answer.strip().strip("$").strip()
    s = s.replace("\\!", "").replace("\\,", "").replace("\\;", "").replace("\\left", "").replace("\\right", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("^\\circ", "").replace("^{\\circ}", "")
    s = s.replace("\\%", "").replace("%", "").replace("\\$", "")
    s = _UNITS.sub("", s)
    s = _WRAPPERS.sub(r"\1", s)
    s = s.replace(" ", "").rstrip(".")
    if re.fullmatch(r"-?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?", s):
        s = s.replace(",", "")
    if re.fullmatch(r"[a-z]=.+", s):  # "x=5" -> "5"
        s = s[2:]
    s = re.sub(r"(^|[^0-9])\.([0-9])", r"\g<1>0.\2", s)
    return s


def _to_python(s: str) -> str:
    """LaTeX arithmetic as a Python expression (to be parsed by ast, never evaluated as code)."""
    for _ in range(4):  # nested fractions
        s = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)
    s = re.sub(r"\\frac(\d)(\d)", r"(\1/\2)", s)
    s = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", s)
    s = re.sub(r"\\sqrt(\d+)", r"sqrt(\1)", s)
    s = s.replace("\\pi", "pi").replace("\\cdot", "*").replace("\\times", "*").replace("^", "**")
    s = s.replace("{", "(").replace("}", ")")
    s = re.sub(r"(\d)(pi|sqrt|\()", r"\1*\2", s)  # 2pi, 3sqrt(2), 2(3)
    return s


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow}


def _value(node: ast.AST):
    """The number an arithmetic ast stands for; ValueError for anything else (names, calls, big powers)."""
    if isinstance(node, ast.Expression):
        return _value(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return Fraction(node.value) if isinstance(node.value, int) else node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _value(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and (abs(float(right)) > 64 or abs(float(left)) > 1e6):
            raise ValueError("power too large")
        if isinstance(node.op, ast.Pow) and isinstance(right, Fraction) and right.denominator != 1:
            return float(left) ** float(right)
        return _OPS[type(node.op)](left, right)
    if isinstance(node, ast.Name) and node.id == "pi":
        return math.pi
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "sqrt"
            and len(node.args) == 1 and not node.keywords):
        return math.sqrt(float(_value(node.args[0])))
    raise ValueError(f"not arithmetic: {ast.dump(node)[:80]}")


def _number(s: str):
    text = _to_python(s)
    if len(text) > 200:
        return None
    try:
        return _value(ast.parse(text, mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, TypeError, RecursionError):
        return None


def answers_equal(given: str | None, reference: str) -> bool:
    """Whether a model's final answer equals the reference (see the module docstring)."""
    if given is None:
        return False
    a, b = normalize_answer(given), normalize_answer(reference)
    if a == b:
        return True
    x, y = _number(a), _number(b)
    if x is None or y is None:
        return False
    if isinstance(x, Fraction) and isinstance(y, Fraction):
        return x == y
    return math.isclose(float(x), float(y), rel_tol=1e-6, abs_tol=1e-9)
