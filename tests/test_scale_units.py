"""The pure parts of test-time scaling, by hand: feedback texts, the strategies' next steps, the curve bookkeeping,
math answers, FTTT's prompts and extraction, and beam search over a known distribution."""

from __future__ import annotations

import json
import math

import pytest

from raylib.scale.feedback import BINARY, ShownRun, ShownTest, feedback_text, split_assertion
from raylib.scale.strategies import CRITIQUE, Beam, Check, Generate, Judge, Rank, ScaleSettings, Train, next_actions
from raylib.scale.summary import scale_summary, solved_within

FIRST = ({"role": "user", "content": "solve it"},)


# ------------------------------------------------------------------------------------------------- feedback


def test_binary_feedback_is_fttts_exact_sentence():
    assert BINARY == "Your answer is incorrect. Please try again."
    assert feedback_text("binary", ShownRun("failed", "", (ShownTest("assert f(1) == 2", False, "failed"),))) == BINARY


def test_public_tests_feedback_names_the_failed_visible_test_with_expected_and_got():
    shown = ShownRun("failed", "AssertionError", (
        ShownTest("assert add(1, 1) == 2", True, "passed", call="add(1, 1)", expected="2", got="2"),
        ShownTest("assert add(2, 3) == 5", False, "failed", error="AssertionError", call="add(2, 3)", expected="5",
                  got="6"),
    ))
    text = feedback_text("public-tests", shown)
    assert "fails 1 of the 2 tests shown" in text
    assert "`add(2, 3)` should be `5`, got `6`." in text
    assert "add(1, 1)" not in text  # a passing test is not reported


def test_public_tests_feedback_reports_an_exception_instead_of_a_value():
    shown = ShownRun("runtime-error", "ZeroDivisionError", (
        ShownTest("assert f(0) == 1", False, "runtime-error", error="ZeroDivisionError: division by zero",
                  call="f(0)", expected="1", got="raised ZeroDivisionError: division by zero"),))
    assert "`f(0)` should be `1`; it failed with ZeroDivisionError: division by zero." in \
        feedback_text("public-tests", shown)


def test_traceback_feedback_carries_the_visible_runs_error():
    shown = ShownRun("runtime-error", "", (ShownTest("assert f(0) == 1", False, "runtime-error",
                                                     error="NameError: name 'g' is not defined (tests.py:1)"),))
    text = feedback_text("traceback", shown)
    assert "NameError: name 'g' is not defined" in text and text.endswith("Please try again.")


def test_without_visible_tests_every_level_falls_back_to_binary():
    for level in ("binary", "public-tests", "traceback"):
        assert feedback_text(level, None) == BINARY
    with pytest.raises(ValueError, match="unknown feedback level"):
        feedback_text("hidden-tests", None)


def test_stdio_feedback_shows_input_expected_and_got():
    shown = ShownRun("failed", "", (ShownTest("1 2\n", False, "failed", expected="3\n", got="4\n"),), stdio=True)
    text = feedback_text("public-tests", shown)
    assert "input:\n1 2" in text and "expected output:\n3" in text and "got: \n4" in text


def test_split_assertion_takes_the_tested_expression_and_the_expected_value():
    assert split_assertion("assert add(2, 3) == 5") == ("add(2, 3)", "5")
    assert split_assertion("assert _public_close(f(1.5), 0.5)") == ("f(1.5)", "0.5")
    assert split_assertion("assert f(1) is None") == ("f(1)", "None")
    assert split_assertion("assert f(1) > 2") is None
    assert split_assertion("not python (") is None


# ------------------------------------------------------------------------------------------------- strategies


def answered(attempt, passed=None, feedback=None, **extra):
    row = {"attempt": attempt, "response": f"answer {attempt}", "solution": f"prog{attempt}", "key": f"k{attempt}",
           "error": "", **extra}
    if passed is not None:
        row.update(passed=passed, status="passed" if passed else "failed")
    if feedback is not None:
        row["feedback"] = feedback
    return row


