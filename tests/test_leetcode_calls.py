"""LeetCode-style and call-based tests (LiveCodeBench `functional`, TACO/APPS `fn_name`): the program's process only
answers calls with plain data; the answers are compared outside it with the benchmark harness's own rule; attacks on
that, one property per test."""

from __future__ import annotations

import json
import uuid

import pytest

from raylib.data.problems import LCB_PRELUDE, TACO_PRELUDE, load_problems
from raylib.evaluate.requests import build_request
from sandbox import CallTests, ExecRequest, Limits, Sandbox, SandboxConfig, StdioCase, StdioTests
from sandbox.inside import plain
from sandbox.judge.compare import answer_matches, harness_equal

PROGRAM_FAILURES = ("failed", "runtime-error", "timeout", "memory", "compile-error")


@pytest.fixture(scope="module")
def box():
    with Sandbox(SandboxConfig(workers=1)) as sandbox:
        yield sandbox


def calls(entry: str, cases: list[tuple[list, object]], oracle: str = "lcb", prelude: str = LCB_PRELUDE) -> CallTests:
    return CallTests(entry_point=entry, instance_of="Solution", prelude=prelude, oracle=oracle,
                     inputs=[plain.encode(args) for args, _ in cases], expected=[plain.encode(o) for _, o in cases],
                     groups=[(f"case {i}", 1) for i in range(len(cases))])


def run(box, code: str, tests, limits: Limits | None = None):
    return box.run(ExecRequest(language="python", code=code, tests=tests, limits=limits or Limits(wall_time_s=10)))


def assert_not_forged(result) -> None:
    assert not result.passed and result.status in PROGRAM_FAILURES and result.judged_by == "replay", result


# ------------------------------------------------------------------------------------------ the harnesses' rules


def test_one_answer_is_compared_as_livecodebench_compares_it():
    assert harness_equal((0, 1), [0, 1], "lcb")  # a tuple answer counts as a list
    assert harness_equal(1.0, 1, "lcb") and harness_equal(True, 1, "lcb")  # Python's ==, as the harness uses
    assert not harness_equal(0.1 + 0.2, 0.3, "lcb")  # no float tolerance in LiveCodeBench's call-based grader
    assert not harness_equal([[0, 1]], [0, 1], "lcb")  # no unwrapping (that is APPS's rule)
    assert not harness_equal(((0, 1),), [[0, 1]], "lcb")  # only the outer tuple becomes a list
    assert answer_matches((0, 1), [0, 1], None, 0.0, "lcb") == (True, 0.0)


def test_one_answer_is_compared_as_taco_compares_it():
    assert harness_equal(3, [3], "apps")  # TACO's outputs are wrapped: [answer]
    assert harness_equal([1, 2], [1, 2], "apps") and harness_equal([1, 2], [[1, 2]], "apps")
    assert harness_equal([(1, 1), (3, 2)], [[[1, 1], [3, 2]]], "apps")  # a list of tuples, as lists
    assert harness_equal((1, 2), [[1, 2]], "apps")
    assert not harness_equal(4, [3], "apps") and harness_equal([], [], "apps")
    assert not harness_equal(3, [], "apps")  # nothing to unwrap


def test_taco_dict_inputs_and_outputs_get_int_keys_as_the_harness_gives_them(tmp_path):
    row = {"question": "Sum the values of a dict.",
           "solutions": json.dumps(["def f(d):\n    return {0: sum(d.values())}\n"]),
           "starter_code": "", "input_output": json.dumps({"fn_name": "f", "inputs": [[{"1": 2, "3": 4}]],
                                                           "outputs": [{"0": 6}]})}
    path = tmp_path / "taco.jsonl"
    path.write_text(json.dumps(row) + "\n")
    tests = load_problems("stdio", path)["taco/1"].tests
    assert [plain.decode(t) for t in tests.inputs] == [[{1: 2, 3: 4}]]
    assert [plain.decode(t) for t in tests.expected] == [[{0: 6}]]
    assert tests.prelude == TACO_PRELUDE and tests.oracle == "apps"


# ------------------------------------------------------------------------------------------------ how it runs


def test_the_method_of_one_solution_instance_answers_every_call(box):
    counting = ("class Solution:\n    def __init__(self):\n        self.calls = 0\n"
                "    def next(self, x: int) -> int:\n        self.calls += 1\n        return self.calls * 10 + x\n")
    result = run(box, counting, calls("next", [([1], 11), ([2], 22), ([3], 33)]))
    assert result.passed and [t.status for t in result.tests] == ["passed"] * 3, result


def test_a_program_without_the_class_is_called_as_a_function(box):
    result = run(box, "def add(a, b):\n    return a + b\n", calls("add", [([1, 2], 3), ([5, 5], 10)]))
    assert result.passed and result.judged_by == "replay", result


