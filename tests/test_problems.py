"""Problem loaders: each public format read from a small fixture in that exact format (tests/fixtures/), and the
problems it yields actually run - reference solutions pass their tests in the sandbox, broken programs fail."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from raylib.data.problems import load_problems
from raylib.evaluate.requests import build_request
from raylib.files import DataError
from sandbox import Sandbox, SandboxConfig
from sandbox.inside import plain

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def box():
    with Sandbox(SandboxConfig(workers=2)) as sandbox:
        yield sandbox


def run_all(box, problems, programs: dict[str, str]):
    ids = list(programs)
    results = box.run_batch([build_request(problems[t], programs[t], 10.0, 1024) for t in ids])
    return {t: r for t, r in zip(ids, results)}


def references(problems):
    return {t: p.reference_solution for t, p in problems.items()}


def test_humaneval_ships_164_problems_whose_canonical_solutions_pass(box):
    problems = load_problems("humaneval")
    assert len(problems) == 164 and list(problems)[0] == "HumanEval/0"
    p = problems["HumanEval/0"]
    assert p.entry_point == "has_close_elements" and p.completion_prefix == p.prompt
    results = run_all(box, problems, references(problems))
    assert [t for t, r in results.items() if not r.passed] == []


def test_mbpp_google_format_uses_test_list_and_an_evalplus_style_prompt(box):
    problems = load_problems("mbpp", FIXTURES / "mbpp.jsonl")
    assert list(problems) == ["Mbpp/2", "Mbpp/3"]
    assert problems["Mbpp/3"].tests.assertions[1] == "assert is_not_prime(10) == True"
    assert problems["Mbpp/2"].prompt.startswith('"""\nWrite a function to find the shared elements')
    assert all(r.passed for r in run_all(box, problems, references(problems)).values())
    broken = run_all(box, problems, {"Mbpp/3": "def is_not_prime(n):\n    return False\n"})["Mbpp/3"]
    assert not broken.passed and [t.passed for t in broken.tests] == [True, False, False]


def test_mbpp_plus_checks_base_and_plus_inputs_against_the_canonical_solution(box, tmp_path):
    problems = load_problems("mbpp+", FIXTURES / "MbppPlus.jsonl")
    assert all(r.passed for r in run_all(box, problems, references(problems)).values())
    # Right on the base inputs, wrong on the plus input [[], [1]] (returns None for empty input): MBPP passes,
    # MBPP+ fails.
    program = "def similar_elements(a, b):\n    if not a:\n        return None\n    return tuple(set(a) & set(b))\n"
    assert not run_all(box, problems, {"Mbpp/2": program})["Mbpp/2"].passed
    base = load_problems("mbpp", FIXTURES / "MbppPlus.jsonl")
    assert run_all(box, base, {"Mbpp/2": program})["Mbpp/2"].passed
    # float outputs match within atol: a slightly different but close formula passes, a wrong one fails
    close = "import math\ndef circle_area(r):\n    return r * r * math.pi * (1 + 1e-12)\n"
    wrong = "def circle_area(r):\n    return 3.14 * r * r\n"
    verdicts = (run_all(box, problems, {"Mbpp/4": close})["Mbpp/4"].passed,
                run_all(box, problems, {"Mbpp/4": wrong})["Mbpp/4"].passed)
    assert verdicts == (True, False)
    # evalplus compares floats with a relative tolerance too (assert_allclose rtol 1e-7): large results differing in
    # the last bit pass; and inputs written as JSON Infinity reach the reference and the program as float('inf')
    rows = [json.loads(line) for line in (FIXTURES / "MbppPlus.jsonl").read_text().splitlines()]
    rows[1]["plus_input"] = [[123456.789], [float("inf")]]
    path = tmp_path / "MbppPlus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    plus = load_problems("mbpp+", path)
    reordered = "import math\ndef circle_area(r):\n    return r * r * math.pi\n"  # pi*r*r vs r*r*pi: last bit differs
    assert run_all(box, plus, references(plus))["Mbpp/4"].passed
    assert run_all(box, plus, {"Mbpp/4": reordered})["Mbpp/4"].passed


def test_humaneval_plus_adds_plus_inputs_to_the_prompt_plus_body_reference(box):
    problems = load_problems("humaneval+", FIXTURES / "HumanEvalPlus.jsonl")
    p = problems["HumanEval/53"]
    assert p.reference_solution == p.prompt + "    return x + y\n"
    assert run_all(box, problems, references(problems))["HumanEval/53"].passed
    overflowing = p.prompt + "    return (x + y) % 10**9\n"  # right on the base inputs, wrong on 10**9 + 10**9
    assert not run_all(box, problems, {"HumanEval/53": overflowing})["HumanEval/53"].passed


