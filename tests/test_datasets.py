"""Training data builders over evaluation results, with the expected examples worked out by hand."""

from __future__ import annotations

import json

import pytest

from jobs import build_datasets
from raylib.data.problems import load_problems
from raylib.files import DataError
from raylib.train.data.from_results import (
    balanced_orm_examples,
    orm_examples,
    preference_pairs,
    read_results,
    sft_examples,
)


@pytest.fixture(scope="module")
def problems():
    return load_problems("humaneval")


def result(task_id, program, status):
    return {"task_id": task_id, "sample_id": 0, "program": program, "passed": status == "passed", "status": status}


def rows_for(problems):
    prompt = problems["HumanEval/0"].prompt
    good, good2, bad = prompt + "    return True\n", prompt + "    return 1 == 1\n", prompt + "    return None\n"
    return [
        result("HumanEval/0", good, "passed"), result("HumanEval/0", good, "passed"),  # sampled twice: kept once
        result("HumanEval/0", good2, "passed"), result("HumanEval/0", bad, "failed"),
        result("HumanEval/0", "def x(:", "compile-error"), result("HumanEval/0", "lost", "sandbox-error"),
        result("HumanEval/0", "", "generation-error"), result("HumanEval/0", " \n", "failed"),  # no program: out
        result("HumanEval/1", "def separate_paren_groups(s):\n    return []\n", "failed"),  # no pass: no pair, no sft
    ], (good, good2, bad)


def test_orm_examples_are_distinct_programs_labelled_by_outcome_without_infrastructure_failures(problems):
    rows, (good, good2, bad) = rows_for(problems)
    orm = orm_examples(rows, problems)
    assert [(e["task_id"], e["program"], e["label"]) for e in orm] == [
        ("HumanEval/0", good, 1), ("HumanEval/0", good2, 1), ("HumanEval/0", bad, 0), ("HumanEval/0", "def x(:", 0),
        ("HumanEval/1", "def separate_paren_groups(s):\n    return []\n", 0)]
    assert orm[0]["prompt"] == problems["HumanEval/0"].prompt


def test_balanced_orm_examples_take_min_of_both_classes_per_problem_then_balance_overall(problems):
    a, b, c, d = (f"HumanEval/{i}" for i in range(4))
    rows = ([result(a, f"pass {i}", "passed") for i in range(3)] + [result(a, "fail", "failed")]
            + [result(b, f"fail {i}", "failed") for i in range(3)]  # one class only: still one program (CodeRM)
            + [result(c, f"pass {i}", "passed") for i in range(2)]
            + [result(c, f"fail {i}", "failed") for i in range(2)]
            + [result(d, "pass", "passed")])  # one program of one class: none
    # per problem (max 1 per class): a 1+1, b 0+1, c 1+1, d 0+0 -> 2 passing, 3 failing -> 2 of each overall
    orm = balanced_orm_examples(rows, problems, max_per_class=1)
    assert sorted(e["label"] for e in orm) == [0, 0, 1, 1]
    assert sorted(e["task_id"] for e in orm if e["label"] == 1) == [a, c]
    failing = [e["task_id"] for e in orm if e["label"] == 0]
    assert len(set(failing)) == 2 and set(failing) <= {a, b, c}
    assert orm == balanced_orm_examples(rows, problems, max_per_class=1)  # deterministic for a seed
    # max 2 per class: a 1+1 (one failing program), b 0+1, c 2+2 -> 3 passing, 4 failing -> 3 of each
    assert sorted(e["label"] for e in balanced_orm_examples(rows, problems, max_per_class=2)) == [0, 0, 0, 1, 1, 1]
    assert set(orm[0]) == {"task_id", "prompt", "program", "label", "status"}