def test_each_case_is_its_own_test_and_a_wrong_case_names_its_input(box):
    code = "class Solution:\n    def sq(self, x):\n        return x * x if x < 3 else -1\n"
    result = run(box, code, calls("sq", [([1], 1), ([2], 4), ([3], 9)]))
    assert [(t.name, t.status) for t in result.tests] == [("case 0", "passed"), ("case 1", "passed"),
                                                          ("case 2", "failed")]
    assert "input 2" in result.tests[2].error and "expected 9, got -1" in result.tests[2].error


def test_the_harness_imports_are_in_scope_for_call_and_stdin_programs(box):
    uses_imports = "class Solution:\n    def f(self, xs: List[int]) -> int:\n        return gcd(*xs) + len(deque(xs))\n"
    assert run(box, uses_imports, calls("f", [([[4, 6]], 4)])).passed
    assert run(box, uses_imports, calls("f", [([[4, 6]], 4)], prelude="")).status == "runtime-error"
    stdin = "a, b = map(int, input().split())\nprint(gcd(a, b))\n"
    cases = [StdioCase(input="4 6\n", output="2\n")]
    assert run(box, stdin, StdioTests(cases=cases, prelude=LCB_PRELUDE)).passed
    assert run(box, stdin, StdioTests(cases=cases)).status == "runtime-error"


def test_each_call_gets_the_problems_time_limit(box, tmp_path):
    row = {"question_id": "slow", "question_content": "x", "platform": "leetcode", "starter_code": "",
           "public_test_cases": json.dumps([{"input": str(i), "output": str(i), "testtype": "functional"}
                                            for i in range(3)]),
           "private_test_cases": "[]", "metadata": json.dumps({"func_name": "f"})}
    path = tmp_path / "lcb.jsonl"
    path.write_text(json.dumps(row) + "\n")
    problem = load_problems("stdio", path)["slow"]
    slow_last = "import time\nclass Solution:\n    def f(self, x):\n        time.sleep(0.2 if x < 2 else 3)\n" \
                "        return x\n"
    result = box.run(build_request(problem, slow_last, 1.5, 1024))  # 1.5 s per call, as the problem's limit
    assert [t.status for t in result.tests] == ["passed", "passed", "timeout"], result


def test_a_tuple_answer_counts_as_the_expected_list_in_the_sandbox(box):
    code = "class Solution:\n    def pair(self, x):\n        return (x, x)\n"
    assert run(box, code, calls("pair", [([1], [1, 1])])).passed


# -------------------------------------------------------------------------------------------------- attacks


def test_expected_answers_never_reach_the_programs_process(box):
    secret = f"SECRET-{uuid.uuid4().hex}"
    # Looks everywhere it can: every object in its heap, its files, descriptors and environment.
    hunter = '''
import gc, os, re
def find():
    for obj in gc.get_objects():
        for value in (obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()):
            if isinstance(value, str) and re.search("SECRET-[0-9a-f]{32}", value):
                return value
    for root in (".", "/tmp", "/proc/self/fd"):
        for name in os.listdir(root):
            try:
                data = open(os.path.join(root, name), "rb").read(1 << 20)
            except OSError:
                continue
            found = re.search(rb"SECRET-[0-9a-f]{32}", data)
            if found:
                return found.group().decode()
    return "none"
class Solution:
    def answer(self, x):
        return find()
'''
    result = run(box, hunter, calls("answer", [([1], secret)]))
    assert_not_forged(result)
    assert "got 'none'" in result.tests[0].error, result
    # control: the hunter does find the secret where it is in the process (here, as the call's argument)
    assert run(box, hunter, calls("answer", [([secret], secret)])).passed


def test_an_answer_whose_eq_always_says_true_fails(box):
    code = "class Yes:\n    def __eq__(self, other):\n        return True\n" \
           "class Solution:\n    def f(self, x):\n        return Yes()\n"
    result = run(box, code, calls("f", [([1], 7)]))
    assert_not_forged(result)
    assert "not plain data" in result.tests[0].error


def test_a_list_subclass_is_judged_by_its_contents_not_its_eq(box):
    code = "class Agree(list):\n    def __eq__(self, other):\n        return True\n    __hash__ = None\n" \
           "class Solution:\n    def f(self, x):\n        return Agree([9])\n"
    result = run(box, code, calls("f", [([1], [1, 2])]))
    assert_not_forged(result)
    assert "got [9]" in result.tests[0].error


def test_a_solution_that_leaves_while_being_made_fails_every_call(box):
    code = "import os\nclass Solution:\n    def __init__(self):\n        os._exit(0)\n    def f(self, x):\n" \
           "        return x\n"
    result = run(box, code, calls("f", [([1], 1), ([2], 2)]))
    assert_not_forged(result)
    assert [t.passed for t in result.tests] == [False, False]


