"""The tests a prompt shows (raylib.rerank.public_tests): each example form on a small docstring, what is not taken
for an example, and on the real datasets every canonical solution passing every public test it is shown, in the
sandbox, one verdict per example."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from raylib.data.problems import Problem, load_problems
from raylib.evaluate.requests import build_request
from raylib.rerank.public_tests import ERRATA, Example, docstring_examples, public_inputs, public_tests
from sandbox import AssertionTests, FunctionTests, Sandbox, SandboxConfig, StdioTests
from sandbox.schema import INFRA_STATUS

FIXTURES = Path(__file__).parent / "fixtures"
# Floors measured on the shipped data: HumanEval/HumanEval+ prompts with public tests (154 of 164: 155 show examples
# that parse, and HumanEval/116's two are errata; the other 9 show none, or only examples of another name or with
# unquoted strings), and MBPP+ prompts with an assertion (all 378).
HUMANEVAL_FLOOR = 154
MBPP_PLUS_FLOOR = 378
# MBPP+ references whose answer is a re.Match: the sandbox accepts only plain data from a program, so their own
# `assert f(x)` fails, with the prompt's assertion as with the dataset's tests (tests/test_evalplus_rules.py).
NOT_PLAIN_ANSWERS = {"Mbpp/737", "Mbpp/794"}


def docstring(doc: str, entry: str = "f", signature: str = "x") -> str:
    return f'def {entry}({signature}):\n    """Doc.\n    {doc.lstrip(" ")}\n    """\n'


def examples(doc: str, entry: str = "f", signature: str = "x") -> list[tuple[str, str]]:
    prompt = docstring(doc, entry, signature)
    return [(e.call, e.expected) for e in docstring_examples(prompt, entry)]


def problem(doc: str, reference: str | None = None, entry: str = "f", signature: str = "x") -> Problem:
    prompt = docstring(doc, entry, signature)
    return Problem(task_id="t/0", prompt=prompt, completion_prefix=prompt, entry_point=entry,
                   tests=FunctionTests(test_code="def check(candidate):\n    pass\n", entry_point=entry),
                   reference_solution=reference)


@pytest.fixture(scope="module")
def box():
    with Sandbox(SandboxConfig(workers=2, uid_base=64500)) as sandbox:
        yield sandbox


def run_public(box, problems: dict[str, Problem], programs: dict[str, str] | None = None) -> dict:
    """{task_id: (public tests, sandbox result)} for every problem that shows tests; programs default to references."""
    chosen = {t: (p, public_tests(p)) for t, p in problems.items()}
    chosen = {t: (p, tests) for t, (p, tests) in chosen.items() if tests is not None}
    requests = [build_request(p.model_copy(update={"tests": tests}),
                              (programs or {}).get(t, p.reference_solution), 10.0, 1024)
                for t, (p, tests) in chosen.items()]
    results = box.run_batch(requests)
    for _ in range(3):  # "sandbox-error" is the infrastructure failing, never a verdict: run those again
        again = [i for i, result in enumerate(results) if result.status == INFRA_STATUS]
        for i, result in zip(again, box.run_batch([requests[i] for i in again]) if again else []):
            results[i] = result
    return {t: (tests, result) for (t, (_, tests)), result in zip(chosen.items(), results)}


# ------------------------------------------------------------------------------------------------ forms, one each


def test_doctest_lines_take_the_output_lines_below_them():
    doc = "Add.\n    >>> f(1)\n    2\n    >>> f('a')\n    'ab'\n\n    >>> f([1,\n    ...    2])\n    [2, 3]"
    assert examples(doc) == [("f(1)", "2"), ("f('a')", "'ab'"), ("f([1, 2])", "[2, 3]")]


def test_doctest_without_output_is_none_and_a_comparison_is_its_own_expected_value():
    doc = "    >>> f([])\n\n    >>> f(2) == 4\n    >>> f(3) == 9\n    True\n    >>> f(4) == 16\n    False"
    assert examples(doc) == [("f([])", "None"), ("f(2)", "4"), ("f(3)", "9")]


def test_doctest_output_may_span_lines_and_wrap_the_call_in_a_builtin():
    doc = "    >>> f(['a', 'b'])\n    ['x',\n     'y']\n    >>> round(f([1, 2]), 2)  # f(x) = 1 + 2x\n    -0.5"
    assert examples(doc) == [("f(['a', 'b'])", "['x', 'y']"), ("round(f([1, 2]), 2)", "-0.5")]


def test_equality_lines_are_examples():
    assert examples("Examples:\n    f([1, 2]) == 3\n    for f('') == None\n    f(2)  == 6.00") == [
        ("f([1, 2])", "3"), ("f('')", "None"), ("f(2)", "6.0")]


@pytest.mark.parametrize("arrow", ["➞", "->", "=>", "==>", "→", "=", "# =>", "returns", "# returns",
                                   "should return", "will return"])
def test_arrow_and_word_separators(arrow):
    assert examples(f"Example:\n    * f(3, 'a') {arrow} [1, 'b'].") == [("f(3, 'a')", "[1, 'b']")]


def test_should_return_may_break_the_line_and_prose_may_follow_the_value():
    doc = ("For example f(\"14.5\") should\n    return 15 and f('-1') should return -1.\n"
           "    f('x') # => 'No' (the name starts with x)\n    f(1) returns 2 because it is small")
    assert examples(doc) == [("f('14.5')", "15"), ("f('-1')", "-1"), ("f('x')", "'No'"), ("f(1)", "2")]


def test_a_checked_arithmetic_chain_gives_its_last_value():
    doc = "    f([1, 3]) == 1 + 9 = 10\n    f('5 apples', 19) ->19 - 5 - 6 = 8"
    assert examples(doc, signature="x, y=0") == [("f([1, 3])", "10"), ("f('5 apples', 19)", "8")]


def test_input_output_blocks_map_named_arguments_to_parameters():
    doc = ("Example 1:\n        Input: arr = [-3, -4, 5], k = 3\n        Output: [-4, -3, 5]\n"
           "    Example 2:\n        Input: k = 1, arr = [2]\n        Output: [2] # the largest\n"
           "    Example 3:\n        Input: [7]\n        Output:\n            [7]\n")
    assert examples(doc, signature="arr, k=1") == [("f([-3, -4, 5], 3)", "[-4, -3, 5]"), ("f([2], 1)", "[2]"),
                                                   ("f([7])", "[7]")]
    # `name : value` lines; a shown name may carry a prefix (bucket_capacity for the parameter capacity)
    doc = "Input:\n            grid : [[0, 1]]\n            bucket_capacity : 1\n        Output: 6"
    assert examples(doc, signature="grid, capacity") == [("f([[0, 1]], 1)", "6")]
    assert examples(doc, signature="grid, k") == []


def test_for_assignments_the_output_should_be():
    doc = ('    For s = "abcde", c = "ae", the result should be (\'bcd\',False)\n'
           '    For c = "b", s = "x" the output should be 1.\n'
           '    For s = "z", the sum of digits will be 1 the output should be "1".')
    assert examples(doc, signature="s, c='q'") == [("f('abcde', 'ae')", "('bcd', False)"), ("f('x', 'b')", "1"),
                                                   ("f('z')", "'1'")]


def test_calls_may_span_lines_and_lowercase_booleans_are_read():
    doc = "    f([\n      [1, 2],\n      [3]\n    ], 1) == [(0, 0)]\n    f(8, 2) => true"
    assert examples(doc, signature="x, y") == [("f([[1, 2], [3]], 1)", "[(0, 0)]"), ("f(8, 2)", "True")]


def test_only_the_entry_points_own_docstring_is_read_and_repeats_are_dropped():
    prompt = ('def helper(s):\n    """helper(1) == 2\n    f(9) == 9"""\n    return s\n\n\n'
              'def f(x):\n    """f(1) == 2\n    f(1) == 2\n    """\n')
    assert docstring_examples(prompt, "f") == [Example("f(1)", "2")]
    assert docstring_examples("x = 1\n", "") == []


def test_what_is_not_an_example():
    doc = ("Returns 3 values; f is called 2 times = 2.\n"
           "    f(n) -> f(n - 1) + f(n - 2)\n"          # a recurrence over a name
           "    f(0) == f(1)\n"                          # the expected value is not a literal
           "    g(1) ==> 2\n    assert list_f([1]) => [1]\n"  # another function
           "    f(a) => False\n"                         # an unquoted string
           '    f([1]) == ""aaa"\n'                     # a broken literal
           "    f(2) == 1 + 2 = 4\n"                     # arithmetic that does not add up
           "    f(3) returns 1 if x else 2\n"            # a condition, not a value
           "    f(4) == 1 + 2\n"                         # arithmetic without its result
           "    >>> print(f(5))\n    abc\n"              # printed text
           "    >>> f(6) [0, 1]\n"                       # `f(6)[0, 1]`: a subscript, not an example
           "    >>> x = f(7)\n    >>> f(x)\n    3\n"     # statements and names")
           "    Input: y = 5\n    Output: 3")           # a name that is not a parameter
    assert examples(doc) == []


# ------------------------------------------------------------------------------------------------ as sandbox tests


def test_each_example_is_one_assertion_with_a_float_tolerance_and_the_reference():
    doc = "    >>> f(1)\n    2\n    >>> f(0)\n\n    f(2) == (1.5, [0.25])\n    f(3) -> {'a': 1}"
    reference = "def f(x):\n    return x\n"
    tests = public_tests(problem(doc, reference))
    assert isinstance(tests, AssertionTests) and tests.reference_solution == reference
    assert tests.assertions == ["assert f(1) == 2", "assert f(0) is None", "assert _public_close(f(2), (1.5, [0.25]))",
                                "assert f(3) == {'a': 1}"]
    namespace: dict = {}
    exec(tests.setup_code, namespace)
    close = namespace["_public_close"]
    assert close((1.5 + 1e-9, [0.25]), (1.5, [0.25])) and close(3, 3.0) and close({"a": 1.0}, {"a": 1})
    assert not close([1.5, [0.25]], (1.5, [0.25])) and not close(1.51, 1.5) and not close("1.5", 1.5)
    assert public_tests(problem("Adds one.")) is None and public_inputs(problem("Adds one.")) is None
    assert public_inputs(problem(doc)) == ["f(1)", "f(0)", "f(2)", "f(3)"]


def test_assertions_the_prompt_shows_are_the_public_tests():
    prompt = '"""\nWrite a function.\nassert math.isclose(area(2), 12.56, rel_tol=0.01)\n"""\n'
    p = Problem(task_id="Mbpp/1", prompt=prompt, entry_point="area", reference_solution="def area(r): ...",
                tests=AssertionTests(assertions=["assert area(1) > 3", "assert area(2) > 12"]))
    tests = public_tests(p)
    assert tests.assertions == ["assert math.isclose(area(2), 12.56, rel_tol=0.01)"]
    assert tests.setup_code == "import math\n" and public_inputs(p) == ["area(2)"]
    google = p.model_copy(update={"entry_point": "", "prompt": '"""\nassert set(f((1, 2))) == {1}\n"""\n'})
    assert public_tests(google).assertions == ["assert set(f((1, 2))) == {1}"]
    assert public_inputs(google) == ["f((1, 2))"]


def test_a_problems_own_public_tests_come_first_and_other_languages_show_none():
    own = StdioTests(cases=[{"input": "1\n", "output": "2\n"}])
    p = problem("f(1) == 2").model_copy(update={"public_tests": own})
    assert public_tests(p) is own and public_inputs(p) == ["1\n"]
    assert public_tests(problem("f(1) == 2").model_copy(update={"language": "cpp"})) is None


def test_a_problem_without_public_tests_serializes_and_hashes_as_before():
    p = problem("f(1) == 2")
    assert "public_tests" not in p.model_dump_json() and "public_tests" not in p.model_dump()
    row = json.loads(p.model_dump_json())
    with_public = Problem.model_validate({**row, "public_tests": {"kind": "stdio", "cases": [{"output": "1"}]}})
    assert json.loads(with_public.model_dump_json())["public_tests"]["cases"] == [{"input": "", "output": "1"}]
    assert Problem.model_validate(json.loads(with_public.model_dump_json())) == with_public


def test_stdio_loaders_keep_only_the_public_cases(box):
    lcb = load_problems("stdio", FIXTURES / "livecodebench.jsonl")["abc000_a"]
    assert [c.input for c in lcb.tests.cases] == ["1 2\n", "10 20\n", "-5 5\n"]  # public + private
    assert [(c.input, c.output) for c in public_tests(lcb).cases] == [("1 2\n", "3\n")]
    assert public_inputs(lcb) == ["1 2\n"]
    cc = load_problems("stdio", FIXTURES / "codecontests.jsonl")["1000_A. Sum of digits"]
    assert len(cc.tests.cases) == 4 and [c.input for c in public_tests(cc).cases] == ["123\n"]
    assert all(p.public_tests is None for p in load_problems("stdio", FIXTURES / "taco.jsonl").values())
    program = "a, b = map(int, input().split())\nprint(a + b)\n"
    result = box.run(build_request(lcb.model_copy(update={"tests": public_tests(lcb)}), program, 10.0, 1024))
    assert result.passed and len(result.tests) == 1


# ------------------------------------------------------------------------------------------------ the real datasets


def check_canonical_solutions_pass(box, dataset: str, floor: int, failing: set[str] = frozenset()) -> None:
    problems = load_problems(dataset)
    ran = run_public(box, problems)
    print(f"{dataset}: {len(ran)} of {len(problems)} tasks show public tests, "
          f"{sum(len(t.assertions) for t, _ in ran.values())} tests")
    assert len(ran) >= floor
    for task_id, (tests, result) in ran.items():
        assert len(result.tests) == len(tests.assertions), task_id  # one verdict per example
        if task_id in failing:
            assert not result.passed and "only accept plain data" in result.error, task_id
            continue
        failed = [(a, v.error) for a, v in zip(tests.assertions, result.tests) if not v.passed]
        assert result.passed and not failed, (task_id, result.status, result.error, failed)
        assert result.judged_by == "replay", task_id
        for assertion in tests.assertions:
            ast.parse(assertion)


def test_every_humaneval_canonical_solution_passes_all_its_public_tests(box):
    check_canonical_solutions_pass(box, "humaneval", HUMANEVAL_FLOOR)


def test_every_humaneval_plus_canonical_solution_passes_all_its_public_tests(box):
    check_canonical_solutions_pass(box, "humaneval+", HUMANEVAL_FLOOR)


def test_every_mbpp_plus_canonical_solution_passes_the_assertion_its_prompt_shows(box):
    check_canonical_solutions_pass(box, "mbpp+", MBPP_PLUS_FLOOR, NOT_PLAIN_ANSWERS)


def test_the_errata_are_exactly_the_examples_the_canonical_solutions_fail(box):
    problems = load_problems("humaneval")
    tasks = sorted({task for task, _ in ERRATA})
    unlisted = {t: problems[t].model_copy(update={"task_id": "unlisted"}) for t in tasks}  # no errata dropped
    ran = run_public(box, unlisted)
    failing = set()
    for task_id, (tests, result) in ran.items():
        calls = [e.call for e in docstring_examples(problems[task_id].prompt, problems[task_id].entry_point)]
        assert len(calls) == len(tests.assertions) == len(result.tests)
        failing |= {(task_id, call) for call, verdict in zip(calls, result.tests) if not verdict.passed}
    assert failing == ERRATA


def test_wrong_programs_fail_some_public_tests(box):
    problems = load_problems("humaneval")
    chosen = {t: problems[t] for t in ("HumanEval/0", "HumanEval/53")}
    programs = {"HumanEval/0": chosen["HumanEval/0"].prompt + "    return False\n",
                "HumanEval/53": chosen["HumanEval/53"].prompt + "    return x - y\n"}
    ran = run_public(box, chosen, programs)
    assert [v.passed for v in ran["HumanEval/0"][1].tests] == [True, False]  # score 1/2
    assert [v.passed for v in ran["HumanEval/53"][1].tests] == [False, False]
    assert not any(result.passed for _, result in ran.values())
