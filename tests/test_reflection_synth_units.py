"""The pure pieces of reflection-sequence synthesis (raylib/synth/reflection_seq.py): execution blocks from sandbox
results rows, code read out of answers, the chat of each round and the finished sample, rendered by hand."""

from __future__ import annotations

import pytest

from raylib.data.problems import Problem
from raylib.synth.prompts import load_prompts
from raylib.synth.reflection_seq import Turn, build_sample, execution_text, problem_text, read_answer, round_messages
from raylib.train.data.reflection import render_reflection

ADD = Problem(task_id="demo/add", prompt='def add(a, b):\n    """Return a plus b."""\n', entry_point="add",
              tests={"kind": "assertions", "assertions": ["assert add(2, 3) == 5", "assert add(0, 0) == 0"]})
HUMANEVAL = Problem(task_id="HumanEval/2", prompt="from typing import List\n\n\ndef half(x: float) -> float:\n"
                    '    """Half of x."""\n', completion_prefix="from typing import List\n\n\ndef half(x: float) -> "
                    'float:\n    """Half of x."""\n', entry_point="half",
                    tests={"kind": "function", "entry_point": "half",
                           "test_code": "def check(candidate):\n    assert candidate(3.0) == 1.5\n"})
STDIO = Problem(task_id="sum", prompt="Read two integers and print their sum.",
                tests={"kind": "stdio", "cases": [{"input": "1 2\n", "output": "3\n"}, {"input": "5 5\n",
                                                                                          "output": "10\n"}]})
PROMPTS = load_prompts("reflection")


def row(passed: bool, status: str, tests: list[dict], error: str = "") -> dict:
    return {"passed": passed, "status": status, "error": error, "tests": tests}


def test_execution_block_names_the_failed_assertion_and_what_it_expected():
    tests = [{"name": "assert add(2, 3) == 5", "passed": False, "status": "failed",
              "error": "AssertionError (tests.py:1: assert add(2, 3) == 5)"},
             {"name": "assert add(0, 0) == 0", "passed": True, "status": "passed", "error": ""}]
    assert execution_text(row(False, "failed", tests), ADD) == (
        "1 of 2 tests failed.\n- `assert add(2, 3) == 5` failed: AssertionError (expected `add(2, 3)` to be `5`)")
    tests[0]["actual"] = "-1"  # a verdict that carries what the program returned shows it
    assert execution_text(row(False, "failed", tests), ADD).endswith("(expected `add(2, 3)` to be `5`, got `-1`)")


def test_execution_block_of_humaneval_check_names_the_function_not_candidate():
    error = "TypeError: unsupported operand (tests.py:2: assert candidate(3.0) == 1.5)"
    tests = [{"name": "check", "passed": False, "status": "runtime-error", "error": error}]
    assert execution_text(row(False, "runtime-error", tests, error), HUMANEVAL) == (
        "The run ended with runtime-error.\n- `assert half(3.0) == 1.5` raised an error: TypeError: unsupported "
        "operand")
    error = "AssertionError (tests.py:2: assert candidate(3.0) == 1.5)"
    tests = [{"name": "check", "passed": False, "status": "failed", "error": error}]
    assert execution_text(row(False, "failed", tests, error), HUMANEVAL) == (
        "The tests failed.\n- `assert half(3.0) == 1.5` failed: AssertionError (expected `half(3.0)` to be `1.5`)")


def test_execution_block_of_a_stdio_case_shows_input_expected_and_got():
    tests = [{"name": "case 0", "passed": True, "status": "passed", "error": ""},
             {"name": "case 1", "passed": False, "status": "failed", "error": "wrong answer", "actual": "55\n"}]
    assert execution_text(row(False, "failed", tests, "wrong answer"), STDIO) == (
        "1 of 2 tests failed.\n- case 1 failed: wrong answer\n  input:\n5 5\n  expected output:\n10\n  got:\n55")
    tests[1].pop("actual")  # results rows without the output: no "got"
    assert "got" not in execution_text(row(False, "failed", tests), STDIO)