def test_a_metaclass_cannot_turn_the_instance_into_a_forger(box):
    # Solution() returns the class itself, whose attribute lookup answers every name with a function returning an
    # object that claims equality with anything: still not plain data.
    code = '''
class Meta(type):
    def __call__(cls):
        return cls
    def __getattr__(cls, name):
        class Yes:
            def __eq__(self, other):
                return True
        return lambda *args: Yes()
class Solution(metaclass=Meta):
    pass
'''
    result = run(box, code, calls("f", [([1], 1)]))
    assert_not_forged(result)


def test_feedback_on_the_shown_cases_names_the_call_the_expected_and_the_got(box):
    from raylib.generate.prompts import PromptSettings
    from raylib.scale.feedback import feedback_text
    from raylib.scale.tasks import CodeTasks

    problems = load_problems("stdio", "tests/fixtures/livecodebench.jsonl")
    tasks = CodeTasks({"1": problems["1"]}, PromptSettings())
    wrong = "class Solution:\n    def twoSum(self, nums, target):\n        return [1, 0]\n"
    requests = tasks.shown_requests("1", wrong, 5.0, 1024)
    shown = tasks.shown_run("1", box.run_batch(requests))
    text = feedback_text("public-tests", shown)
    assert "fails 1 of the 1 tests shown" in text
    assert "- `twoSum([2, 7, 11, 15], 9)` should be `[0, 1]`, got `[1, 0]`." in text


def test_the_host_waits_for_given_answer_calls_only_as_long_as_the_worker_may_take():
    from sandbox.pool import _host_timeout

    tests = calls("f", [([i], i) for i in range(150)])
    request = ExecRequest(code="def f(x):\n    return x\n", tests=tests,
                          limits=Limits(wall_time_s=60, cpu_time_s=60, call_time_floor_s=6))
    # 150 one-case tests: min(60, 6 x 1) + 1 s each, then judging max(10, 60) s and 15 s of slack; nothing recorded
    assert _host_timeout(request) == 150 * 7 + 60 + 15


def test_numbers_of_other_types_are_compared_as_the_harnesses_compare_them(box):
    # LiveCodeBench and TACO compare with ==: Fraction(3) == 3 and Decimal("0.5") == 0.5 pass there, Fraction(1, 3)
    # is not equal to any float
    code = "from fractions import Fraction\nfrom decimal import Decimal\nclass Solution:\n    def f(self, x):\n" \
           "        return [Fraction(3), Decimal('0.5'), {Fraction(2): (Fraction(7, 2),)}][x]\n"
    cases = [([0], 3), ([1], 0.5), ([2], {2: (3.5,)})]  # inside containers too
    assert run(box, code, calls("f", cases)).passed
    assert run(box, code, calls("f", cases, oracle="apps", prelude=TACO_PRELUDE)).passed
    third = "from fractions import Fraction\ndef f(x):\n    return Fraction(1, 3)\n"
    result = run(box, third, calls("f", [([0], 1 / 3)]))
    assert_not_forged(result)
    assert "not plain data" in result.tests[0].error
    # EvalPlus's rule is not changed: there an answer must be plain data
    strict = CallTests(entry_point="f", inputs=[plain.encode([0])], expected=[plain.encode(3)])
    assert not run(box, "from fractions import Fraction\ndef f(x):\n    return Fraction(3)\n", strict).passed


def test_unreadable_functional_rows_are_skipped_or_refused_with_the_field_named(tmp_path):
    from raylib.files import DataError

    base = {"question_id": "q", "question_content": "x", "platform": "leetcode", "starter_code": "",
            "private_test_cases": "[]", "metadata": json.dumps({"func_name": "f"})}
    trailing = dict(base, public_test_cases=json.dumps([{"input": "[1,2]\n", "output": "3", "testtype": "functional"}]))
    no_name = dict(base, question_id="r", metadata='"x"',
                   public_test_cases=json.dumps([{"input": "1", "output": "1", "testtype": "functional"}]))
    path = tmp_path / "lcb.jsonl"
    path.write_text(json.dumps(trailing) + "\n")
    warnings: list[str] = []
    with pytest.raises(DataError, match="no stdio problems"):  # the one row is skipped, with its reason
        load_problems("stdio", path, warnings=warnings)
    assert warnings == [f"{path}:1: skipped: functional test case 0: input line 2 is not JSON (Expecting value): ''"]
    path.write_text(json.dumps(no_name) + "\n")
    with pytest.raises(DataError, match=r"lcb.jsonl:1: .*needs metadata.func_name .*got metadata '\"x\"'"):
        load_problems("stdio", path)
