"""LLMExecutor end to end: jobs/build_traces.py on HumanEval and program files, jobs/ase.py on given and generated
predictions, and RVBS (a reward model trained by jobs/train_rm.py, a selector by jobs/train_selector.py) on tiny
models."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import jobs.ase as ase_job
import jobs.build_traces as build_job

PROGRAMS = {
    "sum_input": ("n = int(input())\ntotal = 0\nfor k in range(n):\n    total += k\nprint(total)\n", ["3\n", "1\n"]),
    "gcd": ("import math\na, b = map(int, input().split())\ng = math.gcd(a, b)\nif g == 1:\n    print('coprime')\n"
            "else:\n    print(g)\n", ["4 6\n", "3 5\n"]),
    "escapes": ("import os\nprint(os.getcwd())\n", ["\n"]),  # outside the traceable subset: refused
}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def traces(ray_cluster, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("traces")
    programs = root / "programs"
    programs.mkdir()
    for name, (code, inputs) in PROGRAMS.items():
        (programs / f"{name}.py").write_text(code)
        for k, text in enumerate(inputs):
            (programs / f"{name}.{k}.in").write_text(text)
    output = root / "out"
    assert build_job.main(["--dataset", "humaneval", "--limit", "6", "--programs", str(programs), "--output",
                           str(output), "--inputs_per_problem", "2", "--splits", '{"train": 0.5, "test": 0.5}']) == 0
    return output


def test_build_traces_writes_both_variants_split_by_program(traces):
    summary = json.loads((traces / "build_summary.json").read_text())
    assert summary["runs"] == 6 * 2 + 2 + 2 + 1 and summary["refused"] == 1 and summary["analysis"] == "template"
    sft = {name: read_jsonl(traces / "sft" / f"{name}.jsonl") for name in ("train", "test")}
    swa = {name: read_jsonl(traces / "swa" / f"{name}.jsonl") for name in ("train", "test")}
    programs = {name: {i["program_id"] for i in items} for name, items in sft.items()}
    assert programs["train"] and programs["test"] and not programs["train"] & programs["test"]
    assert {p for ps in programs.values() for p in ps} >= {"sum_input", "gcd", "HumanEval/0"}
    assert [i["item_id"] for i in sft["train"]] == [i["item_id"] for i in swa["train"]]
    assert all("Analysis: " in i["output"] for i in sft["train"]) and not any("Analysis" in i["output"]
                                                                              for i in swa["train"])
    refused = read_jsonl(traces / "refused.jsonl")
    assert [(r["trace_id"], r["error"].split(" (allowed")[0]) for r in refused] == [
        ("escapes#0", "not traceable: solution.py:1: module 'os' is not available when tracing")]


def test_a_program_file_trace_is_the_one_read_by_hand(traces):
    rows = {r["trace_id"]: r for r in read_jsonl(traces / "traces.jsonl")}
    steps = rows["gcd#1"]["trace"]["steps"]
    assert [(s["line"], s["next"]) for s in steps] == [(1, 2), (2, 3), (3, 4), (4, 5), (5, "<END>")]
    assert steps[2]["vars"] == {"a": "3", "b": "5", "g": "1"}


def test_items_without_a_field_or_with_a_broken_program_are_errors_naming_file_and_line(traces, tmp_path, capsys):
    items = read_jsonl(traces / "sft" / "train.jsonl")[:3]
    del items[1]["code"]
    bad = tmp_path / "items.jsonl"
    bad.write_text("".join(json.dumps(i) + "\n" for i in items))
    assert ase_job.main(["--items", str(bad), "--predictions", str(bad), "--output", str(tmp_path / "o")]) == 2
    assert f"{bad}:2: missing field 'code'" in capsys.readouterr().err
    programs = tmp_path / "programs.jsonl"
    programs.write_text(json.dumps({"id": "ok", "code": "x = 1\n"}) + "\n" + json.dumps({"id": "p", "code": "x = (\n"})
                        + "\n")
    assert build_job.main(["--programs", str(programs), "--output", str(tmp_path / "b")]) == 2
    assert f"{programs}:2: the program of 'p' does not parse" in capsys.readouterr().err


def corrupted(item: dict, how: int) -> str:
    """A wrong answer: a changed value, another next line, or a text that does not parse."""
    text = item["output"]
    if how == 0:
        return text.replace("Next statement: ", "Next statement: 9")
    if how == 1 and "}" in text.split("Check: ", 1)[1]:
        return text.replace("Check: {", "Check: {'zz': 1, ", 1)
    return "I think the answer is line " + str(item["start_line"])


def write_predictions(path: Path, items: list[dict], seed: int) -> Path:
    """Four predictions per item: the right answer once or twice, wrong ones besides, in a random order."""
    rng = random.Random(seed)
    with path.open("w") as f:
        for item in items:
            texts = [item["output"]] * rng.choice([0, 1, 2]) + [corrupted(item, k) for k in range(3)]
            rng.shuffle(texts)
            f.write(json.dumps({"item_id": item["item_id"], "outputs": texts[:4]}) + "\n")
    return path


def test_ase_of_given_predictions_follows_the_rules(traces, tmp_path):
    items = read_jsonl(traces / "swa" / "test.jsonl")
    predictions = tmp_path / "p.jsonl"
    with predictions.open("w") as f:
        for k, item in enumerate(items):
            f.write(json.dumps({"item_id": item["item_id"], "output": item["output"] if k % 3 else
                                corrupted(item, 0)}) + "\n")
    assert ase_job.main(["--items", str(traces / "swa" / "test.jsonl"), "--predictions", str(predictions),
                         "--output", str(tmp_path / "o")]) == 0
    summary = json.loads((tmp_path / "o" / "ase_summary.json").read_text())
    right = sum(1 for k in range(len(items)) if k % 3)
    assert summary["ase"] == pytest.approx(right / len(items)) and summary["items"] == len(items)
    assert "| plain sampling (first prediction) |" in (tmp_path / "o" / "report.md").read_text()


def test_ase_samples_predictions_from_a_tiny_model(traces, tiny_model, tmp_path):
    output = tmp_path / "gen"
    assert ase_job.main(["--items", str(traces / "sft" / "test.jsonl"), "--limit", "4", "--model", tiny_model,
                         "engine.backend=hf", "--n", "2", "--temperature", "0.8", "--max_tokens", "16",
                         "--output", str(output)]) == 0
    outputs = read_jsonl(output / "outputs.jsonl")
    assert len(outputs) == 4 and all(len(row["texts"]) == 2 for row in outputs)
    summary = json.loads((output / "ase_summary.json").read_text())
    assert summary["items"] == 4 and summary["n"] == 2 and set(summary["rules"]) == {"first", "majority"}
    pairs = read_jsonl(output / "rm_pairs.jsonl")  # a random model is always wrong: the trace's answer is chosen
    assert pairs and all(p["chosen"].startswith("Line: ") and p["rejected"] != p["chosen"] for p in pairs)


@pytest.mark.slow
def test_rvbs_end_to_end_with_a_trained_reward_model_and_selector(traces, tmp_path):
    import jobs.train_rm as rm_job
    import jobs.train_selector as selector_job

    train_items = traces / "sft" / "train.jsonl"
    test_items = traces / "sft" / "test.jsonl"
    items = read_jsonl(train_items)[:60]  # what fits the suite's time: ~170 pairs, ~240 predictions to score
    first = tmp_path / "train"
    assert ase_job.main(["--items", str(train_items), "--limit", "60", "--predictions", str(write_predictions(
        tmp_path / "train.jsonl", items, 0)), "--output", str(first)]) == 0
    rm = tmp_path / "rm"
    assert rm_job.main(["--model", "minilm", "--data.train", str(first / "rm_pairs.jsonl"), "--output", str(rm),
                        "data.validation_fraction=0.2", "train.peft.method=ln_tuning", "train.optim.lr=1e-2",
                        "train.optim.max_steps=12", "train.scaling.workers=1", "train.scaling.cpus_per_worker=1"]) == 0
    scored = tmp_path / "scored"
    assert ase_job.main(["--items", str(train_items), "--limit", "60", "--predictions", str(tmp_path / "train.jsonl"),
                         "--reward_model", str(rm / "model"), "--output", str(scored)]) == 0
    selector = tmp_path / "selector"
    assert selector_job.main(["--data", str(scored / "candidates.jsonl"), "--folds", "2", "--output",
                              str(selector)]) == 0
    final = tmp_path / "final"
    test = read_jsonl(test_items)[:40]
    assert ase_job.main(["--items", str(test_items), "--limit", "40", "--predictions", str(write_predictions(
        tmp_path / "test.jsonl", test, 1)), "--reward_model", str(rm / "model"), "--selector", str(selector),
        "--output", str(final)]) == 0
    summary = json.loads((final / "ase_summary.json").read_text())
    assert set(summary["rules"]) == {"first", "majority", "reward", "rvbs"}
    rows = read_jsonl(final / "predictions.jsonl")
    for rule in summary["rules"]:
        picked_right = sum(row["correct"][row["picks"][rule]] for row in rows)
        assert summary["rules"][rule]["ase"] == pytest.approx(picked_right / len(rows))
    report = (final / "report.md").read_text()
    assert "| RVBS |" in report and "| plain sampling (first prediction) |" in report
    # the reward model learned right from wrong: its pick beats a random prediction's chance
    assert summary["rules"]["reward"]["ase"] > summary["mean_over_samples"]


def test_a_teacher_model_writes_the_analysis_of_each_sft_item(ray_cluster, tiny_model, tmp_path):
    programs = tmp_path / "programs"
    programs.mkdir()
    (programs / "loop.py").write_text("t = 0\nfor k in range(2):\n    t += k\n")
    output = tmp_path / "out"
    assert build_job.main(["--programs", str(programs), "--splits", '{"train": 1.0}', "--teacher.model", tiny_model,
                           "teacher.engine.backend=hf", "teacher.max_tokens=16", "--output", str(output)]) == 0
    teacher = {row["key"]: row["texts"][0] for row in read_jsonl(output / "teacher.jsonl")}
    items = read_jsonl(output / "sft" / "train.jsonl")
    assert len(teacher) == len(items) == 6  # one Analysis asked per step
    summary = json.loads((output / "build_summary.json").read_text())
    assert summary["analysis"] == f"teacher {tiny_model}"
    for item in items:
        said = " ".join(teacher[item["item_id"]].split())
        analysis = item["output"].split("\nAnalysis: ", 1)[1].split("\nCheck: ", 1)[0]
        assert analysis == said if said else analysis.startswith(f"Line {item['start_line']} runs")