def test_execution_block_of_compile_errors_timeouts_and_passes():
    error = "SyntaxError: invalid syntax (solution.py:2: return (a +)"
    not_run = [{"name": "check", "passed": False, "status": "compile-error", "error": "not run"}]
    assert execution_text(row(False, "compile-error", not_run, error), HUMANEVAL) == \
        "The program does not compile:\n" + error
    limit = "wall-clock limit of 1.0s exceeded"
    tests = [{"name": f"case {i}", "passed": False, "status": "timeout", "error": limit} for i in range(2)]
    assert execution_text(row(False, "timeout", tests, limit), STDIO).splitlines()[:2] == [
        "2 of 2 tests failed.", f"- case 0 timed out: {limit}"]
    passing = [{"name": "assert add(2, 3) == 5", "passed": True, "status": "passed", "error": ""}] * 2
    assert execution_text(row(True, "passed", passing), ADD) == "All 2 tests passed."
    assert execution_text(row(True, "passed", passing[:1]), HUMANEVAL) == "The tests passed."


def test_execution_block_of_a_leetcode_case_is_the_call_with_expected_and_got():
    from raylib.data.problems import load_problems

    two_sum = load_problems("stdio", "tests/fixtures/livecodebench.jsonl")["1"]
    encoded = two_sum.tests.inputs[0]
    tests = [{"name": "case 0", "passed": False, "status": "failed",
              "error": f"input 0 {encoded}: expected [0, 1], got [1, 0]"},
             {"name": "case 1", "passed": False, "status": "runtime-error",
              "error": f"input 1 {two_sum.tests.inputs[1]}: KeyError: 3"},
             {"name": "case 2", "passed": True, "status": "passed", "error": ""}]
    assert execution_text(row(False, "failed", tests), two_sum) == (
        "2 of 3 tests failed.\n"
        "- `twoSum([2, 7, 11, 15], 9)` failed: expected `[0, 1]`, got `[1, 0]`\n"
        "- `twoSum([3, 2, 4], 6)` raised an error: KeyError: 3 (expected `[1, 2]`)")


def test_execution_block_shows_three_failures_and_is_bounded():
    tests = [{"name": f"assert add({i}, 1) == {i + 1}", "passed": False, "status": "failed",
              "error": "AssertionError " + "x" * 400} for i in range(5)]
    text = execution_text(row(False, "failed", tests), ADD)
    assert text.startswith("5 of 5 tests failed.") and text.count("\n- ") == 3
    assert text.endswith("(and 2 more failed tests)")
    assert ": " + ("AssertionError " + "x" * 400)[:300] + "... (expected" in text  # an error is cut at 300 chars
    short = execution_text(row(False, "failed", tests), ADD, max_chars=200)
    assert len(short) <= 200 and short.endswith("\n... (cut)")


def test_code_is_read_out_of_answers_with_the_prose_around_it():
    answer = "It must add.\n\n```python\ndef add(a, b):\n    return a + b\n```\nThat is all."
    assert read_answer(answer, ADD) == ("It must add.\n\nThat is all.", "def add(a, b):\n    return a + b\n")
    # a reflection that quotes the wrong line in a fence of its own, then gives the program: both texts are prose
    quoted = "The bug:\n```python\nreturn a - b\n```\nIt subtracts.\n```python\ndef add(a, b):\n    return a + b\n```"
    assert read_answer(quoted, ADD) == ("The bug:\n```python\nreturn a - b\n```\nIt subtracts.",
                                        "def add(a, b):\n    return a + b\n")
    after = "```python\ndef add(a, b):\n    return a + b\n```\nI subtracted before; now it adds."
    assert read_answer(after, ADD)[0] == "I subtracted before; now it adds."
    # a rewritten function gets the prompt's imports; a body alone continues the prompt
    assert read_answer("```python\ndef half(x):\n    return x / 2\n```", HUMANEVAL) == \
        ("", "from typing import List\ndef half(x):\n    return x / 2\n")
    body = read_answer("```python\n    return x / 2\n```", HUMANEVAL)[1]
    assert body == HUMANEVAL.completion_prefix + "    return x / 2\n"
    # bare code without a fence counts when it defines something; prose alone (even one that parses) does not
    assert read_answer("Fixed:\ndef add(a, b):\n    return a + b\n", ADD) == \
        ("Fixed:", "def add(a, b):\n    return a + b\n")
    assert read_answer("Sorry", ADD) == ("Sorry", "")
    assert read_answer("I cannot write this one.", ADD) == ("I cannot write this one.", "")
    assert read_answer("Here:\n```python\n```\n", ADD) == ("Here:", "")


