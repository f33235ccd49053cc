"""How replayed Python tests behave: the judge runs the dataset's tests on the program's plain-data answers, and the
verdicts are those the tests would give with the program in their process (the openai harness's)."""

from __future__ import annotations

import pytest

from sandbox import AssertionTests, ExecRequest, FunctionTests, Sandbox, SandboxConfig


@pytest.fixture(scope="module")
def box():
    with Sandbox(SandboxConfig(workers=1)) as sandbox:
        yield sandbox


def _run(box, code: str, test: str, reference: str, entry: str = "f"):
    return box.run(ExecRequest(code=code, tests=FunctionTests(test_code=test, entry_point=entry,
                                                              reference_solution=reference)))


def test_a_call_whose_arguments_depend_on_an_earlier_answer_is_recorded_again_with_that_answer(box):
    # The second call's argument is the first answer. The reference answers 2 then 3; this program answers 5 (and so
    # is asked f(5), which the recording does not have), then 6: the tests pass, as they do in the openai harness.
    test = "def check(f):\n    x = f(1)\n    assert f(x) - x == 1\n"
    reference = "def f(n):\n    return n + 1\n"
    different_but_right = "def f(n):\n    return 5 if n == 1 else n + 1\n"
    wrong = "def f(n):\n    return 5 if n == 1 else n\n"
    right = _run(box, different_but_right, test, reference)
    assert right.passed and right.judged_by == "replay"
    failed = _run(box, wrong, test, reference)
    assert failed.status == "failed" and failed.judged_by == "replay"


def test_arguments_the_program_changes_in_place_are_changed_for_the_tests_too(box):
    test = "def check(f):\n    xs = [3, 1, 2]\n    assert f(xs) is None\n    assert xs == [1, 2, 3]\n"
    reference = "def f(xs):\n    xs.sort()\n"
    assert _run(box, "def f(xs):\n    xs[:] = sorted(xs)\n", test, reference).passed
    assert not _run(box, "def f(xs):\n    return None\n", test, reference).passed


def test_an_exception_the_tests_expect_is_raised_in_the_tests_again(box):
    test = ("def check(f):\n    try:\n        f(-1)\n    except ValueError:\n        pass\n    else:\n"
            "        raise AssertionError('no ValueError')\n    assert f(4) == 2\n")
    reference = "def f(n):\n    if n < 0:\n        raise ValueError(n)\n    return int(n ** 0.5)\n"
    assert _run(box, "import math\ndef f(n):\n    return math.isqrt(n)\n", test, reference).passed  # ValueError too
    assert not _run(box, "def f(n):\n    return int(abs(n) ** 0.5)\n", test, reference).passed


def test_values_keep_their_types_across_the_judge(box):
    test = ("import math\ndef check(f):\n    r = f()\n"
            "    assert type(r[0]) is tuple and type(r[1]) is set and r[2] is None\n"
            "    assert math.isnan(r[3]) and r[4] == float('inf') and r[5] == 2 ** 3000 and r[6] == b'\\x00'\n")
    program = "def f():\n    return [(1, 2), {3}, None, float('nan'), float('inf'), 2 ** 3000, b'\\x00']\n"
    assert _run(box, program, test, program).passed


def test_a_value_that_is_not_plain_data_fails_the_test_that_receives_it(box):
    test = "def check(f):\n    assert f() == 3\n"
    result = _run(box, "import fractions\ndef f():\n    return fractions.Fraction(3)\n", test,
                  "def f():\n    return 3\n")
    assert result.status == "failed" and result.judged_by == "replay"
    assert "returned a value of type fractions.Fraction; tests only accept plain data" in result.error


def test_assertion_tests_call_every_function_of_the_program_they_name(box):
    tests = AssertionTests(assertions=["assert area(2, 3) == 6", "assert perimeter(2, 3) == 10",
                                       "assert area(perimeter(1, 1), 1) == 4"],
                           reference_solution="def area(a, b):\n    return a * b\n"
                                              "def perimeter(a, b):\n    return 2 * (a + b)\n")
    good = box.run(ExecRequest(code="def area(a, b):\n    return b * a\n"
                                    "def perimeter(a, b):\n    return a + a + b + b\n",
                               tests=tests))
    half = box.run(ExecRequest(code="def area(a, b):\n    return a * b\ndef perimeter(a, b):\n    return a + b\n",
                               tests=tests))
    assert good.passed and good.judged_by == "replay"
    assert [t.passed for t in half.tests] == [True, False, False]


def test_tests_that_use_a_class_of_the_program_are_judged_in_test_code_mode_and_say_so(box):
    tests = AssertionTests(assertions=["assert Pair(1, 2).total() == 3"],
                           reference_solution="class Pair:\n    def __init__(s, a, b):\n        s.a, s.b = a, b\n"
                                              "    def total(s):\n        return s.a + s.b\n")
    result = box.run(ExecRequest(code="class Pair:\n    def __init__(s, a, b):\n        s.t = a + b\n"
                                      "    def total(s):\n        return s.t\n", tests=tests))
    assert result.passed and result.judged_by == "test-code" and "class Pair" in result.judge_note


def test_random_inputs_are_drawn_the_same_in_the_recording_and_the_replay(box):
    test = ("import random\ndef check(f):\n    for _ in range(50):\n        n = random.randint(0, 10 ** 6)\n"
            "        assert f(n) == n * 2\n")
    result = _run(box, "def f(n):\n    return n + n\n", test, "def f(n):\n    return 2 * n\n")
    assert result.passed and result.judged_by == "replay"


def test_a_program_that_does_not_define_the_function_fails_with_a_name_error(box):
    result = _run(box, "def g(n):\n    return n\n", "def check(f):\n    assert f(1) == 1\n",
                  "def f(n):\n    return n\n")
    assert result.status == "runtime-error" and "NameError" in result.error
