"""TACO cleaning (CodePRM): each rule of raylib/data/clean.py on hand-made rows, decontamination with the overlap
worked out by hand, and jobs/clean_problems.py end to end on tests/fixtures/taco_raw.jsonl with the real sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raylib.data.clean import (
    CleaningSettings,
    NgramIndex,
    TacoRow,
    contaminated,
    deduplicate,
    enough_tests,
    evaluation_texts,
    execution_samples,
    keep_passing,
    ngrams,
    normalise_tests,
    question_length,
    read_rows,
    removed_by_reason,
    taco_record,
    usable_solutions,
)
from raylib.data.problems import load_problems

FIXTURES = Path(__file__).parent / "fixtures"
RAW = FIXTURES / "taco_raw.jsonl"


def taco_row(task_id: str, question: str = "q", n_tests: int = 3, solutions: list | None = None) -> TacoRow:
    tests = {"inputs": [f"{i}\n" for i in range(n_tests)], "outputs": [f"{i}\n" for i in range(n_tests)]}
    return TacoRow(task_id, 1, {"question": question}, tests,
                   list(enumerate(solutions if solutions is not None else ["x = 1\nprint(x)\n"])))


def reasons(removed) -> list[tuple]:
    return [(r.task_id, r.solution, r.reason) for r in removed]


# ------------------------------------------------------------------------------------------------- normalisation


def test_stdio_tests_become_lf_text_lists_of_lines_get_a_final_newline_and_repeats_go():
    tests = normalise_tests({"inputs": [["3", "1 2 3"], "4 5\r\n", "4 5\n", 7], "outputs": [["6"], "9\r\n", "9\n", 7]})
    assert tests == {"inputs": ["3\n1 2 3\n", "4 5\n", "7"], "outputs": ["6\n", "9\n", "7"]}


def test_call_based_inputs_become_argument_lists_and_outputs_stay_as_given():
    tests = normalise_tests({"fn_name": "f", "inputs": [[1, 2], 5, [1, 2]], "outputs": [[3], [5], [3]]})
    assert tests == {"fn_name": "f", "inputs": [[1, 2], [5]], "outputs": [[3], [5]]}


def test_inputs_and_outputs_of_different_lengths_are_malformed():
    with pytest.raises(ValueError, match="2 inputs but 1 outputs"):
        normalise_tests({"inputs": ["1", "2"], "outputs": ["1"]})
    assert normalise_tests("") == normalise_tests({}) == {"inputs": [], "outputs": []}  # no tests: too few, later


def test_malformed_lines_and_repeated_ids_are_removed_as_they_are_read(tmp_path):
    good = {"question": "q", "solutions": "[]", "input_output": json.dumps({"inputs": ["1"], "outputs": ["1"]})}
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([json.dumps({**good, "name": "a"}), json.dumps({**good, "name": "a"}),
                               json.dumps({**good, "question": " "}), json.dumps({**good, "solutions": "{x"}),
                               json.dumps({**good, "input_output": "[1]"}), "{oops", json.dumps(good)]) + "\n")
    rows, removed = read_rows(path)
    assert [(r.task_id, r.line) for r in rows] == [("a", 1), ("taco/7", 7)]
    assert [(r.task_id, r.reason, r.detail) for r in removed] == [
        ("a", "duplicate task id", "line 1 has it"),
        ("taco/3", "malformed", "no question"),
        ("taco/4", "malformed", "solutions is not JSON (Expecting property name enclosed in double quotes)"),
        ("taco/5", "malformed", "input_output is a list, not a mapping"),
        ("line 6", "malformed", "malformed JSON (Expecting property name enclosed in double quotes at column 2)")]
    rows, removed = read_rows(path, limit=2)  # the first two rows only
    assert [r.task_id for r in rows] == ["a"] and reasons(removed) == [("a", None, "duplicate task id")]


# ------------------------------------------------------------------------------------------------- the rules


def test_problems_need_min_tests_distinct_cases():
    kept, removed = enough_tests([taco_row("a", n_tests=2), taco_row("b", n_tests=3)], CleaningSettings(min_tests=3))
    assert [r.task_id for r in kept] == ["b"]
    assert [(r.task_id, r.reason, r.detail) for r in removed] == [("a", "too few tests", "2 tests, fewer than 3")]


def test_questions_over_max_question_chars_are_removed():
    kept, removed = question_length([taco_row("a", "x" * 11), taco_row("b", "x" * 10)],
                                    CleaningSettings(max_question_chars=10))
    assert [r.task_id for r in kept] == ["b"]
    assert [(r.task_id, r.reason, r.detail) for r in removed] == [("a", "question too long",
                                                                   "11 characters, more than 10")]


def test_each_solution_rule_and_max_attempts():
    ok = "a = input()\nprint(a)"
    solutions = [
        ok + "\n\n\n",                            # 0 kept, stripped
        "print 'py2'\nprint 1",                   # 1 does not parse
        "x = 1\n" + "y = 2\n" * 10,               # 2 too long (max 40 characters)
        "print(1)",                               # 3 too short (one line)
        "  " + ok,                                # 4 the same as 0 once stripped
        None,                                     # 5 not text
        "b = input()\nprint(b)",                  # 6 kept
        "c = input()\nprint(c)",                  # 7 not tried: max_attempts 2
    ]
    settings = CleaningSettings(max_solution_chars=40, min_solution_lines=2, max_attempts=2, solutions_per_problem=2)
    kept, removed = usable_solutions([taco_row("a", solutions=solutions), taco_row("b", solutions=["print 1\nx"]),
                                      taco_row("c", solutions=[])], settings)
    assert [(r.task_id, r.solutions) for r in kept] == [("a", [(0, ok + "\n"), (6, "b = input()\nprint(b)\n")])]
    assert [(r.task_id, r.solution, r.reason, r.detail) for r in removed] == [
        ("a", 1, "does not parse", "Missing parentheses in call to 'print'. Did you mean print(...)? (line 1)"),
        ("a", 2, "solution too long", "65 characters, more than 40"),  # 6 + 9 x 6 + 5, stripped
        ("a", 3, "solution too short", "1 line, fewer than 2"),
        ("a", 4, "duplicate solution", "the same text as an earlier solution"),
        ("a", 5, "does not parse", "a NoneType, not program text"),
        ("a", 7, "not tried", "2 usable solutions before it"),
        ("b", 0, "does not parse", "Missing parentheses in call to 'print'. Did you mean print(...)? (line 1)"),
        ("b", None, "no usable solution", "none of its 1 solutions is usable"),
        ("c", None, "no usable solution", "no solutions given")]


def test_the_first_of_each_normalised_question_is_kept():
    rows = [taco_row("a", "Print the SUM of a, b."), taco_row("b", "print the sum of a b"),
            taco_row("c", "Print the sum of a and b."), taco_row("d", " print\nthe  sum: of a;b!")]
    kept, removed = deduplicate(rows)
    assert [r.task_id for r in kept] == ["a", "c"]
    assert [(r.task_id, r.reason, r.detail) for r in removed] == [("b", "duplicate question", "same question as a"),
                                                                  ("d", "duplicate question", "same question as a")]


def test_settings_refuse_a_cap_above_the_solutions_run():
    with pytest.raises(ValueError, match=r"solutions_per_problem \(5\) cannot exceed max_attempts \(4\)"):
        CleaningSettings(max_attempts=4, solutions_per_problem=5)


# ------------------------------------------------------------------------------------------------- decontamination


def test_ngram_overlap_by_hand():
    # 3-grams. Evaluation "e1": "one two three four five" -> {one two three, two three four, three four five} (3).
    # The question "One, two three four; six seven" -> {one two three, two three four, three four six, four six
    # seven} (4): 2 shared, relative to the shorter text (3 n-grams): 2/3.
    index = NgramIndex({"e1": "one two three four five", "e2": "four six seven eight nine ten eleven", "e3": "a b"}, 3)
    assert ngrams("One, two three four; six seven", 3) == {"one two three", "two three four", "three four six",
                                                          "four six seven"}
    assert index.sizes == {"e1": 3, "e2": 5}  # "a b" has no 3-gram
    assert index.overlap("One, two three four; six seven") == ("e1", 2, pytest.approx(2 / 3))
    # e2 shares 1 n-gram (four six seven) of the question's 4 and its own 5: 1/4, less than e1's 2/3
    assert index.overlap("nothing in common here") is None
    rows = [taco_row("q", "One, two three four; six seven"), taco_row("r", "four six seven and more words")]
    kept, removed = contaminated(rows, index, threshold=0.5)
    # "four six seven and more words": only "four six seven" is shared (with e2): 1 of its own 4 n-grams = 0.25
    assert [r.task_id for r in kept] == ["r"]
    assert [(r.task_id, r.reason, r.detail) for r in removed] == [
        ("q", "contaminated", "2 shared 3-grams with e1 (0.67 of the shorter text's)")]
    kept, _ = contaminated(rows, index, threshold=0.25)
    assert kept == []
    kept, _ = contaminated(rows, index, threshold=0)  # any shared n-gram
    assert kept == []


def test_questions_copied_from_humaneval_and_mbpp_overlap_as_counted_by_hand():
    texts = evaluation_texts(CleaningSettings().decontamination.against)  # the shipped HumanEval and MBPP(+)
    assert (sum(k.startswith("humaneval:") for k in texts), sum(k.startswith("mbpp:") for k in texts)) == (164, 378)
    index = NgramIndex(texts, 13)
    rows, _ = read_rows(RAW)
    by_id = {r.task_id: r for r in rows}
    # taco/8 is HumanEval/0's docstring (18 words: "check if in given list of numbers are any two numbers closer to
    # each other than given threshold") + "print true or false": 22 words, 10 13-grams; the 18 words hold 6, all
    # in HumanEval/0's prompt (56 words, 44 13-grams): 6 / min(10, 44) = 0.6.
    assert index.overlap(by_id["taco/8"].question) == ("humaneval:HumanEval/0", 6, pytest.approx(0.6))
    # taco/9 is MBPP/4's text (19 words: 7 13-grams) + 9 words: 28 words, 16 13-grams; MBPP/4's prompt (the text and
    # its first assert: 34 words, 22 13-grams): 7 / min(16, 22) = 0.4375.
    assert index.overlap(by_id["taco/9"].question) == ("mbpp:Mbpp/4", 7, pytest.approx(7 / 16))
    assert index.overlap(by_id["taco/1"].question) is None


def test_evaluation_sets_keep_the_statements_of_rows_the_loader_skips():
    from raylib.data.clean import EvaluationSet

    texts = evaluation_texts([EvaluationSet(dataset="stdio", path=str(FIXTURES / "livecodebench.jsonl"))])
    rows = [json.loads(line) for line in (FIXTURES / "livecodebench.jsonl").read_text().splitlines() if line.strip()]
    # every row gives its statement, the LeetCode-style one (line 3) too, whether the loader runs it (its prompt:
    # the statement and its starter code) or skips it (the statement, from the row)
    assert len(texts) == len(rows)
    assert all(any(r["question_content"] in text for text in texts.values()) for r in rows)


# ------------------------------------------------------------------------------------------------- execution filter


def test_passing_solutions_are_kept_up_to_the_cap_and_problems_without_one_go():
    rows = [taco_row("a", solutions=["p0", "p1", "p2", "p3"]), taco_row("b", solutions=["q0", "q1"])]
    results = {("a", 0): {"passed": False, "status": "failed", "error": "Traceback\nValueError: bad"},
               ("a", 1): {"passed": True, "status": "passed"}, ("a", 2): {"passed": True, "status": "passed"},
               ("a", 3): {"passed": True, "status": "passed"},
               ("b", 0): {"passed": False, "status": "timeout", "error": ""},
               ("b", 1): {"passed": False, "status": "failed", "error": ""}}
    assert [(s.task_id, s.sample_id, s.program) for s in execution_samples(rows)] == [
        ("a", 0, "p0"), ("a", 1, "p1"), ("a", 2, "p2"), ("a", 3, "p3"), ("b", 0, "q0"), ("b", 1, "q1")]
    kept, removed = keep_passing(rows, results, cap=2)
    assert [(r.task_id, r.solutions) for r in kept] == [("a", [(1, "p1"), (2, "p2")])]
    assert [(r.task_id, r.solution, r.reason, r.detail) for r in removed] == [
        ("a", 0, "fails tests", "failed: ValueError: bad"),
        ("a", 3, "over the per-problem cap", "2 passing solutions before it"),
        ("b", 0, "fails tests", "timeout"), ("b", 1, "fails tests", "failed"),
        ("b", None, "no passing solution", "none of 2 passes (1 timeout, 1 failed)")]
    assert removed_by_reason(removed) == {"problems": {"no passing solution": 1},
                                          "solutions": {"fails tests": 3, "over the per-problem cap": 1}}


def test_cleaned_rows_are_taco_rows_the_loader_reads(tmp_path):
    rows, _ = read_rows(RAW)
    row = next(r for r in rows if r.task_id == "taco/2")
    record = taco_record(row, ["s = input()\nprint(s[::-1])\n"])
    assert record["problem_id"] == "taco/2" and record["time_limit"] == "1 seconds"
    (tmp_path / "p.jsonl").write_text(json.dumps(record) + "\n")
    problem = load_problems("stdio", tmp_path / "p.jsonl")["taco/2"]
    assert [(c.input, c.output) for c in problem.tests.cases] == [("abc\n", "cba\n"), ("hello\n", "olleh\n"),
                                                                  ("x\n", "x\n")]
    assert problem.reference_solution == "s = input()\nprint(s[::-1])\n" and problem.time_limit_s == 1.0


# ------------------------------------------------------------------------------------------------- the job


def test_rows_the_loader_refuses_are_removed_and_the_rest_load(tmp_path):
    from jobs.clean_problems import loadable

    good = {"question": "q", "solutions": "[]", "input_output": json.dumps({"inputs": ["1\n"], "outputs": ["1\n"]})}
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [good, {**good, "time_limit": ". seconds"}, good]))
    rows, _ = read_rows(path)
    kept, problems, removed = loadable(rows)
    assert [r.task_id for r in kept] == list(problems) == ["taco/1", "taco/3"]
    assert [(r.task_id, r.reason) for r in removed] == [("taco/2", "unloadable")]
    assert "could not convert string to float" in removed[0].detail

ARGS = ["cleaning.min_tests=3", "cleaning.max_question_chars=500", "cleaning.max_solution_chars=300",
        "cleaning.min_solution_lines=2", "cleaning.max_attempts=4", "cleaning.solutions_per_problem=2",
        "execution.actors=1", "execution.workers_per_actor=2"]


@pytest.mark.integration
def test_clean_problems_job_keeps_exactly_the_passing_solutions_and_counts_every_removal(ray_cluster, tmp_path,
                                                                                         capsys):
    import jobs.clean_problems as job

    output = tmp_path / "out"
    args = ["--input", str(RAW), "--output", str(output), *ARGS]
    assert job.main(args) == 0
    console = capsys.readouterr().out

    kept = [json.loads(line) for line in (output / "problems.jsonl").read_text().splitlines()]
    expected = {"taco/1": ["a, b = map(int, input().split())\nprint(a + b)\n",
                           "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n"],
                "taco/2": ["s = input()\nprint(s[::-1])\n", "import sys\nprint(sys.stdin.readline().strip()[::-1])\n"],
                "taco/11": ["def add(a, b):\n    return a + b\n"],  # call-based: run as TACO's harness calls it
                "multiply": ["a, b = map(int, input().split())\nprint(a * b)\n"]}
    assert {r["problem_id"]: json.loads(r["solutions"]) for r in kept} == expected
    assert [r["problem_id"] for r in kept] == list(expected)  # input order
    assert json.loads(kept[-1]["input_output"]) == {"inputs": ["2 3\n", "4 5\n", "0 7\n"],
                                                    "outputs": ["6\n", "20\n", "0\n"]}
    assert list(load_problems("stdio", output / "problems.jsonl")) == list(expected)  # jobs/evaluate.py reads it

    removed = [json.loads(line) for line in (output / "removed.jsonl").read_text().splitlines()]
    problems = {r["task_id"]: r["reason"] for r in removed if r["solution"] is None}
    assert problems == {"taco/4": "malformed", "line 13": "malformed", "taco/3": "too few tests",
                        "taco/5": "question too long", "taco/8": "contaminated", "taco/9": "contaminated",
                        "taco/6": "no usable solution", "taco/7": "duplicate question",
                        "taco/10": "no passing solution"}
    solutions = sorted((r["task_id"], r["solution"], r["reason"]) for r in removed if r["solution"] is not None)
    assert solutions == sorted([
        ("taco/1", 1, "does not parse"), ("taco/1", 3, "duplicate solution"), ("taco/1", 6, "not tried"),
        ("taco/1", 4, "fails tests"), ("taco/1", 5, "over the per-problem cap"),
        ("taco/2", 3, "solution too long"), ("taco/2", 4, "solution too short"), ("taco/2", 1, "fails tests"),
        ("taco/6", 0, "does not parse"), ("taco/6", 1, "does not parse"),
        ("taco/10", 0, "fails tests"), ("taco/10", 1, "fails tests"),
        ("taco/11", 1, "fails tests")])
    timeout = next(r for r in removed if (r["task_id"], r["solution"]) == ("taco/2", 1))
    assert timeout["detail"].startswith("timeout")

    summary = json.loads((output / "clean_summary.json").read_text())
    assert summary["input"] == {"problems": 13, "solutions": 24}
    assert summary["kept"] == {"problems": 4, "solutions": 6}
    assert summary["removed_by_reason"]["problems"] == {
        "malformed": 2, "contaminated": 2, "too few tests": 1, "question too long": 1, "no usable solution": 1,
        "duplicate question": 1, "no passing solution": 1}
    assert summary["removed_by_reason"]["solutions"] == {
        "fails tests": 5, "does not parse": 3, "duplicate solution": 1, "not tried": 1,
        "solution too long": 1, "solution too short": 1, "over the per-problem cap": 1}
    assert summary["execution"] == {"samples": 12, "passed": 7}
    assert "malformed" in console and "problems.jsonl" in console and (output / "config.yaml").exists()

    # a re-run runs nothing in the sandbox again and writes the same outputs
    before = {name: (output / name).read_text() for name in ("problems.jsonl", "removed.jsonl")}
    results = (output / "execution" / "results.jsonl").read_text()
    assert job.main(args) == 0
    capsys.readouterr()
    assert {name: (output / name).read_text() for name in before} == before
    assert (output / "execution" / "results.jsonl").read_text() == results
    assert f"resuming: {summary['execution']['samples']} of {summary['execution']['samples']} samples already " \
           "evaluated" in (output / "job.log").read_text()


def test_clean_problems_job_refuses_bad_input_and_another_input_in_the_same_output(tmp_path, capsys):
    import jobs.clean_problems as job

    assert job.main(["--input", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "o")]) == 2
    assert "missing.jsonl: file not found" in capsys.readouterr().err
    (tmp_path / "empty.jsonl").write_text("\n")
    assert job.main(["--input", str(tmp_path / "empty.jsonl"), "--output", str(tmp_path / "o")]) == 2
    assert "no rows" in capsys.readouterr().err
    (tmp_path / "other.jsonl").write_text('{"question": "q"}\n')
    (tmp_path / "o").mkdir(exist_ok=True)
    (tmp_path / "o" / "clean_identity.json").write_text('{"input_sha": "0", "time_limits": {}, "memory_mb": 1024}')
    assert job.main(["--input", str(tmp_path / "other.jsonl"), "--output", str(tmp_path / "o")]) == 2
    assert "holds the sandbox runs of another input" in capsys.readouterr().err
