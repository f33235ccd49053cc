"""HumanEval+ and MBPP+ as EvalPlus judges them, on the official releases shipped in raylib/data/evalplus/.

The loaders turn each task into call tests (sandbox.schema.CallTests): the task's base and plus inputs with EvalPlus's
input types, tolerance and special oracle; the judge's comparison of one answer is sandbox.judge.compare.answer_matches.
"""

from __future__ import annotations

import math

import pytest

from raylib.data.problems import load_problems, mbpp_plus_arguments
from raylib.evaluate.requests import build_request
from sandbox import CallTests, ExecRequest, Limits, Sandbox, SandboxConfig
from sandbox.inside import plain
from sandbox.judge.compare import NOT_PLAIN, answer_matches


@pytest.fixture(scope="module")
def box():
    with Sandbox(SandboxConfig(workers=2)) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def mbpp_plus():
    return load_problems("mbpp+")


@pytest.fixture(scope="module")
def humaneval_plus():
    return load_problems("humaneval+")


def test_the_official_releases_load_without_a_path(mbpp_plus, humaneval_plus):
    assert len(humaneval_plus) == 164 and len(mbpp_plus) == 378
    tests = humaneval_plus["HumanEval/0"].tests
    assert isinstance(tests, CallTests) and [name for name, _ in tests.groups] == ["base", "plus"]
    assert sum(size for _, size in tests.groups) == len(tests.inputs)
    base = load_problems("mbpp")  # MBPP without a path: MBPP+'s base tests, as evalplus's "mbpp"
    assert len(base) == 378 and base["Mbpp/2"].tests.kind == "assertions"


def test_mbpp_plus_inputs_get_the_types_evalplus_gives_them(mbpp_plus):
    # Mbpp/2 takes tuples (stored as JSON lists), Mbpp/124 a float and a complex, Mbpp/115 sets ({} for an empty one)
    args = plain.decode(mbpp_plus["Mbpp/2"].tests.inputs[0])
    assert args == [(3, 4, 5, 6), (5, 7, 4, 10)] and all(type(a) is tuple for a in args)
    assert mbpp_plus_arguments("Mbpp/124", [[1, "1+2j"]]) == [[1.0, 1 + 2j]]
    assert mbpp_plus_arguments("Mbpp/115", [[[[1, 2], []]]]) == [[[{1, 2}, {}]]]
    assert mbpp_plus_arguments("Mbpp/580", [[[1, [2, 3]]]]) == [[(1, (2, 3))]]
    assert mbpp_plus_arguments("Mbpp/999", [[[1]]]) == [[[1]]]  # every other task: as stored


def test_special_oracles_are_assigned_by_entry_point(mbpp_plus, humaneval_plus):
    oracles = {p.entry_point: p.tests.oracle for p in mbpp_plus.values() if p.tests.oracle != "equal"}
    assert oracles["similar_elements"] == "set" and oracles["check_str"] == "not-none"
    assert oracles["surface_Area"] == "surface-area" and oracles["digit_distance_nums"] == "digit-distance"
    assert humaneval_plus["HumanEval/32"].tests.oracle == "poly-root"
    assert mbpp_plus["Mbpp/56"].entry_point == "check"  # a task whose function is named like a harness's