def test_revision_grows_one_chat_with_each_feedback_turn_and_stops_at_a_pass():
    settings = ScaleSettings(strategy="revision", budget=3, feedback="public-tests")
    assert next_actions(settings, FIRST, {}) == [Generate((0,), FIRST)]
    rows = {0: answered(0)}
    assert next_actions(settings, FIRST, rows) == [Judge((0,), feedback="public-tests")]
    rows = {0: answered(0, False, "fix 0"), 1: answered(1, False, "fix 1")}
    [step] = next_actions(settings, FIRST, rows)
    assert step.attempts == (2,)
    assert [m["content"] for m in step.messages] == ["solve it", "answer 0", "fix 0", "answer 1", "fix 1"]
    assert [m["role"] for m in step.messages] == ["user", "assistant", "user", "assistant", "user"]
    rows[2] = answered(2, False, "fix 2")
    assert next_actions(settings, FIRST, rows) == []  # budget used up
    assert next_actions(settings, FIRST, {0: answered(0, True)}) == []


def test_revision_ends_when_the_model_could_not_answer():
    settings = ScaleSettings(strategy="revision", budget=5)
    rows = {0: {**answered(0, False, BINARY), "error": "the prompt has 3000 tokens; the model's context is 2048"}}
    assert next_actions(settings, FIRST, rows) == []


def test_self_refine_critiques_only_the_last_answer_and_writes_no_feedback():
    settings = ScaleSettings(strategy="self-refine", budget=4)
    assert next_actions(settings, FIRST, {0: answered(0)}) == [Judge((0,), feedback=None)]
    [step] = next_actions(settings, FIRST, {0: answered(0, False), 1: answered(1, False)})
    assert [m["content"] for m in step.messages] == ["solve it", "answer 1", CRITIQUE]


def test_oracle_best_of_n_judges_each_call_before_drawing_more_and_stops_at_a_pass():
    settings = ScaleSettings(strategy="best-of-n", budget=6, samples_per_call=4)
    assert next_actions(settings, FIRST, {}) == [Generate((0, 1, 2, 3), FIRST)]
    rows = {a: answered(a) for a in range(4)}
    assert next_actions(settings, FIRST, rows) == [Judge((0, 1, 2, 3))]
    rows = {a: answered(a, False) for a in range(4)}
    assert next_actions(settings, FIRST, rows) == [Generate((4, 5), FIRST)]
    rows[4] = answered(4, True)
    assert next_actions(settings, FIRST, rows) == []


def test_verifier_best_of_n_draws_everything_scores_it_then_judges_only_the_picks():
    settings = ScaleSettings(strategy="best-of-n", mode="verifier", budget=5, samples_per_call=2)
    assert next_actions(settings, FIRST, {}) == [Generate((0, 1), FIRST), Generate((2, 3), FIRST),
                                                 Generate((4,), FIRST)]
    rows = {a: answered(a) for a in range(5)}
    assert next_actions(settings, FIRST, rows) == [Rank((0, 1, 2, 3, 4))]
    for a, score in zip(range(5), (0.2, 0.9, 0.5, 0.9, 1.0)):
        rows[a]["score"] = score
    # the pick among the first k: k=1 -> 0, k=2..4 -> 1 (0.9; a later tie does not displace it), k=5 -> 4
    assert next_actions(settings, FIRST, rows) == [Judge((0, 1, 4), selected_for=((0, (1,)), (1, (2, 3, 4)),
                                                                                   (4, (5,))))]
    for a in (0, 1, 4):
        rows[a].update(passed=a == 1, status="x")
    assert next_actions(settings, FIRST, rows) == []


def test_self_consistency_judges_the_majority_of_every_prefix_without_a_verifier():
    settings = ScaleSettings(strategy="self-consistency", budget=5)
    keys = ["a", "b", "b", "", "a"]
    rows = {a: {**answered(a), "key": k} for a, k in enumerate(keys)}
    [judge] = next_actions(settings, FIRST, rows)
    # k=1: a; k=2: a (tie, seen first); k=3: b (2 votes); k=4: b (the empty key never wins); k=5: a/b tie -> a
    assert judge == Judge((0, 1), selected_for=((0, (1, 2, 5)), (1, (3, 4))))


def test_beam_asks_one_search_of_the_budgets_width_and_oracle_judges_every_beam():
    settings = ScaleSettings(strategy="beam", budget=3)
    assert next_actions(settings, FIRST, {}) == [Beam((0, 1, 2), FIRST)]
    rows = {a: answered(a) for a in range(3)}
    assert next_actions(settings, FIRST, rows) == [Judge((0, 1, 2))]
    verifier = ScaleSettings(strategy="beam", budget=3, mode="verifier")
    assert next_actions(verifier, FIRST, rows) == [Rank((0, 1, 2))]