def turn(program: str, passed: bool, prose: str = "", execution: str = "") -> Turn:
    answer = (prose + "\n" if prose else "") + f"```python\n{program}```"
    return Turn(answer, prose, program, execution or ("The tests passed." if passed else "The tests failed."),
                passed, "passed" if passed else "failed")


WRONG, RIGHT = "def add(a, b):\n    return a - b\n", "def add(a, b):\n    return a + b\n"


def test_each_round_repeats_the_answers_and_carries_the_execution_blocks():
    first = round_messages(PROMPTS, ADD, [])
    assert [m["role"] for m in first] == ["system", "user"]
    assert first[1]["content"] == problem_text(ADD) + "\n\nBefore the code, explain your approach in a few sentences."
    failed = turn(WRONG, False, "I subtract.", "1 of 2 tests failed.")
    third = round_messages(PROMPTS, ADD, [failed, failed])
    assert [m["role"] for m in third] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert third[2]["content"] == failed.answer
    assert third[3]["content"] == PROMPTS.fill("reflect", execution="1 of 2 tests failed.", language="python")
    assert third[3]["content"].startswith("Your program was run on the tests. Execution result:\n1 of 2 tests failed.")
    assert "one ```python code block" in third[3]["content"]


def test_a_sample_renders_as_reflectioncoder_does():
    turns = [turn(WRONG, False, "I subtract.", "1 of 2 tests failed."), turn(RIGHT, True, "It must add.")]
    sample = build_sample(ADD, turns, PROMPTS, model="m", dataset="jsonl")
    assert {k: sample[k] for k in ("task_id", "type", "rounds", "provenance")} == {
        "task_id": "demo/add", "type": "reflection", "rounds": 2,
        "provenance": {"method": "reflection", "dataset": "jsonl", "model": "m", "prompts": "reflection@1",
                       "statuses": ["failed", "passed"]}}
    task = PROMPTS.fill("code", problem=problem_text(ADD))
    final = PROMPTS.fill("final", problem=problem_text(ADD))
    assert final.startswith("Now write the final solution in one go") and final.endswith(ADD.prompt.strip())
    assert render_reflection(sample["messages"]) == (
        f"<|user|><|text|>{task}<|endofblock|><|endofmessage|>"
        "<|assistant|><|text|>I subtract.<|endofblock|>"
        f"<|code|>{WRONG}<|endofblock|><|execution|>1 of 2 tests failed.<|endofblock|>"
        "<|text|>It must add.<|endofblock|>"
        f"<|code|>{RIGHT}<|endofblock|><|execution|>The tests passed.<|endofblock|><|endofmessage|>"
        f"<|user|><|text|>{final}<|endofblock|><|endofmessage|>"
        f"<|assistant|><|code|>{RIGHT}<|endofblock|><|endofmessage|>")
    # a first-try pass (kept only when asked) has no text block without prose; a sequence must end passing
    one = build_sample(ADD, [turn(RIGHT, True)], PROMPTS, model="m", dataset="jsonl")
    assert [b["type"] for b in one["messages"][1]["content"]] == ["code", "execution"]
    with pytest.raises(ValueError, match="end in a passing program"):
        build_sample(ADD, turns[:1], PROMPTS, model="m", dataset="jsonl")


def test_a_prompt_file_without_the_execution_placeholder_is_refused(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: reflection\nversion: 2\nsystem: ''\ncode: '{problem}'\nreflect: 'Fix it.'\n"
                    "final: '{problem}'\n")
    with pytest.raises(ValueError, match=r"text 'reflect' lacks placeholder\(s\) \['\{execution\}', "
                                         r"'\{language\}'\]"):
        load_prompts("reflection", path)