def test_one_answer_is_compared_as_evalplus_compares_it():
    assert answer_matches(3, 3, [], 0.0, "equal") == (True, 0.0)
    assert answer_matches(1.0, 1, [], 0.0, "equal")[0]  # 1.0 == 1
    assert not answer_matches([1, 2], (1, 2), [], 0.0, "equal")[0]  # a list is not a tuple
    # a float expected answer switches on atol 1e-6 (and it stays on for later inputs); rtol is 1e-7
    assert answer_matches(0.1 + 1e-7, 0.1, [], 0.0, "equal") == (True, 1e-6)
    assert not answer_matches(0.1 + 1e-5, 0.1, [], 0.0, "equal")[0]
    assert answer_matches(1e9 + 50, 1e9, [], 1e-6, "equal")[0]  # |d| = 50 <= 1e-6 + 1e-7 * 1e9 = 100
    assert not answer_matches(1, 1.5, [], 1e-6, "equal")[0]  # not equal, and an int is not a float
    assert not answer_matches(float("nan"), float("nan"), [], 1e-6, "equal")[0]  # allclose: nan is not close to nan
    assert answer_matches([1.0, 2.0 + 1e-8], [1.0, 2.0], [], 0.0, "equal")[0]
    assert not answer_matches([1.0], [1.0, 2.0], [], 1e-6, "equal")[0]
    assert answer_matches([3, 1], [1, 3], [], 0.0, "set")[0] and not answer_matches(None, [1], [], 0.0, "set")[0]
    assert answer_matches(NOT_PLAIN, True, [], 0.0, "not-none")[0]  # a re.Match is "not None"
    assert (not answer_matches(None, True, [], 0.0, "not-none")[0]
            and answer_matches(False, False, [], 0.0, "not-none")[0])
    assert answer_matches(0, 5, [], 0.0, "sum-div")[0] and answer_matches(7, 5, [], 0.0, "always")[0]
    # a root of 1 + 2x: -0.5 within atol
    assert answer_matches(-0.5 + 1e-6, -0.5, [[1, 2]], 1e-4, "poly-root")[0]
    assert not answer_matches(0.0, -0.5, [[1, 2]], 1e-4, "poly-root")[0]
    assert not answer_matches(NOT_PLAIN, 3, [], 0.0, "equal")[0]


def test_a_program_right_on_the_base_inputs_but_wrong_on_a_plus_input_fails_plus_only(box, humaneval_plus):
    p = humaneval_plus["HumanEval/53"]  # add(x, y); plus inputs include large numbers
    wrong = p.prompt + "    return (x + y) % 10**9 if abs(x) < 1000 else x + y + 1\n"
    result = box.run(build_request(p, wrong, 10.0, 1024))
    assert result.judged_by == "replay" and not result.passed
    assert [(t.name, t.passed) for t in result.tests] == [("base", True), ("plus", False)]
    assert "expected" in result.tests[1].error and "got" in result.tests[1].error


def test_each_call_gets_its_own_time_limit(box):
    # Reference answers instantly; the program sleeps 0.6 s per call: each call is under the 1 s floor, the whole
    # run (3 calls, 1.8 s) is not - EvalPlus's per-input limits pass it, a limit of 1 s for the whole run would not.
    reference = "def f(x):\n    return x\n"
    slow = "import time\ndef f(x):\n    time.sleep(0.6)\n    return x\n"
    tests = CallTests(entry_point="f", inputs=[plain.encode([i]) for i in range(3)], reference_solution=reference)
    limits = Limits(wall_time_s=1.0, cpu_time_s=5.0, call_time_floor_s=1.0)
    assert box.run(ExecRequest(code=slow, tests=tests, limits=limits)).passed
    slower = slow.replace("0.6", "1.5")
    result = box.run(ExecRequest(code=slower, tests=tests, limits=limits))
    assert result.status == "timeout" and "call 0 exceeded its time limit" in result.error


def test_expected_answers_can_be_given_instead_of_a_reference(box):
    tests = CallTests(entry_point="area", inputs=[plain.encode([2.0])], expected=[plain.encode(math.pi * 4)])
    good = box.run(ExecRequest(code="import math\ndef area(r):\n    return math.pi * r * r\n", tests=tests))
    bad = box.run(ExecRequest(code="def area(r):\n    return 3.14 * r * r\n", tests=tests))
    assert good.passed and not bad.passed and bad.judged_by == "replay"


def test_canonical_solutions_pass_and_empty_ones_fail_on_a_sample_of_tasks(box, mbpp_plus, humaneval_plus):
    tasks = [humaneval_plus[t] for t in ("HumanEval/0", "HumanEval/32", "HumanEval/53")] + \
            [mbpp_plus[t] for t in ("Mbpp/2", "Mbpp/56", "Mbpp/124", "Mbpp/252", "Mbpp/581", "Mbpp/722")]
    good = box.run_batch([build_request(p, p.reference_solution, 10.0, 1024) for p in tasks])
    assert {p.task_id: r.status for p, r in zip(tasks, good)} == {p.task_id: "passed" for p in tasks}
    empty = box.run_batch([build_request(p, f"def {p.entry_point}(*args):\n    pass\n", 10.0, 1024) for p in tasks
                           if p.tests.oracle != "always"])
    assert not any(r.passed for r in empty)
