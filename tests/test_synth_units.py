"""The pure pieces of synthetic preference data and the judge bench: every answer reader on well-formed and broken
answers, pair provenance, execution pairs from hand-made results and timings, and the both-order accounting worked
out by hand."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from raylib.files import DataError
from raylib.synth.bench import ask_score, read_bench, summarize, without_comments
from raylib.synth.commit_instruct import (
    SECTIONS,
    Commit,
    construct_messages,
    decision_of,
    pair_from_answer,
    read_commits,
)
from raylib.synth.critic_evol import NO_IMPROVEMENT, Attempt, pair_from_critique, read_critique, regressions
from raylib.synth.execution_pairs import correctness_pairs, efficiency_pairs, runtime_of, timing_samples
from raylib.synth.judges import parse_result
from raylib.synth.pairs import OBJECTIVE_CRITERIA, bench_rows, make_pair
from raylib.synth.prompts import load_prompts
from raylib.synth.sections import header_sections, marked_sections, strip_fence, yes_or_no

WELL_FORMED = """Sure, here is the example.

[INSTRUCTION]
Write `mean(xs)` returning the average of a list of numbers.

[CRITERIA]
It must not fail on an empty list.

[NAIVE_CODE]
```python
def mean(xs):
    # Criteria: none (a header-like comment inside code is code)
    return sum(xs) / len(xs)
```

[IMPROVED_CODE]
```python
def mean(xs):
    return sum(xs) / len(xs) if xs else 0.0
```