def test_multipl_e_prompts_run_in_python_cpp_and_javascript(box):
    problems = load_problems("multipl-e", FIXTURES / "multipl-e.jsonl")
    assert {p.language for p in problems.values()} == {"python", "cpp", "javascript"}
    assert problems["HumanEval_53_add"].entry_point == "add"
    completions = {"HumanEval_53_add": "    return x + y\n", "HumanEval_53_add_cpp": "    return x + y;\n",
                   "HumanEval_53_add_js": "  return x + y;\n}\n"}
    good = run_all(box, problems, {t: problems[t].completion_prefix + c for t, c in completions.items()})
    assert {t: r.passed for t, r in good.items()} == dict.fromkeys(completions, True)
    bad = run_all(box, problems, {t: problems[t].completion_prefix + c.replace("x + y", "x - y")
                                  for t, c in completions.items()})
    assert {t: r.passed for t, r in bad.items()} == dict.fromkeys(completions, False)


def test_livecodebench_reads_compressed_private_tests_and_functional_problems(box):
    warnings: list[str] = []
    problems = load_problems("stdio", FIXTURES / "livecodebench.jsonl", warnings=warnings)
    assert list(problems) == ["abc000_a", "1000A", "1", "2"]
    assert [c.input for c in problems["abc000_a"].tests.cases] == ["1 2\n", "10 20\n", "-5 5\n"]
    assert problems["1000A"].difficulty == "medium" and problems["1000A"].tags == ("codeforces",)
    assert len(warnings) == 1 and "livecodebench.jsonl:5" in warnings[0]
    assert "['functional', 'stdin']" in warnings[0]
    with pytest.raises(DataError, match=r"livecodebench.jsonl:5: .*functional"):
        load_problems("stdio", FIXTURES / "livecodebench.jsonl", skip_unsupported=False)
    two_sum = problems["1"]
    assert (two_sum.entry_point, two_sum.tests.kind, two_sum.tests.instance_of) == ("twoSum", "calls", "Solution")
    assert [plain.decode(i) for i in two_sum.tests.inputs] == [[[2, 7, 11, 15], 9], [[3, 2, 4], 6], [[3, 3], 6]]
    assert [plain.decode(e) for e in two_sum.tests.expected] == [[0, 1], [1, 2], [0, 1]]
    assert len(two_sum.public_tests.inputs) == 1 and "class Solution:" in two_sum.prompt
    programs = {"abc000_a": "a, b = map(int, input().split())\nprint(a + b)\n",
                "1000A": "input()\nprint(max(map(int, input().split())))\n",
                "1": "class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n"
                     "        seen = {}\n        for i, x in enumerate(nums):\n"
                     "            if target - x in seen:\n                return [seen[target - x], i]\n"
                     "            seen[x] = i\n",
                "2": "class Solution:\n    def countWords(self, words: List[str]) -> Dict[str, int]:\n"
                     "        return dict(Counter(words))\n"}  # List, Dict, Counter: LiveCodeBench's imports
    assert {t: r.passed for t, r in run_all(box, problems, programs).items()} == dict.fromkeys(programs, True)
    wrong = {"1": programs["1"].replace("[seen[target - x], i]", "[i, seen[target - x]]"),
             "2": programs["2"].replace("dict(Counter(words))", "dict.fromkeys(words, 1)")}
    results = run_all(box, problems, wrong)
    assert {t: (r.status, [v.status for v in r.tests]) for t, r in results.items()} == {
        "1": ("failed", ["failed", "failed", "failed"]), "2": ("failed", ["failed", "passed"])}
    assert all(r.judged_by == "replay" for r in results.values())


