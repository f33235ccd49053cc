"""jobs/generate.py and jobs/evaluate.py without --samples, end to end on the shared Ray cluster: the tiny model on the
real vLLM (CPU), an OpenAI-compatible endpoint (a real local HTTP server), resume, and the embedded SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs import evaluate, generate
from raylib.data.problems import load_problems
from raylib.data.samples import read_samples
from tests.test_generation import FakeOpenAI, serve_fake_openai

pytestmark = pytest.mark.integration


@pytest.fixture
def openai_server():
    with serve_fake_openai() as url:  # the FakeOpenAI imported above: the test reads and sets its state
        yield url


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_generate_job_writes_an_evalplus_sample_file_and_resumes(ray_cluster, tiny_model, tmp_path, capsys):
    out = tmp_path / "gen"
    common = ["--dataset", "humaneval", "--limit", "3", "--output", str(out), "--model", tiny_model,
              "--temperature", "1.0", "generation.engine.max_model_len=1024", "--max-tokens", "16"]
    assert generate.main([*common, "--n", "2"]) == 0
    rows = rows_of(out / "samples.jsonl")
    assert [(r["task_id"], r["sample_id"]) for r in rows] == [(f"HumanEval/{t}", i) for t in range(3) for i in range(2)]
    for row in rows:
        assert {"solution", "raw_output", "finish_reason", "prompt_tokens", "output_tokens", "error",
                "model"} <= set(row)
        assert row["raw_output"].startswith("```python\n") and row["prompt_tokens"] > 0 and not row["error"]
    samples, skipped = read_samples(out / "samples.jsonl", load_problems("humaneval"))  # what jobs/evaluate.py reads
    assert len(samples) == 6 and not skipped
    summary = json.loads((out / "generation_summary.json").read_text())
    assert summary["samples"] == 6 and summary["output_tokens"] == sum(r["output_tokens"] for r in rows)
    before = (out / "samples.jsonl").read_bytes()
    capsys.readouterr()

    assert generate.main([*common, "--n", "2"]) == 0  # nothing left to do: nothing is generated, nothing changes
    assert "0 to generate" in capsys.readouterr().out and (out / "samples.jsonl").read_bytes() == before
    assert generate.main([*common, "--n", "3"]) == 0  # more samples: only the new ids, the old ones kept as they were
    grown = rows_of(out / "samples.jsonl")
    assert ([(r["task_id"], r["sample_id"]) for r in grown]
            == [(f"HumanEval/{t}", i) for t in range(3) for i in range(3)])
    assert [r for r in grown if r["sample_id"] < 2] == rows
    capsys.readouterr()
    assert generate.main([*common, "--n", "3", "--temperature", "0.5"]) == 2  # other settings: not mixed in
    assert "changed: sampling" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_without_samples_generates_and_evaluates_in_one_pipeline(ray_cluster, tiny_model, tmp_path, capsys):
    out = tmp_path / "eval"
    args = ["--dataset", "humaneval", "--limit", "4", "--output", str(out), "--model", tiny_model, "--n", "2",
            "--prompt-style", "completion", "--max-tokens", "12", "generation.engine.max_model_len=1024"]
    assert evaluate.main(args) == 0
    samples, results = rows_of(out / "samples.jsonl"), rows_of(out / "results.jsonl")
    assert [(r["task_id"], r["sample_id"]) for r in results] == [(r["task_id"], r["sample_id"]) for r in samples]
    problems = load_problems("humaneval")
    for sample, result in zip(samples, results):  # each result ran exactly the program made from its sample
        assert result["program"] == problems[sample["task_id"]].completion_prefix + sample["completion"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == 8 and "pass@2" in summary and summary["generation"]["samples"] == 8
    assert summary["generation"]["this_run"]["output_tokens_per_s"] > 0 and "generate_s" in summary["timings_s"]
    results_before = (out / "results.jsonl").read_bytes()
    assert evaluate.main(args) == 0 and (out / "results.jsonl").read_bytes() == results_before  # resumed: nothing new
    capsys.readouterr()
    assert evaluate.main([*args[:-3], "--max-tokens", "13", args[-1]]) == 2  # other samples: refused, not mixed in
    assert "changed: sampling" in capsys.readouterr().err
    assert generate.main([*args[:6], "--model", tiny_model, "--temperature", "0.5"]) == 2  # both jobs guard the samples
    assert "changed: engine, sampling, prompt" in capsys.readouterr().err
    # fewer problems and samples: evaluated from what is there, nothing generated, nothing else counted
    smaller = [*args[:3], "2", *args[4:8], "--n", "1", *args[10:]]
    assert evaluate.main(smaller) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == 2 and summary["tasks"] == 2 and summary["generation"]["samples"] == 2
    assert len(rows_of(out / "samples.jsonl")) == 8  # the other samples stay in the file for a later, larger run


def test_generate_job_on_an_openai_endpoint_records_errors_and_retries_them_on_rerun(ray_cluster, openai_server,
                                                                                     tmp_path, capsys, monkeypatch):
    problems = tmp_path / "problems.jsonl"
    humaneval = load_problems("humaneval")
    rows = []
    for name in ("ok", "BAD", "DOWN"):
        problem = humaneval["HumanEval/0"].model_dump(mode="json")
        rows.append({**problem, "task_id": f"t/{name}", "prompt": f"{name}: {problem['prompt']}"})
    problems.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "gen"
    args = ["--dataset", "jsonl", "--dataset-path", str(problems), "--output", str(out), "--backend", "openai",
            "--model", "served-model", "--n", "2", f"generation.engine.openai.base_url={openai_server}",
            "generation.engine.openai.retries=1", "generation.engine.openai.backoff_s=0.01"]
    assert generate.main(args) == 3  # the endpoint failed for DOWN: a re-run should retry it
    captured = capsys.readouterr()
    assert "2 samples failed for infrastructure reasons" in captured.err
    rows = {(r["task_id"], r["sample_id"]): r for r in rows_of(out / "samples.jsonl")}
    assert rows[("t/ok", 1)]["solution"].startswith("from typing import List") and not rows[("t/ok", 1)]["error"]
    assert ("HTTP 400" in rows[("t/BAD", 0)]["error"] and rows[("t/BAD", 0)]["solution"] == ""
            and not rows[("t/BAD", 0)]["retryable"])
    assert rows[("t/DOWN", 0)]["retryable"] and rows[("t/DOWN", 1)]["finish_reason"] == "error"

    # The endpoint recovers: only DOWN's samples are asked again; BAD's failure was the request's own, and stays.
    monkeypatch.setattr(FakeOpenAI, "down", False)
    asked = dict(FakeOpenAI.seen)
    assert generate.main(args) == 0
    again = {name: sum(FakeOpenAI.seen[p] - asked.get(p, 0) for p in FakeOpenAI.seen if f"{name}: " in p)
             for name in ("ok", "BAD", "DOWN")}
    assert again == {"ok": 0, "BAD": 0, "DOWN": 2}  # one request per sample (n=2)
    rows = {(r["task_id"], r["sample_id"]): r for r in rows_of(out / "samples.jsonl")}
    assert len(rows) == 6 and not rows[("t/DOWN", 0)]["error"] and "HTTP 400" in rows[("t/BAD", 1)]["error"]


@pytest.mark.slow
def test_the_embedded_model_converts_once_and_answers_humaneval(ray_cluster, tmp_path, capsys):
    from raylib.models import embedded_model_dir

    path = embedded_model_dir()  # converts the packaged GGUF on first use (cached)
    assert (path / "model.safetensors").exists() and (path / "config.json").exists()
    out = tmp_path / "gen"
    assert generate.main(["--dataset", "humaneval", "--limit", "2", "--output", str(out), "--max-tokens", "128"]) == 0
    rows = rows_of(out / "samples.jsonl")
    assert len(rows) == 2 and all(r["model"] == "embedded" and not r["error"] for r in rows)
    assert all(r["raw_output"].startswith("```python\n") and r["output_tokens"] > 0 for r in rows)
    # SmolLM2-135M-Instruct writes Python (greedy, so always the same answer): HumanEval/0's compiles and defines it
    assert "def has_close_elements" in rows[0]["solution"]
    compile(rows[0]["solution"], "HumanEval/0", "exec")