[FEEDBACK]
[IMPROVED_CODE] handles the empty list that makes [NAIVE_CODE] divide by zero.
"""


# ------------------------------------------------------------------------------------------------- sections


def test_header_sections_read_every_section_of_a_well_formed_answer():
    sections, reason = header_sections(WELL_FORMED, SECTIONS)
    assert reason == ""
    assert sections["INSTRUCTION"] == "Write `mean(xs)` returning the average of a list of numbers."
    assert sections["CRITERIA"] == "It must not fail on an empty list."
    assert strip_fence(sections["NAIVE_CODE"]).endswith("return sum(xs) / len(xs)")
    assert "# Criteria: none" in sections["NAIVE_CODE"]
    assert sections["FEEDBACK"].startswith("[IMPROVED_CODE] handles")


def test_header_sections_accept_markdown_headers_and_text_on_the_header_line():
    answer = ("**Instruction:** Sort a list.\n\n## Criteria\nStable.\n\n**[Naive Code]**\n```\nsorted(x)\n```\n"
              "Improved code:\n```py\nsorted(x, key=k)\n```\n__Feedback__: better.")
    sections, reason = header_sections(answer, SECTIONS)
    assert reason == ""
    assert sections == {"INSTRUCTION": "Sort a list.", "CRITERIA": "Stable.", "NAIVE_CODE": "```\nsorted(x)\n```",
                        "IMPROVED_CODE": "```py\nsorted(x, key=k)\n```", "FEEDBACK": "better."}


@pytest.mark.parametrize("answer, reason", [
    (WELL_FORMED.split("[FEEDBACK]")[0], "missing section FEEDBACK (or out of order)"),
    (WELL_FORMED.replace("[INSTRUCTION]", "[TMP]").replace("[CRITERIA]", "[INSTRUCTION]").replace("[TMP]",
                                                                                                   "[CRITERIA]"),
     "missing section CRITERIA (or out of order)"),
    (WELL_FORMED.replace("It must not fail on an empty list.", ""), "section CRITERIA is empty"),
    ("Instruction following matters.\n" + WELL_FORMED.split("[CRITERIA]")[1], "missing section INSTRUCTION (or "
                                                                               "out of order)"),
    ("", "missing section INSTRUCTION (or out of order)"),
])
def test_header_sections_name_what_a_broken_answer_lacks(answer, reason):
    assert header_sections(answer, SECTIONS) == ({}, reason)


def test_marked_sections_read_the_answer_after_its_last_reflection_and_report_a_block_cut_short():
    text = ("-- BEGIN [REFLECTION] --\nexample\n-- END [REFLECTION] --\n"
            "-- BEGIN [FEEDBACK] --\nthe example's\n-- END [FEEDBACK] --\n"
            "-- BEGIN [REFLECTION] --\nmine\n-- END [REFLECTION] --\n"
            "-- BEGIN [ATTEMPT_2] --\n```python\ndef f(:\n")
    found, missing = marked_sections(text, ["REFLECTION", "ATTEMPT_2", "FEEDBACK"], after="REFLECTION")
    assert found == {"REFLECTION": "mine"}
    assert missing == ["ATTEMPT_2", "FEEDBACK"]  # the example's feedback is not this answer's


@pytest.mark.parametrize("answer, expected", [
    ("[YES] It fixes a bug.", True), ("yes, clearly", True), ("**NO** - cosmetic", False), ("No.", False),
    ("The answer: [NO].", False), ("I would say [YES].", True), ("It depends.", None),
    ("[YES] or [NO]? Hard to say.", None), ("Nothing notable", None), ("", None),
])
def test_yes_or_no_reads_the_decision_or_says_there_is_none(answer, expected):
    assert yes_or_no(answer) is expected


def test_strip_fence_takes_a_fenced_block_or_the_text():
    assert strip_fence("Here:\n```python\nx = 1\n```\nthanks") == "x = 1"
    assert strip_fence("x = 2\n") == "x = 2"
    assert strip_fence("```python\ny = 3\n") == "y = 3"  # an answer cut before its closing fence


# ------------------------------------------------------------------------------------------------- prompts


def test_the_shipped_prompt_files_load_with_their_versions():
    for kind in ("commit_instruct", "critic_evol", "codefavor_judge"):
        prompts = load_prompts(kind)
        assert prompts.version >= 1 and prompts.label == f"{kind.replace('_', '-')}@{prompts.version}"


def test_a_prompt_file_without_a_needed_placeholder_is_refused_naming_it(tmp_path):
    path = tmp_path / "judge.yaml"
    path.write_text("name: codefavor-judge\nversion: 2\nsystem: ''\njudge: 'Pick one of {code_a} and {code_b}.'\n")
    with pytest.raises(ValueError, match=r"judge\.yaml: text 'judge' lacks placeholder\(s\).*\{criteria\}"):
        load_prompts("codefavor_judge", path)
    path.write_text("name: critic-evol\nversion: 2\njudge: x\n")
    with pytest.raises(ValueError, match="name is 'critic-evol', expected 'codefavor-judge'"):
        load_prompts("codefavor_judge", path)


def test_filling_a_prompt_replaces_only_its_placeholders(tmp_path):
    path = tmp_path / "ce.yaml"
    path.write_text("name: critic-evol\nversion: 7\nsystem: ''\ncritic: |\n  d = {'k': 1}  {unknown}\n"
                    "  {instruction} / {language} / {attempt}\n")
    prompts = load_prompts("critic_evol", path)
    text = prompts.fill("critic", instruction="do {x}", language="python", attempt="pass")
    assert text == "d = {'k': 1}  {unknown}\ndo {x} / python / pass"
    assert prompts.messages(text) == [{"role": "user", "content": text}]  # an empty system text sends none


# ------------------------------------------------------------------------------------------------- Commit-Instruct


def _commit(**kw) -> dict:
    return {"old_contents": "def f(x):\n    return x\n", "new_contents": "def f(x):\n    return x + 1\n",
            "message": "Fix f", **kw}


def test_read_commits_skips_unusable_commits_with_a_reason(tmp_path):
    path = tmp_path / "commits.jsonl"
    rows = [_commit(commit="a"), _commit(commit="b", new_contents="  "), _commit(commit="c", new_contents=
            "def f(x):\n    return x\n"), _commit(commit="d", lang="Go"), _commit(commit="e", license="gpl-3.0"),
            _commit(commit="f", lang="HTML+Django", license="mit")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    commits, skipped = read_commits(path, languages=["python", "html"], licenses=["mit", ""])
    assert [c.commit_id for c in commits] == ["a", "f"]
    assert commits[1].language == "html"
    assert [(s["source"], s["reason"]) for s in skipped] == [
        ("b", "empty old or new contents"), ("c", "no change"), ("d", "language 'go' not in ['python', 'html']"),
        ("e", "license 'gpl-3.0' not in ['mit', '']")]


def test_read_commits_names_the_line_and_field_of_a_bad_row(tmp_path):
    path = tmp_path / "commits.jsonl"
    path.write_text(json.dumps(_commit()) + "\n" + json.dumps({"old_contents": "x", "message": "m"}) + "\n")
    with pytest.raises(DataError, match=r"commits\.jsonl:2: field 'new_contents' is missing"):
        read_commits(path)
    path.write_text(json.dumps(_commit(commit="x")) + "\n" + json.dumps(_commit(commit="x")) + "\n")
    with pytest.raises(DataError, match=r":2: commit 'x' appears twice \(first on line 1\)"):
        read_commits(path)


def test_the_third_turn_carries_the_whole_conversation():
    prompts = load_prompts("commit_instruct")
    commit = Commit("c1", "Fix f", "old()", "new()", "python")
    messages = construct_messages(prompts, commit, "It renames a call.", "[YES] clearly better")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "old()" in messages[1]["content"] and "new()" in messages[1]["content"]
    assert messages[2]["content"] == "It renames a call." and messages[4]["content"] == "[YES] clearly better"
    assert "[IMPROVED_CODE]" in messages[5]["content"]


def test_decision_of_goes_on_only_after_yes():
    assert decision_of("[YES] sure") == (True, "")
    assert decision_of("[NO] minor") == (False, "not an improvement ([NO])")
    assert decision_of("maybe") == (False, "no [YES]/[NO] decision")


def test_a_well_formed_answer_makes_a_pair_with_its_provenance():
    prompts = load_prompts("commit_instruct")
    commit = Commit("abc123", "Guard empty lists", "old", "new", "python", "mit")
    pair, reason = pair_from_answer(commit, WELL_FORMED, prompts, "judge-70b")
    assert reason == ""
    assert pair["chosen"] == "def mean(xs):\n    return sum(xs) / len(xs) if xs else 0.0"
    assert pair["rejected"].endswith("return sum(xs) / len(xs)")
    assert pair["objective"] == "improvement" and pair["task_id"] == "abc123"
    assert pair["criteria"] == "It must not fail on an empty list."
    assert pair["provenance"] == {"method": "commit-instruct", "prompts": "commit-instruct@1", "model": "judge-70b",
                                  "commit": "abc123", "language": "python", "license": "mit"}


def test_an_answer_with_the_same_code_twice_is_dropped():
    prompts = load_prompts("commit_instruct")
    same = WELL_FORMED.replace("return sum(xs) / len(xs) if xs else 0.0", "return sum(xs) / len(xs)")
    same = same.replace("    # Criteria: none (a header-like comment inside code is code)\n", "")
    assert pair_from_answer(Commit("c", "m", "o", "n", "python"), same, prompts, "m") == (
        None, "naive and improved code are the same")


# ------------------------------------------------------------------------------------------------- Critic-Evol

ATTEMPT = Attempt("demo/add#0", "demo/add", "Add two numbers.", "def add(a, b):\n    return a * b", "python", True)


def _critique(second: str = "def add(a, b):\n    return a + b", feedback: str = "[ATTEMPT_2] adds; [ATTEMPT_1] "
              "multiplies.") -> str:
    return ("-- BEGIN [REFLECTION] --\nIt multiplies.\n-- END [REFLECTION] --\n"
            "-- BEGIN [CRITERIA] --\nReturn the sum.\n-- END [CRITERIA] --\n"
            f"-- BEGIN [ATTEMPT_2] --\n```python\n{second}\n```\n-- END [ATTEMPT_2] --\n"
            f"-- BEGIN [FEEDBACK] --\n{feedback}\n-- END [FEEDBACK] --\n")


def test_a_critique_is_read_into_its_parts():
    critique, reason = read_critique(_critique(), ATTEMPT)
    assert reason == ""
    assert critique == {"reflection": "It multiplies.", "criteria": "Return the sum.",
                        "attempt_2": "def add(a, b):\n    return a + b",
                        "feedback": "[ATTEMPT_2] adds; [ATTEMPT_1] multiplies."}


@pytest.mark.parametrize("answer, reason", [
    ("-- BEGIN [REFLECTION] --\nFine as it is.\n-- END [REFLECTION] --", NO_IMPROVEMENT),
    ("No markers at all.", "missing section REFLECTION"),
    (_critique().split("-- BEGIN [FEEDBACK]")[0], "missing section FEEDBACK"),
    (_critique(second="def add(a, b):\n    return (a +"), "the second attempt does not parse (SyntaxError: "),
    (_critique(second="def add(a, b):\n    return a * b"), "the second attempt is the first"),
    (_critique(feedback="Better now."), "the feedback names neither [ATTEMPT_1] nor [ATTEMPT_2]"),
])
def test_a_critique_that_makes_no_pair_says_why(answer, reason):
    critique, got = read_critique(answer, ATTEMPT)
    assert critique is None and got.startswith(reason)


def test_regressions_are_the_tests_the_first_passed_and_the_second_did_not():
    first = [{"name": "t1", "passed": True}, {"name": "t2", "passed": False}, {"name": "t3", "passed": True}]
    second = [{"name": "t1", "passed": True}, {"name": "t2", "passed": True}]  # t3 missing: not passed
    assert regressions(first, second) == ["t3"]
    assert regressions(second, first) == ["t2"]
    assert regressions(first, first) == []


def test_a_critic_evol_pair_chooses_the_second_attempt_and_records_the_checks():
    critique, _ = read_critique(_critique(), ATTEMPT)
    pair = pair_from_critique(ATTEMPT, critique, load_prompts("critic_evol"), "critic", {"first_passed": False,
                                                                                         "second_passed": True})
    assert (pair["chosen"], pair["rejected"]) == (critique["attempt_2"], ATTEMPT.program)
    assert pair["feedback"] == "[IMPROVED_CODE] adds; [NAIVE_CODE] multiplies."
    assert pair["provenance"]["method"] == "critic-evol" and pair["provenance"]["sample"] == "demo/add#0"
    assert pair["provenance"]["tests"] == {"first_passed": False, "second_passed": True}


# ------------------------------------------------------------------------------------------------- pairs, bench rows


def test_pair_ids_are_stable_and_depend_on_which_program_is_chosen():
    kw = dict(task_id="t", instruction="i", criteria="c", objective="correctness", provenance={"method": "execution"})
    one = make_pair(chosen="a", rejected="b", **kw)
    assert one["pair_id"] == make_pair(chosen="a", rejected="b", **kw)["pair_id"]
    assert one["pair_id"] != make_pair(chosen="b", rejected="a", **kw)["pair_id"]
    with pytest.raises(ValueError, match="objective 'speed'"):
        make_pair(chosen="a", rejected="b", **{**kw, "objective": "speed"})


def test_bench_rows_put_the_chosen_program_at_gt_choice_about_half_the_time_each():
    pairs = [make_pair(task_id=f"t{i}", instruction="i", criteria="c", chosen=f"good{i}", rejected=f"bad{i}",
                       objective="correctness", provenance={"method": "execution"}) for i in range(40)]
    rows = bench_rows(pairs, seed=3)
    assert all(r["choices"][r["gt_choice"]] == f"good{i}" and r["choices"][1 - r["gt_choice"]] == f"bad{i}"
               for i, r in enumerate(rows))
    assert 10 <= sum(r["gt_choice"] for r in rows) <= 30
    assert rows == bench_rows(pairs, seed=3)


# ------------------------------------------------------------------------------------------------- execution pairs


class _Problem:
    prompt = "def f(x):\n"


def _row(sample_id: int, passed: bool, program: str, status: str | None = None, runtime: float = 0.001) -> dict:
    return {"task_id": "T", "sample_id": sample_id, "program_sha": program[:8] + str(len(program)), "passed": passed,
            "status": status or ("passed" if passed else "failed"), "program": program, "error": "",
            "tests": [{"name": "check", "passed": passed, "duration_s": runtime}], "duration_s": 0.02}


def test_a_program_that_both_passed_and_failed_makes_no_correctness_pair():
    rows = {"T": [_row(0, True, "flaky"), _row(1, False, "flaky", status="timeout"), _row(2, False, "bad"),
                  _row(3, True, "good")]}
    pairs = correctness_pairs(rows, {"T": _Problem()}, max_pairs=5)
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("good", "bad")]


def test_correctness_pairs_join_distinct_passing_and_failing_programs_up_to_the_cap():
    rows = {"T": [_row(0, True, "good1"), _row(1, True, "good1"), _row(2, True, "good2"), _row(3, False, "bad1")]}
    pairs = correctness_pairs(rows, {"T": _Problem()}, max_pairs=5)
    assert sorted((p["chosen"], p["rejected"]) for p in pairs) == [("good1", "bad1"), ("good2", "bad1")]
    assert all(p["criteria"] == OBJECTIVE_CRITERIA["correctness"] and p["objective"] == "correctness" for p in pairs)
    assert {p["provenance"]["rejected_status"] for p in pairs} == {"failed"}
    assert len(correctness_pairs(rows, {"T": _Problem()}, max_pairs=1)) == 1


def test_efficiency_pairs_need_every_repeat_to_differ_by_the_factor():
    by_task = {"T": [_row(0, True, "fast"), _row(1, True, "slow"), _row(2, True, "close"), _row(3, True, "flaky")]}
    samples, programs = timing_samples(by_task, max_programs=6, repeats=3)
    assert len(samples) == 12 and len({(s.sample_id) for s in samples}) == 12
    index = {row["program"]: k for k, row in enumerate(programs["T"])}
    times = {"fast": [0.010, 0.012, 0.011], "slow": [0.030, 0.040, 0.035], "close": [0.020, 0.022, 0.05],
             "flaky": [0.5, 0.5, 0.5]}
    timing = [_row(index[p] * 3 + r, not (p == "flaky" and r == 1), p, runtime=t)
              for p, ts in times.items() for r, t in enumerate(ts)]
    pairs, unstable = efficiency_pairs(programs, timing, {"T": _Problem()}, repeats=3, factor=2.0, min_gap_s=0.005,
                                       max_pairs=4)
    # fast-slow: min(slow)=0.030 >= 2 x max(fast)=0.024 and 0.018 more; fast-close: 0.020 < 0.024; close-slow:
    # 0.030 < 2 x 0.05; flaky failed a repeat: left out
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("fast", "slow")]
    assert pairs[0]["provenance"]["chosen_runtimes_s"] == times["fast"]
    assert pairs[0]["provenance"]["ratio"] == pytest.approx(0.035 / 0.011, abs=1e-3)
    assert unstable == ["T#3"]  # flaky is sample 3 of the evaluation


def test_runtime_of_sums_test_durations_or_falls_back_to_the_run():
    assert runtime_of({"tests": [{"duration_s": 0.5}, {"duration_s": 0.25}], "duration_s": 9}) == 0.75
    assert runtime_of({"tests": [{"duration_s": 0.0}], "duration_s": 0.3}) == 0.3


# ------------------------------------------------------------------------------------------------- the bench


def _bench_row(task_id: str, gt: int, **kw) -> dict:
    return {"task_id": task_id, "instruction": "Add.", "choices": ["x", "y"], "gt_choice": gt, **kw}


def test_read_bench_takes_the_objective_from_the_row_or_a_codeprefbench_file_name(tmp_path):
    with gzip.open(tmp_path / "security-alignment.jsonl.gz", "wt") as f:
        f.write(json.dumps(_bench_row("CSE/1", 0)) + "\n" + json.dumps(_bench_row("CSE/1", 1)) + "\n")
    (tmp_path / "mine.jsonl").write_text(json.dumps(_bench_row("M/1", 1, objective="style", criteria="Short.")) + "\n")
    tasks = read_bench(tmp_path)
    assert [(t.key, t.objective, t.gt_choice) for t in tasks] == [
        ("style/M/1", "style", 1), ("security/CSE/1", "security", 0), ("security/CSE/1#2", "security", 1)]
    assert tasks[1].criteria == OBJECTIVE_CRITERIA["security"] and tasks[0].criteria == "Short."


@pytest.mark.parametrize("row, message", [
    (_bench_row("a", 0, objective="correctness", choices=["x"]), "field 'choices' must be a list of two"),
    (_bench_row("a", True, objective="correctness"), "field 'gt_choice' must be 0 or 1"),
    (_bench_row("a", 1.0, objective="correctness"), "field 'gt_choice' must be 0 or 1"),
    (_bench_row("a", 1, objective="correctness", criteria=["x"]), "field 'criteria' must be a string"),
    (_bench_row("a", 0), "no objective"),
    (_bench_row("a", 0, objective="style"), "objective 'style' has no default criteria"),
    ({"instruction": "x"}, "field 'task_id' is missing"),
])
def test_read_bench_names_file_line_and_field_of_a_bad_row(tmp_path, row, message):
    path = tmp_path / "bench.jsonl"
    path.write_text(json.dumps(_bench_row("ok", 0, objective="correctness")) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"bench\.jsonl:2: " + message):
        read_bench(path)


def test_both_order_accounting_worked_out_by_hand(tmp_path):
    path = tmp_path / "bench.jsonl"
    rows = [_bench_row("t1", 0, objective="correctness"), _bench_row("t2", 1, objective="correctness"),
            _bench_row("t3", 0, objective="efficiency"), _bench_row("t4", 1, objective="efficiency")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks = read_bench(path)
    verdicts = {
        "correctness/t1": ("A", "B"),   # right both times (better = choices[0]: A as stored, B swapped): 1, 1
        "correctness/t2": ("A", "A"),   # always A: wrong as stored (better is B), right swapped: 0, 1
        "efficiency/t3": (None, "B"),   # unreadable, then right: 0.5, 1
        "efficiency/t4": ("A", None),   # wrong, unreadable: 0, 0.5
    }
    s = summarize(tasks, verdicts, meta={"judge": "llm"})
    assert s["objectives"]["correctness"]["accuracy"] == pytest.approx((1 + 1 + 0 + 1) / 4)
    assert s["objectives"]["efficiency"]["accuracy"] == pytest.approx((0.5 + 1 + 0 + 0.5) / 4)
    assert s["accuracy"] == pytest.approx(5 / 8)
    assert s["macro_accuracy"] == pytest.approx((0.75 + 0.5) / 2)
    assert s["accuracy_as_given"] == pytest.approx((1 + 0 + 0.5 + 0) / 4)
    assert s["accuracy_swapped"] == pytest.approx((1 + 1 + 1 + 0.5) / 4)
    assert s["undecided"] == pytest.approx(2 / 8)
    # decided verdicts: A, B, A, A, B, A -> 4 of 6 name A
    assert s["position_bias"] == pytest.approx(4 / 6 - 0.5)
    # same program both times: t1 only (A then B); t2 named both programs; t3, t4 had an undecided ask
    assert s["consistency"] == pytest.approx(1 / 4)
    assert s["objectives"]["correctness"]["position_bias"] == pytest.approx(3 / 4 - 0.5)
    assert s["judge"] == "llm" and s["tasks"] == 4


def test_bench_criteria_come_from_the_row_then_the_given_table_then_the_defaults(tmp_path):
    path = tmp_path / "bench.jsonl"
    rows = [_bench_row("a", 0, objective="correctness"), _bench_row("b", 0, objective="security", criteria="Own."),
            _bench_row("c", 1, objective="style")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks = read_bench(path, criteria={"correctness": "CodeFavor's text.", "style": "Short."})
    assert [t.criteria for t in tasks] == ["CodeFavor's text.", "Own.", "Short."]


def test_comments_are_removed_from_python_programs_as_codefavor_shows_them():
    code = 'def f(x):\n    """Doc."""\n    # the answer is 42\n    return x  # trailing\n'
    assert without_comments(code) == 'def f(x):\n    """Doc."""\n    return x'
    assert without_comments("def f(:  # broken") == "def f(:  # broken"
    assert without_comments("int f() { return 1; } // c", "cpp") == "int f() { return 1; } // c"


def test_a_prompt_file_edited_without_a_new_version_has_another_sha(tmp_path):
    path = tmp_path / "judge.yaml"
    shipped = load_prompts("codefavor_judge")
    path.write_text((Path(shipped.path)).read_text().replace("Judge which", "Decide which"))
    edited = load_prompts("codefavor_judge", path)
    assert edited.label == shipped.label and edited.sha != shipped.sha


def test_an_ask_scores_one_zero_or_half():
    assert (ask_score("A", "A"), ask_score("B", "A"), ask_score(None, "B")) == (1.0, 0.0, 0.5)


@pytest.mark.parametrize("answer, expected", [
    ("[FEEDBACK]\nA is buggy.\n\n[RESULT]\n[CODE_B] is better than [CODE_A] on the mentioned criteria.", "B"),
    ("[RESULT] Code A is better.", "A"),
    ("[RESULT] [CODE_A] is worse than [CODE_B].", "B"),
    ("Code A is better. [RESULT] In the end [CODE_B] is better than [CODE_A].", "B"),
    ("[RESULT]\nTherefore [CODE_A] is better than [CODE_B]. [CODE_B] is slightly better on style.", "A"),
    ("[RESULT] [CODE_A] is not better than [CODE_B].", None),
    ("[RESULT] Neither is better.", None),
    ("[RESULT] [CODE_?] is better than [CODE_?]", None),
    ("Answer: B", "B"),
    ("", None),
    ("Compared with [CODE_A], [CODE_B] is better.", "B"),
    ("Between [CODE_A] and [CODE_B], [CODE_B] is better.", "B"),
    ("While [CODE_B] is better documented, [CODE_A] is better than [CODE_B] on the criteria.", "A"),
    ("[CODE_A] is worse than [CODE_B] because its result is wrong.", "B"),
    ("[CODE_A] is worse than [CODE_B] because it doesn't handle empty lists.", "B"),
    ("[CODE_B] outperforms [CODE_A].", "B"),
    ("Neither [CODE_A] nor [CODE_B] is better.", None),
    ("[CODE_A] is no better than [CODE_B].", None),
])
def test_parse_result_reads_codefavor_verdicts(answer, expected):
    assert parse_result(answer) == expected


# ------------------------------------------------------------------------------------------------- training reads pairs


def test_the_preference_and_reward_readers_take_the_synthetic_pair_schema(tmp_path, tiny_model):
    from transformers import AutoTokenizer

    from raylib.train.data.reward import preference_prompt, read_pair_file, read_preference_file, task_text

    pair = make_pair(task_id="t", instruction="Add two numbers.", criteria="Return the sum.", chosen="a + b",
                     rejected="a - b", objective="improvement", provenance={"method": "critic-evol"})
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(pair) + "\n")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    examples = read_preference_file(path, tokenizer, max_len=512)
    assert [e["label"] for e in examples] == [0, 1]
    text = preference_prompt("Add two numbers.", "a + b", "a - b", "Return the sum.")
    assert "## Criteria\nReturn the sum.\n\n## Code A" in text
    assert examples[0]["input_ids"] == tokenizer(text)["input_ids"]
    [rm] = read_pair_file(path, tokenizer, max_len=512)
    assert rm["chosen_ids"] == tokenizer(task_text("Add two numbers.", "Return the sum."), "a + b")["input_ids"]
    assert task_text("Add two numbers.", "Return the sum.") == "Add two numbers.\n\nCriteria: Return the sum."


# ------------------------------------------------------------------------------------------------- what review found


@pytest.mark.parametrize("answer", [
    WELL_FORMED.replace("[IMPROVED_CODE] handles", "Improved code: handles"),            # a mention with a colon
    WELL_FORMED.replace("[IMPROVED_CODE] handles", "[IMPROVED_CODE]: handles"),
    WELL_FORMED.replace("returning the average", "returning the average.\nInstruction: do not use statistics"),
    WELL_FORMED.replace("\n", "\r\n"),                                                     # Windows line endings
    WELL_FORMED.replace("[CRITERIA]\n", "[CRITERIA]\n```sorted``` is not the point;\n"),    # an inline fence
    ("1. **Instruction**\nMean.\n### 2. Criteria\nEmpty lists.\n*Naive Code (Python)*\n```\nf()\n```\n"
     "Improved Code (Python):\n```\ng()\n```\n## Feedback\nBetter."),                      # other header styles
])
def test_header_sections_read_well_formed_answers_with_header_like_lines_in_them(answer):
    sections, reason = header_sections(answer, SECTIONS)
    assert reason == "" and set(sections) == set(SECTIONS)
    assert "\r" not in "".join(sections.values())


@pytest.mark.parametrize("answer, expected", [
    ("No doubt, this is a clear improvement. [YES]", True), ("Yes and no. [NO]", False),
    ("[YES]\nThe old code used `if x == [NO]`.", True), ("I cannot say [Yes] or [No] definitively, but [YES]", True),
    ("[NO] - but [YES] for style", False), ("Hmm: [YES] and later [NO].", None),
])
def test_yes_or_no_prefers_the_bracketed_answer_outside_code(answer, expected):
    assert yes_or_no(answer) is expected


@pytest.mark.parametrize("text, code", [
    ("```python\nx = '```'\n```", "x = '```'"),                   # a fence inside a line is not the end
    ("````\nprint('```')\n````", "print('```')"),
    ("~~~python\ny = 1\n~~~", "y = 1"),
    ("  ```python\n  def f():\n      return 1\n  ```", "def f():\n    return 1"),   # indented: dedented
    ("```python\r\nz = 2\r\n```", "z = 2"),
])
def test_strip_fence_reads_the_fences_models_write(text, code):
    assert strip_fence(text) == code


def test_a_critique_that_repeats_the_improvable_example_before_finding_nothing_makes_no_pair():
    example = _critique(second="def has_duplicates(items):\n    return len(set(items)) < len(items)")
    answer = example + "-- BEGIN [REFLECTION] --\nThe attempt is fine.\n-- END [REFLECTION] --\n"
    assert read_critique(answer, ATTEMPT) == (None, NO_IMPROVEMENT)