def test_sample_debug_debugs_each_candidate_on_public_feedback_then_picks_among_finals():
    settings = ScaleSettings(strategy="sample-debug", budget=2, debug_rounds=1)  # attempts: c0 -> 0, 1; c1 -> 2, 3
    first = next_actions(settings, FIRST, {})
    assert first == [Generate((0,), FIRST, (("candidate", 0), ("round", 0))),
                     Generate((2,), FIRST, (("candidate", 1), ("round", 0)))]
    rows = {0: answered(0, candidate=0, round=0), 2: answered(2, candidate=1, round=0)}
    assert next_actions(settings, FIRST, rows) == [Check((0, 2))]
    rows[0].update(public={"passed": 1, "total": 2}, feedback="fails add(2, 3)")
    rows[2].update(public={"passed": 2, "total": 2}, feedback="")
    [fix] = next_actions(settings, FIRST, rows)  # candidate 1 passes its visible tests: final; candidate 0 is fixed
    assert fix.attempts == (1,) and dict(fix.fields) == {"candidate": 0, "round": 1}
    assert [m["content"] for m in fix.messages] == ["solve it", "answer 0", "fails add(2, 3)"]
    rows[1] = answered(1, candidate=0, round=1)
    assert next_actions(settings, FIRST, rows) == [Check((1,))]
    rows[1].update(public={"passed": 1, "total": 2}, feedback="still")
    assert next_actions(settings, FIRST, rows) == [Rank((1, 2))]  # the finals: rounds used up, and passed
    rows[1]["score"], rows[2]["score"] = 0.5, 1.0
    assert next_actions(settings, FIRST, rows) == [Judge((1, 2), selected_for=((1, (1,)), (2, (2,))))]


def test_fttt_asks_each_attempt_from_the_prompt_alone_and_trains_after_each_failure():
    settings = ScaleSettings(strategy="fttt", budget=3)
    assert next_actions(settings, FIRST, {}) == [Generate((0,), FIRST)]
    rows = {0: answered(0)}
    assert next_actions(settings, FIRST, rows) == [Judge((0,), feedback="binary")]
    rows = {0: answered(0, False, BINARY)}
    assert next_actions(settings, FIRST, rows) == [Train((0,))]
    rows[0]["trained"] = True
    assert next_actions(settings, FIRST, rows) == [Generate((1,), FIRST)]  # no earlier attempt in the context
    rows.update({1: {**answered(1, False, BINARY), "trained": False}, 2: answered(2, False, BINARY)})
    assert next_actions(settings, FIRST, rows) == []  # budget spent: the last failure is not trained on
    assert next_actions(settings, FIRST, {0: answered(0, True)}) == []
    assert settings.sampling_temperature == 0.6  # FTTT samples its attempts


def test_per_strategy_sampling_defaults_follow_fttt():
    assert ScaleSettings(strategy="revision").sampling_temperature == 0.0
    assert ScaleSettings(strategy="best-of-n").sampling_temperature == 0.6
    assert ScaleSettings(strategy="best-of-n").sampling_top_p == 0.95
    assert ScaleSettings(strategy="beam", temperature=0.3).sampling_temperature == 0.3


# ------------------------------------------------------------------------------------------------- curve


def test_sequential_curve_and_avg_trials_count_attempts_up_to_the_first_pass():
    rows = {"a": [{"attempt": 0, "passed": False}, {"attempt": 1, "passed": True}],
            "b": [{"attempt": a, "passed": False} for a in range(4)],
            "c": [{"attempt": 0, "passed": True}]}
    assert solved_within(rows, 4, selection=False) == {"a": [False, True, True, True], "b": [False] * 4,
                                                       "c": [True] * 4}
    summary = scale_summary(ScaleSettings(strategy="revision", budget=4), rows, dataset="d", model="m")
    assert summary["solved"] == 2 and summary["problems"] == 3 and summary["precision"] == pytest.approx(2 / 3)
    assert [p["solved"] for p in summary["curve"]] == [1, 2, 2, 2] and [p["k"] for p in summary["curve"]] == [1, 2,
                                                                                                                3, 4]
    assert summary["avg_trials"] == pytest.approx((2 + 4 + 1) / 3)
    json.dumps(summary)


