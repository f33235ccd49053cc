"""Sample files (openai human-eval / EvalPlus formats): assembling programs, sample ids, code extraction, and one
clear error per bad line (file, line, problem) - or skipping them with skip_invalid."""

from __future__ import annotations

import json

import pytest

from raylib.data.problems import load_problems
from raylib.data.samples import extract_code, read_samples, reference_samples
from raylib.files import DataError, write_records


@pytest.fixture(scope="module")
def problems():
    return load_problems("humaneval")


def write_lines(path, lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_completion_is_appended_to_the_prompt_and_solution_is_the_whole_program(tmp_path, problems):
    path = write_lines(tmp_path / "s.jsonl", [
        {"task_id": "HumanEval/0", "completion": "    return True\n"},
        {"task_id": "HumanEval/1", "solution": "def separate_paren_groups(s):\n    return []\n", "extra": 1},
        {"task_id": "HumanEval/0", "completion": "    return False\n"},
    ])
    samples, skipped = read_samples(path, problems)
    assert skipped == []
    assert samples[0].program == problems["HumanEval/0"].prompt + "    return True\n"
    assert samples[1].program == "def separate_paren_groups(s):\n    return []\n"
    # sample_id: the index among the task's own lines (the openai harness's completion_id)
    assert [(s.task_id, s.sample_id, s.line) for s in samples] == [("HumanEval/0", 0, 1), ("HumanEval/1", 0, 2),
                                                                    ("HumanEval/0", 1, 3)]


@pytest.mark.parametrize("line, message", [
    ('{"task_id": "HumanEval/0", "completion": ', r"s.jsonl:2: malformed JSON"),
    ('{"task_id": "HumanEval/9999", "completion": "x"}', r"s.jsonl:2: unknown task_id 'HumanEval/9999'"),
    ('{"task_id": "HumanEval/3"}', r"s.jsonl:2: sample for HumanEval/3 has neither 'completion' nor 'solution'"),
    ('{"completion": "x"}', r"s.jsonl:2: sample has no task_id"),
    ('{"task_id": "HumanEval/3", "completion": 5}',
     r"s.jsonl:2: sample for HumanEval/3: 'completion' must be a string"),
    ('{"task_id": 0, "completion": "x"}', r"s.jsonl:2: task_id must be a string like 'HumanEval/0', got int 0"),
    ('{"task_id": "HumanEval/3", "solution": "caf\\ud800"}',
     r"s.jsonl:2: sample for HumanEval/3: 'solution' is not valid Unicode"),
])
def test_each_bad_line_is_one_error_naming_file_line_and_problem(tmp_path, problems, line, message):
    path = write_lines(tmp_path / "s.jsonl", ['{"task_id": "HumanEval/0", "completion": "    return 1\\n"}', line,
                                              '{"task_id": "HumanEval/2", "completion": "    return 1\\n"}'])
    with pytest.raises(DataError, match=message):
        read_samples(path, problems)
    samples, skipped = read_samples(path, problems, skip_invalid=True)
    assert [s.task_id for s in samples] == ["HumanEval/0", "HumanEval/2"]
    assert len(skipped) == 1 and skipped[0].line == 2 and skipped[0].path == str(path)


def test_an_empty_answer_is_a_sample_that_will_fail_not_an_invalid_line(tmp_path, problems):
    path = write_lines(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "solution": ""},
                                              {"task_id": "HumanEval/0", "completion": ""}])
    samples, skipped = read_samples(path, problems)
    assert skipped == [] and [(s.sample_id, s.program) for s in samples] == [(0, ""),
                                                                              (1, problems["HumanEval/0"].prompt)]


def test_missing_and_empty_sample_files_are_errors(tmp_path, problems):
    with pytest.raises(DataError, match=r"nope.jsonl: file not found"):
        read_samples(tmp_path / "nope.jsonl", problems, skip_invalid=True)
    with pytest.raises(DataError, match=r"empty.jsonl: no samples"):
        read_samples(write_lines(tmp_path / "empty.jsonl", [""]), problems)


def test_extract_code_takes_the_fenced_block_that_defines_the_entry_point():
    answer = ("Sure! First a helper:\n```python\nimport math\n```\nand the function:\n```python\n"
              "def f(x):\n    return math.sqrt(x)\n```\nHope this helps.")
    assert extract_code(answer, "python", "f") == "def f(x):\n    return math.sqrt(x)\n"
    assert extract_code("```\nprint(1)\n```") == "print(1)\n"
    assert extract_code("```python\ndef g():\n    return 2\n") == "def g():\n    return 2\n"  # unterminated fence
    assert extract_code("```cpp\nint f(){return 1;}\n```\n```python\nx = 1\n```", "cpp") == "int f(){return 1;}\n"


def test_extract_code_drops_stray_prose_around_bare_python():
    text = "Here is the solution.\ndef f(x):\n    return x + 1\nThis adds one to x."
    assert extract_code(text, "python", "f") == "def f(x):\n    return x + 1\n"
    assert extract_code("def f():\n    return 1\n") == "def f():\n    return 1\n"  # already code: unchanged


def test_extracted_chat_completion_defining_the_function_is_a_whole_program(tmp_path, problems):
    chat = "```python\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n    return False\n```"
    path = write_lines(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": chat},
                                              {"task_id": "HumanEval/0",
                                               "completion": "```python\n    return False\n```"}])
    whole, body = read_samples(path, problems, extract=True)[0]
    assert whole.program.startswith("from typing import List\n") and "```" not in whole.program
    assert whole.program.endswith("    return False\n") and problems["HumanEval/0"].prompt not in whole.program
    assert body.program == problems["HumanEval/0"].prompt + "    return False\n"


def test_reference_samples_round_trip_through_a_sample_file(tmp_path, problems):
    rows = reference_samples(problems, ("canonical", "wrong-result", "syntax-error"))
    assert len(rows) == 3 * 164 and rows[0]["variant"] == "canonical"
    samples, _ = read_samples(write_records(tmp_path / "s.jsonl", rows), problems)
    assert samples[0].program == problems["HumanEval/0"].reference_solution
    assert samples[1].program == problems["HumanEval/0"].prompt + "    return None\n"