def test_taco_and_codecontests_rows_become_problems_with_references_and_limits(box):
    taco = load_problems("stdio", FIXTURES / "taco.jsonl")
    assert (list(taco) == ["taco/1", "taco/2", "taco/3"] and taco["taco/1"].time_limit_s == 1.0
            and taco["taco/1"].tags == ("String algorithms",))
    assert taco["taco/2"].tests.kind == "calls" and taco["taco/2"].entry_point == "sum_two"
    assert [plain.decode(e) for e in taco["taco/3"].tests.expected] == [[[[1, 1], [3, 2]]], [[]]]
    cc = load_problems("stdio", FIXTURES / "codecontests.jsonl")
    p = cc["1000_A. Sum of digits"]
    assert (p.difficulty, p.time_limit_s, len(p.tests.cases)) == ("A", 2.0, 4)
    assert p.reference_solution.startswith("print(sum(")  # the python3 one, not the C++ one
    results = run_all(box, {**taco, **cc}, {**references(taco), **references(cc)})
    assert {t: r.passed for t, r in results.items()} == dict.fromkeys(results, True)
    wrong = {"taco/2": "def sum_two(a, b):\n    return a * b\n",
             "taco/3": "class Solution:\n    def pairs(self, nums):\n        return sorted(Counter(nums))\n"}
    assert {t: r.status for t, r in run_all(box, taco, wrong).items()} == {"taco/2": "failed", "taco/3": "failed"}


def test_generic_jsonl_is_the_problem_schema(box):
    problems = load_problems("jsonl", FIXTURES / "generic.jsonl")
    assert problems["demo/square"].tags == ("math",) and problems["demo/echo"].tests.kind == "stdio"
    assert all(r.passed for r in run_all(box, problems, references(problems)).values())


def test_gzipped_and_json_list_files_load_like_jsonl(tmp_path):
    rows = [json.loads(line) for line in (FIXTURES / "mbpp.jsonl").read_text().splitlines()]
    with gzip.open(tmp_path / "mbpp.jsonl.gz", "wt") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "mbpp.json").write_text(json.dumps(rows))
    assert (list(load_problems("mbpp", tmp_path / "mbpp.jsonl.gz"))
            == list(load_problems("mbpp", tmp_path / "mbpp.json")) == ["Mbpp/2", "Mbpp/3"])


@pytest.mark.parametrize("content, message", [
    ('{"task_id": 2, "text": "x", "code": "y", "test_list": ["assert True"]}\n{"task_id": 3, "text": \n',
     r"bad.jsonl:2: malformed JSON"),
    ('{"task_id": 2, "text": "x", "code": "y"}\n', r"bad.jsonl:1: row is in 'unknown' format"),
    ('{"question": "q", "input_output": "{}"}\n', r"bad.jsonl:1: row is in 'taco' format, dataset 'mbpp' expects"),
    ('[1, 2]\n', r"bad.jsonl:1: expected a JSON object, got list"),
    ('{"task_id": "a", "tests": {"kind": "stdio", "cases": []}}\n', r"bad.jsonl:1: jsonl row: field tests.stdio.cases"),
    ('\n\n', r"bad.jsonl: no mbpp problems"),
])
def test_bad_problem_files_name_file_line_and_problem(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_problems("jsonl" if "jsonl row" in message else "mbpp", path)


def test_byte_order_marks_gzipped_json_lists_and_bad_utf8_lines(tmp_path):
    rows = (FIXTURES / "mbpp.jsonl").read_text().splitlines()
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode() + b"\r\n")  # saved on Windows
    assert list(load_problems("mbpp", tmp_path / "bom.jsonl")) == ["Mbpp/2", "Mbpp/3"]
    with gzip.open(tmp_path / "mbpp.json.gz", "wt") as f:
        f.write(json.dumps([json.loads(r) for r in rows]))
    assert list(load_problems("mbpp", tmp_path / "mbpp.json.gz")) == ["Mbpp/2", "Mbpp/3"]
    (tmp_path / "bad.jsonl").write_bytes(rows[0].encode() + b"\n" + b'{"task_id": 3, "text": "\xff"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not UTF-8 text \(byte 0xff at column 25\)"):
        load_problems("mbpp", tmp_path / "bad.jsonl")


def test_missing_problem_file_and_duplicate_ids_are_reported(tmp_path):
    with pytest.raises(DataError, match=r"nope.jsonl: file not found"):
        load_problems("mbpp", tmp_path / "nope.jsonl")
    row = (FIXTURES / "mbpp.jsonl").read_text().splitlines()[0]
    (tmp_path / "dup.jsonl").write_text(row + "\n" + row + "\n")
    with pytest.raises(DataError, match=r"dup.jsonl:2: duplicate task_id 'Mbpp/2'"):
        load_problems("mbpp", tmp_path / "dup.jsonl")
    with pytest.raises(ValueError, match="needs dataset_path"):
        load_problems("stdio")