def test_selection_curve_counts_the_pick_of_each_prefix_and_may_fall():
    rows = {"a": [{"attempt": 0, "passed": True, "selected_for": [1, 2]}, {"attempt": 1},
                  {"attempt": 2, "passed": False, "selected_for": [3]}],
            "b": [{"attempt": 0, "passed": False, "selected_for": [1]},  # only one candidate: the pick stands
                  ]}
    assert solved_within(rows, 3, selection=True) == {"a": [True, True, False], "b": [False, False, False]}
    summary = scale_summary(ScaleSettings(strategy="self-consistency", budget=3), rows, dataset="d", model="m")
    assert [p["solved"] for p in summary["curve"]] == [1, 1, 0] and summary["solved"] == 0
    assert summary["avg_trials"] == pytest.approx((3 + 1) / 2)


# ------------------------------------------------------------------------------------------------- math


def test_math_final_answers_and_equivalence():
    from raylib.data.math_problems import answers_equal, final_answer

    assert final_answer("so \\boxed{\\frac{1}{2}}.") == "\\frac{1}{2}"
    assert final_answer("nested \\boxed{\\sqrt{\\frac{1}{4}}} end") == "\\sqrt{\\frac{1}{4}}"
    assert final_answer("She pays 3 + 4 = 7.\n#### 1,234") == "1234"
    assert final_answer("The final answer is 42.") == "42"
    assert final_answer("no answer here") is None
    for given, reference in (("0.5", "\\frac12"), ("\\dfrac{3}{4}", "0.75"), ("1,000", "1000"), ("10\\%", "10"),
                             ("2\\sqrt{2}", "\\sqrt{8}"), ("x = 5", "5"), ("\\text{(B)}", "(B)"), ("5 units", "5"),
                             ("90^\\circ", "90")):
        assert answers_equal(given, reference), (given, reference)
    for given, reference in (("0.51", "0.5"), ("\\frac{2}{3}", "0.66"), (None, "1"), ("(A)", "(B)")):
        assert not answers_equal(given, reference), (given, reference)


def test_the_math_checker_never_evaluates_a_models_text_as_code(tmp_path):
    from raylib.data.math_problems import answers_equal

    marker = tmp_path / "ran"
    assert not answers_equal(f"__import__('pathlib').Path('{marker}').touch()", "1")
    assert not answers_equal("9**9**9**9", "1")  # a power that would never finish is refused, not computed
    assert not marker.exists()


def test_math_loaders_read_the_public_formats_and_name_bad_lines(tmp_path):
    from raylib.data.math_problems import load_math_problems
    from raylib.files import DataError

    gsm = tmp_path / "gsm8k.jsonl"
    gsm.write_text(json.dumps({"question": "Tom has 3 apples and buys 4. How many?", "answer": "3+4=7\n#### 7"})
                   + "\n" + json.dumps({"question": "Big?", "answer": "#### 1,200"}) + "\n")
    problems = load_math_problems("gsm8k", gsm)
    assert [p.answer for p in problems.values()] == ["7", "1200"] and list(problems) == ["gsm8k/0", "gsm8k/1"]
    math500 = tmp_path / "math500.jsonl"
    math500.write_text(json.dumps({"problem": "Half of 1?", "solution": "It is $\\boxed{\\frac{1}{2}}$.",
                                   "answer": "\\frac{1}{2}", "subject": "Algebra", "level": 1,
                                   "unique_id": "test/algebra/1.json"}) + "\n"
                       + json.dumps({"problem": "Two?", "solution": "So \\boxed{2}."}) + "\n")
    problems = load_math_problems("math500", math500)
    assert problems["test/algebra/1.json"].answer == "\\frac{1}{2}" and problems["math500/1"].answer == "2"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "answer": "no marker"}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:1: .*####"):
        load_math_problems("gsm8k", bad)


# ------------------------------------------------------------------------------------------------- tasks


def test_fttt_prompts_and_first_fenced_block():
    from raylib.data.problems import load_problems
    from raylib.generate.prompts import PromptSettings
    from raylib.scale.tasks import CodeTasks, first_fenced_block

    assert first_fenced_block("text\n```python\ndef f():\n    return 1\n```\nmore ```x```") == \
        "def f():\n    return 1"
    assert first_fenced_block("def f():\n    return 1\n") == "def f():\n    return 1"
    assert first_fenced_block("just prose, no code") is None
    he = load_problems("humaneval")
    tasks = CodeTasks({"HumanEval/0": he["HumanEval/0"]}, PromptSettings(), protocol="fttt")
    turn = tasks.first_turn("HumanEval/0")
    assert turn.messages[0]["content"].startswith("Write a solution to the following problem and make sure that it "
                                                  "passes the tests:\n```python\n\n\nfrom typing import List")
    assert turn.response_prefix == "" and turn.stop == ()
    mbpp = load_problems("mbpp")
    task = next(iter(mbpp))
    text = CodeTasks({task: mbpp[task]}, PromptSettings(), protocol="fttt").first_turn(task).messages[0]["content"]
    assert text.startswith("You are an expert Python programmer, and here is your task:\nWrite a function")
    assert "\nYour code should pass the following tests:\nassert " in text


