"""LLMExecutor's pieces without a model: items from a trace, the strict answer parser, ASE and prefix match."""

from __future__ import annotations

import json

import pytest

from raylib.files import DataError
from raylib.trace.answers import AnswerError, canonical_value, gold_answer, parse_answer
from raylib.trace.ase import ase_metrics, choices, judge_outputs, prefix_match
from raylib.trace.items import items_from_trace, numbered_code, read_items, split_of

CODE = "x = 0\nfor i in range(2):\n    x += i\nprint(x)\n"
# The sandbox's trace of CODE (tests/test_sandbox_trace.py checks the tracer writes exactly this).
TRACE = {"ending": "completed", "detail": "", "truncated": False, "steps": [
    {"line": 1, "vars": {"x": "0"}, "next": 2, "frame": 0, "entry": {}},
    {"line": 2, "vars": {"x": "0", "i": "0"}, "next": 3, "frame": 0, "entry": None},
    {"line": 3, "vars": {"x": "0", "i": "0"}, "next": 2, "frame": 0, "entry": None},
    {"line": 2, "vars": {"x": "0", "i": "1"}, "next": 3, "frame": 0, "entry": None},
    {"line": 3, "vars": {"x": "1", "i": "1"}, "next": 2, "frame": 0, "entry": None},
    {"line": 2, "vars": {"x": "1", "i": "1"}, "next": 4, "frame": 0, "entry": None},
    {"line": 4, "vars": {"x": "1", "i": "1"}, "next": "<END>", "frame": 0, "entry": None},
]}


@pytest.fixture(scope="module")
def items():
    return items_from_trace("p0", CODE, TRACE, source="unit")


def test_code_is_numbered_as_llmexecutor_shows_it():
    assert numbered_code("a = 1\nb = 2") == "<line 1>a = 1\n<line 2>b = 2"


def test_an_item_holds_the_state_before_and_the_answer_after(items):
    third = items[2]
    assert third["start_line"] == 3 and third["initial_value"] == {"x": "0", "i": "0"}
    assert third["next_line"] == 2 and third["kind"] == "branch"
    assert "<line 3>    x += i" in third["prompt"] and "{'x': 0, 'i': 0}" in third["prompt"]
    assert third["output"].startswith("Line: 3\nAnalysis: ")
    assert third["output"].endswith("Check: {'x': 0, 'i': 0}\nNext statement: 2")
    assert [i["kind"] for i in items] == ["sequential", "sequential", "branch", "sequential", "branch", "branch",
                                         "completion"]
    assert items[-1]["output"].endswith("Next statement: completion")


def test_the_swa_variant_has_no_analysis():
    swa = items_from_trace("p0", CODE, TRACE, variant="swa")
    assert swa[0]["output"] == "Line: 1\nCheck: {'x': 0}\nNext statement: 2"
    assert "Analysis" not in swa[0]["prompt"]


def test_a_teachers_analysis_replaces_the_template():
    teacher = items_from_trace("p0", CODE, TRACE, analyses=["x starts at zero.\n\nThen the loop."] + [None] * 6)
    assert "Analysis: x starts at zero. Then the loop.\n" in teacher[0]["output"]


def test_the_first_step_of_a_call_starts_from_its_arguments():
    trace = {"ending": "completed", "detail": "", "truncated": False, "steps": [
        {"line": 2, "vars": {"n": "3", "m": "6"}, "next": 3, "frame": 0, "entry": {"n": "3"}},
        {"line": 3, "vars": {"n": "3", "m": "6"}, "next": "<END>", "frame": 0, "entry": None}]}
    got = items_from_trace("f", "def f(n):\n    m = n * 2\n    return m\n", trace)
    assert got[0]["initial_value"] == {"n": "3"} and got[1]["initial_value"] == {"n": "3", "m": "6"}


def test_steps_with_cut_values_make_no_items():
    trace = {"ending": "completed", "detail": "", "truncated": False, "steps": [
        {"line": 1, "vars": {"s": "'xxxx..."}, "next": "<END>", "frame": 0, "entry": {}}]}
    assert items_from_trace("p", "s = 'x' * 99\n", trace) == []


def test_splits_are_by_program_and_stable():
    fractions = {"train": 0.8, "validation": 0.1, "test": 0.1}
    names = [split_of(f"prog{i}", fractions) for i in range(2000)]
    assert names == [split_of(f"prog{i}", fractions) for i in range(2000)]
    share = names.count("train") / len(names)
    assert 0.75 < share < 0.85 and set(names) == set(fractions)