def test_pairs_take_every_pass_fail_combination_once_before_repeating_none(problems):
    rows, (good, good2, bad) = rows_for(problems)
    pairs = preference_pairs(rows, problems, max_per_task=10)
    # HumanEval/0: 2 passing x 2 failing programs = 4 pairs, all different; HumanEval/1 has no passing program
    assert len(pairs) == 4 and {p["task_id"] for p in pairs} == {"HumanEval/0"}
    assert {(p["chosen"], p["rejected"]) for p in pairs} == {(g, b) for g in (good, good2) for b in (bad, "def x(:")}
    # capped: with 2, each passing program is used once (the diagonal order spreads them)
    assert sorted(p["chosen"] for p in preference_pairs(rows, problems, max_per_task=2)) == sorted([good, good2])
    drawn = preference_pairs(rows, problems, max_per_task=3, seed=1)
    assert drawn == preference_pairs(rows, problems, max_per_task=3, seed=1)


def test_sft_examples_are_passing_programs_as_completion_and_chat(problems):
    rows, (good, good2, _) = rows_for(problems)
    sft = sft_examples(rows, problems, max_per_task=1)
    assert len(sft) == 1 and sft[0]["completion"] in ("    return True\n", "    return 1 == 1\n")
    assert sft[0]["messages"][1]["content"].startswith("```python\nfrom typing import List")
    assert len(sft_examples(rows, problems, max_per_task=5)) == 2


def test_build_datasets_job_writes_the_three_files_and_rejects_wrong_input(problems, tmp_path, capsys):
    rows, _ = rows_for(problems)
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert build_datasets.main(["--results", str(results), "--output", str(tmp_path / "data")]) == 0
    counts = {name: len((tmp_path / "data" / name).read_text().splitlines())
              for name in ("orm.jsonl", "pairs.jsonl", "sft.jsonl")}
    assert counts == {"orm.jsonl": 5, "pairs.jsonl": 4, "sft.jsonl": 2}
    assert "orm.jsonl 5 (2 pass, 3 fail)" in capsys.readouterr().out
    assert build_datasets.main(["--results", str(results), "--output", str(tmp_path / "bal"), "--orm-per-class",
                                "5"]) == 0
    # HumanEval/0: 2 + 2; HumanEval/1: one program, none
    assert "orm.jsonl 4 (2 pass, 2 fail)" in capsys.readouterr().out
    (tmp_path / "bad.jsonl").write_text('{"task_id": "HumanEval/0", "passed": true}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: results row lacks \['status', 'program'\]"):
        read_results(tmp_path / "bad.jsonl")
    assert build_datasets.main(["--results", str(tmp_path / "bad.jsonl"), "--output", str(tmp_path / "x")]) == 2
    mbpp_like = tmp_path / "other.jsonl"
    mbpp_like.write_text(json.dumps(result("Mbpp/2", "x", "failed")) + "\n")
    assert build_datasets.main(["--results", str(mbpp_like), "--output", str(tmp_path / "y")]) == 2
    assert "not in humaneval" in capsys.readouterr().err


def test_limit_keeps_the_results_of_the_datasets_first_problems_only(problems, tmp_path):
    rows, _ = rows_for(problems)
    later = problems["HumanEval/1"].prompt + "    return []\n"
    rows.append(result("HumanEval/1", later, "passed"))
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert build_datasets.main(["--results", str(results), "--limit", "1", "--output", str(tmp_path / "d")]) == 0
    sft = [json.loads(line) for line in (tmp_path / "d" / "sft.jsonl").read_text().splitlines()]
    assert sft and {row["task_id"] for row in sft} == {"HumanEval/0"}  # HumanEval/1 is held out


def test_a_trial_measures_on_the_problems_after_skip_then_limit():
    from raylib.tune.metrics import problems_of

    assert list(problems_of({"dataset": "humaneval", "skip": 100, "limit": 3})) == \
        ["HumanEval/100", "HumanEval/101", "HumanEval/102"]
    assert len(problems_of({"dataset": "humaneval", "skip": 100})) == 64


def test_a_subset_that_leaves_no_problem_is_an_error():
    from raylib.data.problems import load_problems, subset

    problems = load_problems("humaneval")
    assert list(subset(problems, 160)) == [f"HumanEval/{i}" for i in range(160, 164)]
    with pytest.raises(ValueError, match="no problems left after skipping the first 164 of 164"):
        subset(problems, 164)
