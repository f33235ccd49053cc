"""Evaluation building blocks: time limits from the reference runtime, and the resumable results file."""

from __future__ import annotations

import json

from raylib.data.samples import Sample
from raylib.evaluate.limits import reference_seconds, time_limit
from raylib.evaluate.results_file import ResultsFile
from raylib.evaluate.stage import ExecutionPool, actors_that_fit
from sandbox.schema import ExecResult, TestVerdict


def test_time_limit_is_factor_times_the_reference_with_a_floor_else_the_dataset_or_default():
    assert time_limit(0.01, floor_s=1.0, factor=4.0, default_s=10.0) == 1.0
    assert time_limit(0.5, floor_s=1.0, factor=4.0, default_s=10.0) == 2.0
    assert time_limit(None, floor_s=1.0, factor=4.0, default_s=10.0, dataset_limit_s=2.5) == 2.5
    assert time_limit(None, floor_s=1.0, factor=4.0, default_s=10.0) == 10.0


def test_reference_time_is_the_slowest_execution_and_unknown_when_the_reference_fails():
    cases = [TestVerdict(0, "case 0", True, "passed", duration_s=0.2),
             TestVerdict(1, "case 1", True, "passed", duration_s=0.7)]
    assert reference_seconds(ExecResult("passed", True, duration_s=1.5, tests=cases)) == 0.7
    assert reference_seconds(ExecResult("passed", True, duration_s=1.5)) == 1.5
    assert reference_seconds(ExecResult("failed", False, duration_s=0.1, tests=cases)) is None


def row(sample: Sample, status: str) -> dict:
    return {"task_id": sample.task_id, "sample_id": sample.sample_id, "program_sha": sample.sha,
            "passed": status == "passed", "status": status}


def test_results_file_resumes_cuts_a_torn_line_and_never_writes_a_key_twice(tmp_path):
    a, b, c = Sample("t/1", 0, "print(1)"), Sample("t/0", 0, "print(2)"), Sample("t/0", 1, "print(3)")
    store = ResultsFile(tmp_path / "results.jsonl")
    assert store.append([row(a, "passed"), row(b, "sandbox-error")]) == 2
    assert store.append([row(a, "passed")]) == 0  # delivered twice (a retried task): written once
    store.close()
    with open(tmp_path / "results.jsonl", "a") as f:
        f.write('{"task_id": "t/0", "sample_id": 1, "progr')  # the process died mid-write
    store = ResultsFile(tmp_path / "results.jsonl")
    assert store.done == {store.key_of(a)}  # the sandbox-error row is not done; the torn line is gone
    assert store.append([row(b, "failed"), row(c, "passed")]) == 2
    rows = store.finalize([a, b, c], {"t/0": 0, "t/1": 1})
    assert [(r["task_id"], r["sample_id"], r["status"]) for r in rows] == [("t/0", 0, "failed"), ("t/0", 1, "passed"),
                                                                           ("t/1", 0, "passed")]
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["failed", "passed", "passed"]


def test_a_changed_program_is_evaluated_again(tmp_path):
    old, new = Sample("t/0", 0, "print(1)"), Sample("t/0", 0, "print(2)")
    store = ResultsFile(tmp_path / "results.jsonl")
    store.append([row(old, "passed")])
    store.close()
    store = ResultsFile(tmp_path / "results.jsonl")
    assert store.key_of(new) not in store.done
    store.append([row(new, "failed")])
    assert [r["program_sha"] for r in store.finalize([new], {"t/0": 0})] == [new.sha]
    stale = (tmp_path / "results.stale.jsonl").read_text().splitlines()  # kept aside, never deleted
    assert store.stale_rows == 1 and [json.loads(line)["program_sha"] for line in stale] == [old.sha]


def test_rows_holding_line_separator_characters_survive_a_reopen(tmp_path):
    sample = Sample("t/0", 0, "print('a\u2028b\x85c')")  # str.splitlines() would cut these rows apart
    store = ResultsFile(tmp_path / "results.jsonl")
    store.append([{**row(sample, "passed"), "program": sample.program}])
    store.close()
    assert ResultsFile(tmp_path / "results.jsonl").done == {store.key_of(sample)}


def test_the_pipeline_refuses_an_unclear_call_before_it_starts_anything(tmp_path):
    import pytest

    from raylib.data.problems import load_problems
    from raylib.evaluate.pipeline import evaluate
    from raylib.generate.settings import GenerationSettings

    problems = dict(list(load_problems("humaneval").items())[:2])
    sample = Sample("HumanEval/0", 0, "pass\n")
    with pytest.raises(ValueError, match="not both and not neither"):
        evaluate(problems, tmp_path, samples=[sample], generation=GenerationSettings())
    with pytest.raises(ValueError, match="not both and not neither"):
        evaluate(problems, tmp_path)
    with pytest.raises(ValueError, match="no samples"):
        evaluate(problems, tmp_path, samples=[])
    with pytest.raises(ValueError, match=r"not among the problems: \['HumanEval/7'\]"):
        evaluate(problems, tmp_path, samples=[sample, Sample("HumanEval/7", 0, "pass\n")])
    assert list(tmp_path.iterdir()) == []  # nothing written, no cluster joined


def test_execution_actors_are_sized_per_node_so_every_one_fits_on_a_node():
    pool = ExecutionPool(workers_per_actor=2)
    nodes = [{"CPU": 3.0}, {"CPU": 3.0}, {"CPU": 1.0}]
    # per node floor(3/2) + floor(3/2) + floor(1/2) = 2, where the cluster's 7 CPUs / 2 would have asked for 3
    assert actors_that_fit(pool, nodes) == 1 + 1 + 0
    assert actors_that_fit(pool, [{"CPU": 8.0}], reserved_cpus=1) == 4 - 1  # an engine actor's CPU costs one actor
    assert actors_that_fit(pool, [{"CPU": 8.0}], reserved_cpus=2.5) == 4 - 2
    # custom resources: only the nodes that have them, as many as they allow
    pinned = ExecutionPool(workers_per_actor=1, resources={"sandbox": 1})
    assert actors_that_fit(pinned, [{"CPU": 4.0, "sandbox": 2.0}, {"CPU": 16.0}, {"CPU": 1.0, "sandbox": 5.0}]) == 2 + 1
    assert actors_that_fit(pinned, [{"CPU": 16.0}]) == 1  # none fits anywhere: one, which waits for a node