def test_self_consistency_keys_ignore_comments_docstrings_and_layout():
    from raylib.scale.tasks import normalized_code

    a = 'def f(x):\n    """Doc."""\n    # add one\n    return x+1\n'
    b = "def f(x):\n\n    return (x + 1)\n"
    assert normalized_code(a) == normalized_code(b)
    assert normalized_code("def f(x):\n    return x + 2\n") != normalized_code(b)


# ------------------------------------------------------------------------------------------------- beam search


def test_beam_search_finds_the_likeliest_sequences_not_the_greedy_one():
    from raylib.generate.engines.beam import beam_search

    # tokens: 1 -> then 3 is certain (p=1); 2 -> then 3 or 4 each 0.5; EOS = 9 after one of 3/4.
    table = {(): {1: 0.4, 2: 0.6}, (1,): {3: 1.0}, (2,): {3: 0.5, 4: 0.5}}

    def top_tokens(sequences, k):
        out = []
        for seq in sequences:
            probs = table.get(tuple(seq[1:]), {9: 1.0})
            ranked = sorted(probs.items(), key=lambda kv: -kv[1])[:k]
            out.append([(t, math.log(p)) for t, p in ranked])
        return out

    beams = beam_search(top_tokens, [0], width=2, max_tokens=5, eos={9}, stopped=lambda t: False,
                        length_penalty=0.0)
    # greedy takes 2 (0.6) then 0.5 = 0.3; the best sequence is 1, 3 (0.4 x 1.0)
    assert [b.tokens for b in beams] == [(1, 3), (2, 3)]
    assert beams[0].score == pytest.approx(math.log(0.4)) and beams[0].finish_reason == "stop"


def test_runs_in_sibling_folders_are_drawn_together_in_the_parents_plot(tmp_path):
    from raylib.scale.summary import write_outputs

    rows = {"a": [{"attempt": 0, "passed": False}, {"attempt": 1, "passed": True}]}
    for name, settings in (("revision", ScaleSettings(strategy="revision", budget=2)),
                           ("bon", ScaleSettings(strategy="best-of-n", budget=2))):
        write_outputs(scale_summary(settings, rows, dataset="humaneval", model="m"), tmp_path / name)
        assert (tmp_path / name / "scaling.png").stat().st_size > 0
        assert "| 2 | 1 | 100.00% |" in (tmp_path / name / "report.md").read_text()
    assert (tmp_path / "scaling.png").stat().st_size > 0  # both runs, one plot


def test_compare_runs_tables_every_run_per_dataset(tmp_path):
    from raylib.scale.summary import compare_runs, write_outputs

    with pytest.raises(ValueError, match="no scaling run"):
        compare_runs(tmp_path)
    solved = {"a": [{"attempt": 0, "passed": True}], "b": [{"attempt": 0, "passed": False}]}
    failed = {"a": [{"attempt": 0, "passed": False}], "b": [{"attempt": 0, "passed": False}]}
    for name, rows, dataset in (("fttt", solved, "humaneval"), ("peft-lora", failed, "humaneval"),
                                ("gsm", solved, "gsm8k")):
        summary = scale_summary(ScaleSettings(strategy="fttt" if name != "peft-lora" else "best-of-n", budget=1),
                                rows, dataset=dataset, model=name)
        write_outputs(summary, tmp_path / name)
    table = compare_runs(tmp_path)
    assert [r["run"] for r in table["humaneval"]] == ["fttt", "peft-lora"]  # best first
    assert table["humaneval"][0]["precision"] == 0.5 and table["gsm8k"][0]["solved"] == 1
    text = (tmp_path / "comparison.md").read_text()
    assert "## gsm8k" in text and "| peft-lora | peft-lora | best-of-n (oracle), B=1 | 2 | 0 | 0.00% | 1.00 |" in text
