"""Reflection sequences end to end: jobs/synth_reflection.py against a real local OpenAI-compatible endpoint
(tests/synth_server.py answers by rule), the sandbox running every round's programs on the problems' tests, and the
kept sequences read back by the SFT data loader (format reflection) on the tiny model's tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import jobs.synth_reflection as job

pytestmark = pytest.mark.integration

OPS = {"add": ("+", "Return a plus b."), "sub": ("-", "Return a minus b."), "mul": ("*", "Return a times b."),
       "talk": ("+", "Return a plus b."), "quiet": ("+", "Return a plus b.")}


def problem(name: str) -> dict:
    op, doc = OPS[name]
    return {"task_id": f"demo/{name}", "prompt": f'def {name}(a, b):\n    """{doc}"""\n', "entry_point": name,
            "reference_solution": f"def {name}(a, b):\n    return a {op} b\n",
            "tests": {"kind": "assertions", "assertions": [f"assert {name}(2, 3) == {eval(f'2 {op} 3')}",
                                                           f"assert {name}(0, 0) == 0"]}}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_reflection_sequence_is_built_end_to_end_and_trains(ray_cluster, synth_url, tiny_model, tmp_path):
    from tests.synth_server import SynthServer

    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(problem(n)) + "\n" for n in OPS))
    output = tmp_path / "reflection"
    args = ["--dataset", "jsonl", "--dataset-path", str(problems), "--max_rounds", "3", "--output", str(output),
            "--llm.model", "rules", "llm.engine.backend=openai", f"llm.engine.openai.base_url={synth_url}"]
    assert job.main(args) == 0

    [sample] = read_jsonl(output / "reflection.jsonl")
    assert (sample["task_id"], sample["type"], sample["rounds"]) == ("demo/add", "reflection", 2)
    assert sample["provenance"] == {"method": "reflection", "dataset": "jsonl", "model": "rules",
                                    "prompts": "reflection@1", "statuses": ["failed", "passed"]}
    task, sequence, request, final = sample["messages"]
    assert [m["role"] for m in sample["messages"]] == ["user", "assistant", "user", "assistant"]
    assert 'def add(a, b):\n    """Return a plus b."""' in task["content"][0]["content"]
    assert [b["type"] for b in sequence["content"]] == ["text", "code", "execution", "text", "code", "execution"]
    plan, wrong, failed, reflection, fixed, passed = (b["content"] for b in sequence["content"])
    assert plan == "I combine the two arguments with one operator."
    assert wrong == "def add(a, b):\n    return a - b\n" and fixed == "def add(a, b):\n    return a + b\n"
    assert failed == ("1 of 2 tests failed.\n"
                      "- `assert add(2, 3) == 5` failed: AssertionError (expected `add(2, 3)` to be `5`)")
    assert reflection == "The test failed because `add` computes the wrong operation; it must use the other one."
    assert passed == "All 2 tests passed."
    assert request["content"][0]["content"].startswith("Now write the final solution in one go")
    assert "def add(a, b):" in request["content"][0]["content"]
    assert final["content"] == [{"type": "code", "content": fixed}]

    dropped = {d["task_id"]: (d["round"], d["reason"], d["statuses"]) for d in read_jsonl(output / "dropped.jsonl")}
    assert dropped == {"demo/sub": (3, "did not pass within max_rounds", ["failed", "failed", "failed"]),
                       "demo/mul": (1, "passed at the first try (no reflection)", ["passed"]),
                       "demo/talk": (1, "no code in the answer", []),
                       "demo/quiet": (2, "no reflection in the answer", ["failed"])}
    summary = json.loads((output / "reflection_summary.json").read_text())
    assert {k: summary[k] for k in ("problems", "kept", "dropped", "unanswered", "first_try_passed")} == \
        {"problems": 5, "kept": 1, "dropped": 4, "unanswered": 0, "first_try_passed": 1}
    assert summary["dropped_by_reason"] == {"did not pass within max_rounds": 1,
                                            "passed at the first try (no reflection)": 1,
                                            "no code in the answer": 1, "no reflection in the answer": 1}
    assert summary["kept_by_rounds"] == {"2": 1} and summary["passed_by_round"] == {"1": 1, "2": 1}
    asked = len(SynthServer.asked)
    assert asked == 2 + 3 + 1 + 1 + 2  # add, sub (every round), mul, talk, quiet
    assert (output / "config.yaml").exists() and (output / "execution" / "results.jsonl").exists()

    # resumed: every answer and run is on file; keeping first tries needs no new answer either
    assert job.main([*args, "keep_first_try=true"]) == 0
    assert len(SynthServer.asked) == asked
    kept = read_jsonl(output / "reflection.jsonl")
    assert [(s["task_id"], s["rounds"]) for s in kept] == [("demo/add", 2), ("demo/mul", 1)]
    assert kept[0] == sample
    assert [b["type"] for b in kept[1]["messages"][1]["content"]] == ["text", "code", "execution"]
    results = output / "execution" / "results.jsonl"
    assert len(read_jsonl(results)) == 2 + 3 + 1 + 1  # nothing run twice, nothing set aside
    assert not results.with_suffix(".stale.jsonl").exists()
    # one more round asks only the problem still failing
    assert job.main([*args, "--max_rounds", "4"]) == 0
    assert len(SynthServer.asked) == asked + 1
    assert {d["task_id"]: d["round"] for d in read_jsonl(output / "dropped.jsonl")}["demo/sub"] == 4
    assert len(read_jsonl(results)) == 8
    assert job.main([*args, "llm.temperature=0.9"]) == 2  # another run's answers are not reused

    from transformers import AutoTokenizer

    from raylib.train.data import IGNORE
    from raylib.train.data.reflection import add_reflection_tokens
    from raylib.train.data.sft import read_sft_file

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    add_reflection_tokens(tokenizer)
    [example] = read_sft_file(output / "reflection.jsonl", tokenizer, max_len=4096, fmt="reflection")
    trained = tokenizer.decode([t for t, label in zip(example["input_ids"], example["labels"]) if label != IGNORE])
    assert "return a + b" in trained and "AssertionError" not in trained  # execution blocks are not learned


def test_a_tiny_local_model_answers_every_problem_and_each_ends_kept_or_dropped(ray_cluster, tiny_model, tmp_path):
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(problem(n)) + "\n" for n in ("add", "mul")))
    output = tmp_path / "tiny"
    assert job.main(["--dataset", "jsonl", "--dataset_path", str(problems), "--output", str(output),
                     "--llm.model", tiny_model, "llm.engine.backend=hf", "llm.max_tokens=16"]) == 0
    summary = json.loads((output / "reflection_summary.json").read_text())
    assert summary["problems"] == 2 and summary["kept"] + summary["dropped"] == 2
    assert len(read_jsonl(output / "answers" / "round1.jsonl")) == 2
    assert all(d["reason"] for d in read_jsonl(output / "dropped.jsonl"))