# --------------------------------------------------------------------------------------------------- parsing


def test_the_gold_answer_of_every_item_parses_to_itself(items):
    for item in items:
        assert parse_answer(item["output"]) == gold_answer(item)


@pytest.mark.parametrize("text, rule", [
    ("Check: {'x': 1}\nNext statement: 2", "0 'Line:' fields"),
    ("Line: 1\nCheck: {'x': 1}\nNext statement: 2\nLine: 2\nCheck: {}\nNext statement: 3", "2 'Line:' fields"),
    ("Line: 1\nNext statement: 2\nCheck: {'x': 1}", "order"),
    ("Line: one\nCheck: {'x': 1}\nNext statement: 2", "expected a line number"),
    ("Line: 1\nCheck: {'x': 1\nNext statement: 2", "not closed"),
    ("Line: 1\nCheck: ['x', 1]\nNext statement: 2", "not a dict display"),
    ("Line: 1\nCheck: {x: 1}\nNext statement: 2", "not a string literal"),
    ("Line: 1\nCheck: {'x': 1, 'x': 2}\nNext statement: 2", "twice"),
    ("Line: 1\nCheck: {'x': 1} and more\nNext statement: 2", "text after the Check dict"),
    ("Line: 1\nCheck: {'x': 1}\nNext statement: line 2.", "expected a line number, 'completion'"),
    ("Line: 1\nAnalysis: a\nAnalysis: b\nCheck: {}\nNext statement: 2", "more than one 'Analysis:'"),
    ("Line: 1\nCheck: {'x' 1}\nNext statement: 2", "is not 'name': value"),
])
def test_each_parse_rule_rejects_what_breaks_it(text, rule):
    with pytest.raises(AnswerError, match=rule):
        parse_answer(text)


def test_values_compare_by_exact_type_and_ignore_order_and_spacing():
    assert canonical_value("1") != canonical_value("1.0") != canonical_value("True")
    assert canonical_value("(1, 2)") != canonical_value("[1, 2]")
    assert canonical_value("{1: 'a', 2: 'b'}") == canonical_value("{2:'b',1:'a'}")
    assert canonical_value("{3, 1}") == canonical_value("{1, 3}")
    assert canonical_value("deque([1, 2])") == canonical_value("deque([1,2])")
    assert canonical_value("<Node>") == canonical_value("< Node >") != canonical_value("<Leaf>")


def test_a_brace_inside_a_value_does_not_end_the_dict():
    answer = parse_answer("Line: 1\nCheck: {'d': {'a': {1}}, 's': '}'}\nNext statement: completion")
    assert dict(answer.values)["s"] == ("value", ("str", "}")) and answer.next == "completion"


# ------------------------------------------------------------------------------------------------------ ASE


def test_gold_answers_score_ase_one(items):
    judged = judge_outputs(items, {i["item_id"]: [i["output"]] for i in items})
    metrics = ase_metrics(items, {k: v["correct"][0] for k, v in judged.items()})
    assert metrics["ase"] == 1.0 and metrics["items"] == 7
    assert metrics["prefix_match"] == {"traces": 1, "mean": 1.0, "at_least_50": 1.0, "at_least_80": 1.0,
                                       "complete": 1.0}


def test_corrupting_two_of_seven_answers_scores_five_sevenths(items):
    outputs = {i["item_id"]: [i["output"]] for i in items}
    outputs[items[1]["item_id"]] = [items[1]["output"].replace("'i': 0", "'i': 1")]  # a wrong value: step 1
    outputs[items[5]["item_id"]] = [items[5]["output"].replace("Next statement: 4", "Next statement: 3")]  # step 5
    judged = judge_outputs(items, outputs)
    metrics = ase_metrics(items, {k: v["correct"][0] for k, v in judged.items()})
    assert metrics["ase"] == pytest.approx(5 / 7)
    # sequential + completion: steps 0, 1, 3, 6 -> 3 of 4 right; branch: steps 2, 4, 5 -> 2 of 3
    assert metrics["accuracy_sequential"] == pytest.approx(3 / 4)
    assert metrics["accuracy_branch"] == pytest.approx(2 / 3)
    # prefix: only step 0 is right before the first miss -> 1/7 of the trace, under 50%
    assert metrics["prefix_match"]["mean"] == pytest.approx(1 / 7)
    assert metrics["prefix_match"]["at_least_50"] == 0.0


def test_prefix_match_counts_consecutive_steps_from_the_start():
    items = [{"item_id": f"t@{k}", "trace_id": "t", "step": k, "trace_steps": 10, "trace_complete": True}
             for k in range(10)]
    correct = {f"t@{k}": k not in (8,) for k in range(10)}  # 8 right before the first miss
    got = prefix_match(items, correct)
    assert got["mean"] == pytest.approx(0.8) and got["at_least_80"] == 1.0 and got["complete"] == 0.0


def test_majority_and_reward_choices(items):
    right, wrong = items[0]["output"], items[0]["output"].replace("'x': 0", "'x': 5")
    parsed = [parse_answer(wrong), parse_answer(right), parse_answer(right), None]
    picked = choices(parsed, scores=[0.9, 0.1, 0.2, 0.95])
    assert picked == {"first": 0, "majority": 1, "reward": 3}


# ------------------------------------------------------------------------------------------------ bad items


def test_a_bad_item_names_the_file_line_and_field(tmp_path, items):
    path = tmp_path / "items.jsonl"
    broken = dict(items[1])
    del broken["next_line"]
    path.write_text(json.dumps(items[0]) + "\n" + json.dumps(broken) + "\n")
    with pytest.raises(DataError, match=r"items.jsonl:2: missing field 'next_line'"):
        read_items(path)
    wrong_type = dict(items[1], start_line="3")
    path.write_text(json.dumps(wrong_type) + "\n")
    with pytest.raises(DataError, match=r"items.jsonl:1: field 'start_line' is str, expected int"):
        read_items(path)


# ------------------------------------------------------------------------------------------------ sources


def test_humaneval_inputs_are_the_literal_calls_of_check():
    from raylib.trace.sources import literal_calls

    test = "def check(candidate):\n    assert candidate([1, 2], 3) == 1\n    x = [5]\n    assert candidate(x, 1)\n" \
           "    assert candidate([1, 2], 3) == 1\n    assert abs(candidate((1,), -2)) < 1\n"
    assert literal_calls(test, {"candidate"}) == [[[1, 2], 3], [(1,), -2]]  # not the one on a variable, no repeats


def test_problem_sets_give_runs_of_their_reference_solutions():
    from raylib.data.problems import load_problems
    from raylib.trace.sources import runs_from_problems
    from sandbox.inside import plain

    runs, left_out = runs_from_problems(load_problems("humaneval"), inputs_per_problem=2)
    first = runs[0]
    assert first["trace_id"] == "HumanEval/0#0" and first["call"][0] == "has_close_elements"
    assert plain.decode(first["call"][1]) == [[1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3]
    assert "def has_close_elements" in first["code"] and len(left_out) == 3  # three without literal inputs
    plus, _ = runs_from_problems(load_problems("mbpp+"), inputs_per_problem=1)
    assert plus[0]["call"] == ["similar_elements", plain.encode([(3, 4, 5, 6), (5, 7, 4, 10)])]
    taco, left_out = runs_from_problems(load_problems("stdio", "tests/fixtures/taco.jsonl"), inputs_per_problem=2)
    assert [r["call"] for r in taco] == [None, None, ["sum_two", plain.encode([1, 2])]] and taco[0]["stdin"] == "abc\n"
    assert left_out == ["taco/3: LeetCode style (a method of Solution); trace mode calls functions"]


def test_program_files_take_their_inputs_from_in_files(tmp_path):
    from raylib.trace.sources import runs_from_program_files

    (tmp_path / "a.py").write_text("print(input())\n")
    (tmp_path / "a.0.in").write_text("x\n")
    (tmp_path / "a.1.in").write_text("y\n")
    (tmp_path / "b.py").write_text("print(1)\n")
    runs = runs_from_program_files(tmp_path)
    assert [(r["trace_id"], r["stdin"]) for r in runs] == [("a#0", "x\n"), ("a#1", "y\n"), ("b#0", "")]
    (tmp_path / "c.py").write_text("def f(:\n")
    with pytest.raises(DataError, match=r"c.py:1: the program does not parse"):
        runs_from_program_files(tmp_path)
