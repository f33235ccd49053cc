"""Test-time scaling end to end on the shared Ray cluster: every strategy on real engines (vLLM and transformers) and
the real sandbox, the embedded model reaching a real pass, FTTT's hard subset, math problems, and a killed run
resumed to the same files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def two_problems():
    from raylib.data.problems import load_problems

    problems = load_problems("humaneval")
    return {t: problems[t] for t in ("HumanEval/0", "HumanEval/23")}


def _run(tiny_model, problems, output, backend="hf", protocol="codeloop", **scale):
    from raylib.evaluate.stage import ExecutionPool
    from raylib.generate.settings import GenerationSettings
    from raylib.scale.runner import run_scaling
    from raylib.scale.strategies import ScaleSettings
    from raylib.scale.tasks import CodeTasks

    generation = GenerationSettings.model_validate({"engine": {"backend": backend, "model": tiny_model,
                                                               "max_model_len": 1024},
                                                    "sampling": {"max_tokens": 24}, "num_cpus": 0.5})
    tasks = CodeTasks(problems, generation.prompt, protocol)
    return run_scaling(tasks, ScaleSettings(**scale), generation, output, dataset="humaneval",
                       execution=ExecutionPool(workers_per_actor=1), progress=False)


def _rows(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "attempts.jsonl").read_text().splitlines()]


def _check_outputs(output: Path, summary: dict, budget: int) -> None:
    assert json.loads((output / "scale_summary.json").read_text())["curve"] == summary["curve"]
    assert [p["k"] for p in summary["curve"]] == list(range(1, budget + 1))
    assert {"strategy", "budget", "problems", "solved", "precision", "avg_trials", "curve"} <= summary.keys()
    assert (output / "report.md").exists() and (output / "scaling.png").stat().st_size > 0


STRATEGY_CASES = {
    "revision-public-tests": dict(strategy="revision", budget=3, feedback="public-tests"),
    "revision-traceback": dict(strategy="revision", budget=2, feedback="traceback"),
    "self-refine": dict(strategy="self-refine", budget=2),
    "best-of-n-oracle": dict(strategy="best-of-n", budget=3, samples_per_call=2),
    "best-of-n-verifier": dict(strategy="best-of-n", mode="verifier", budget=3),
    "self-consistency": dict(strategy="self-consistency", budget=3),
    "beam-verifier": dict(strategy="beam", mode="verifier", budget=2),
    "sample-debug": dict(strategy="sample-debug", budget=2, debug_rounds=1),
    "fttt": dict(strategy="fttt", budget=3),
    "fttt+": dict(strategy="fttt+", budget=2),
}


@pytest.mark.parametrize("case", list(STRATEGY_CASES))
def test_each_strategy_runs_to_its_budget_on_a_model_that_never_passes(ray_cluster, tiny_model, two_problems,
                                                                       tmp_path, case):
    """A random tiny model never passes, so every loop spends its whole budget: the rows show exactly the steps the
    strategy takes, every judged program ran in the sandbox, and nothing counts as solved."""
    scale = STRATEGY_CASES[case]
    summary = _run(tiny_model, two_problems, tmp_path, **scale)
    rows = _rows(tmp_path)
    budget = scale["budget"]
    _check_outputs(tmp_path, summary, budget)
    assert summary["solved"] == 0 and summary["problems"] == 2 and summary["unfinished"] == []
    assert [(r["task_id"], r["attempt"]) for r in rows] == sorted((r["task_id"], r["attempt"]) for r in rows)
    by_task = {t: [r for r in rows if r["task_id"] == t] for t in two_problems}
    judged = [r for r in rows if r.get("passed") is not None]
    assert judged and all(r["passed"] is False for r in judged)
    assert all(r["status"] not in ("sandbox-error", "passed") for r in judged)
    for task_id, mine in by_task.items():
        strategy = scale["strategy"]
        if strategy in ("revision", "self-refine", "fttt") or case == "best-of-n-oracle":
            assert [r["attempt"] for r in mine] == list(range(budget)) and all("passed" in r for r in mine)
        if strategy == "revision":
            assert all(r["feedback"].startswith("Your answer") for r in mine)
            # the chat grows: each attempt's prompt holds the answers and feedback before it
            assert [r["tokens"]["prompt"] for r in mine] == sorted(r["tokens"]["prompt"] for r in mine)
            assert mine[-1]["tokens"]["prompt"] > mine[0]["tokens"]["prompt"]
        if scale.get("mode") == "verifier" or strategy in ("self-consistency", "sample-debug"):
            picks = [r for r in mine if r.get("selected_for")]
            assert sorted(k for r in picks for k in r["selected_for"]) == list(range(1, budget + 1))
            assert all(r.get("passed") is not None for r in picks)
            assert sum(r.get("passed") is not None for r in mine) == len(picks)  # only the picks were judged
        if strategy != "self-consistency" and (scale.get("mode") == "verifier" or strategy == "sample-debug"):
            assert all("score" in r for r in mine if r.get("selected_for"))
        if strategy == "fttt":  # every attempt asked from the prompt alone; each failure with a program trains
            assert len({r["tokens"]["prompt"] for r in mine}) == 1
            assert all(r["trained"] == bool(r["solution"].strip()) for r in mine[:-1]) and "trained" not in mine[-1]
            assert all(r["ttt_loss"] > 0 for r in mine if r.get("trained"))
        if strategy == "fttt+":  # a random model's answers run to the token limit: reflected on and trained never
            assert all(r["reflection_finish"] == "skipped" and r["trained"] is False for r in mine[:-1])
            assert all(r["finish_reason"] == "length" for r in mine)
        if strategy == "sample-debug":
            assert {r["candidate"] for r in mine} == {0, 1}
            assert all("public" in r for r in mine if r["solution"])
        assert all(r["solution"] == "" or "def " in r["solution"] for r in mine)  # whole programs


def test_beam_search_on_vllm_judges_every_beam_best_first(ray_cluster, tiny_model, two_problems, tmp_path):
    summary = _run(tiny_model, two_problems, tmp_path, backend="vllm", strategy="beam", budget=3)
    rows = _rows(tmp_path)
    _check_outputs(tmp_path, summary, 3)
    for task_id in two_problems:
        mine = [r for r in rows if r["task_id"] == task_id]
        assert [r["attempt"] for r in mine] == [0, 1, 2] and all(r["passed"] is False for r in mine)
        assert len({r["response"] for r in mine}) == 3  # three different beams


def test_revision_on_the_embedded_model_stops_at_its_first_pass(ray_cluster, two_problems, tmp_path):
    """HumanEval/23 (strlen) is solved greedily by the embedded model at the first attempt; HumanEval/0 is not, and
    gets the whole budget with public-test feedback. The pass is the sandbox's verdict on the whole program."""
    from raylib.evaluate.requests import build_request
    from raylib.evaluate.stage import ExecutionPool
    from raylib.generate.settings import GenerationSettings
    from raylib.scale.runner import run_scaling
    from raylib.scale.strategies import ScaleSettings
    from raylib.scale.tasks import CodeTasks
    from sandbox import Sandbox, SandboxConfig

    generation = GenerationSettings.model_validate({"sampling": {"max_tokens": 256}, "num_cpus": 0.5})
    summary = run_scaling(CodeTasks(two_problems, generation.prompt), ScaleSettings(budget=2, feedback="public-tests"),
                          generation, tmp_path, dataset="humaneval", execution=ExecutionPool(workers_per_actor=1),
                          progress=False)
    rows = _rows(tmp_path)
    solved = [r for r in rows if r["task_id"] == "HumanEval/23"]
    assert len(solved) == 1 and solved[0]["passed"] is True and "feedback" not in solved[0]
    unsolved = [r for r in rows if r["task_id"] == "HumanEval/0"]
    assert [r["attempt"] for r in unsolved] == [0, 1] and not any(r["passed"] for r in unsolved)
    assert "tests shown in the problem" in unsolved[0]["feedback"] or unsolved[0]["feedback"].startswith("Your")
    assert summary["solved"] == 1 and summary["curve"] == [{"k": 1, "solved": 1}, {"k": 2, "solved": 1}]
    assert summary["avg_trials"] == pytest.approx((1 + 2) / 2)
    with Sandbox(SandboxConfig(workers=1)) as box:  # the recorded program passes the hidden tests on its own
        [result] = box.run_batch([build_request(two_problems["HumanEval/23"], solved[0]["solution"], 3.0, 1024)])
    assert result.passed


def test_fttt_hard_subset_is_computed_once_and_reused(ray_cluster, tiny_model, two_problems, tmp_path):
    from raylib.evaluate.stage import ExecutionPool
    from raylib.generate.settings import GenerationSettings
    from raylib.scale.runner import hard_subset
    from raylib.scale.tasks import CodeTasks

    generation = GenerationSettings.model_validate({"engine": {"backend": "hf", "model": tiny_model},
                                                    "sampling": {"max_tokens": 16}, "num_cpus": 0.5})
    tasks = CodeTasks(two_problems, generation.prompt, "fttt")
    index = tmp_path / "hard.json"
    args = dict(dataset="humaneval", execution=ExecutionPool(workers_per_actor=1), progress=False)
    assert hard_subset(index, tasks, generation, **args) == list(two_problems)  # a random model fails both
    saved = json.loads(index.read_text())
    assert saved["hard"] == list(two_problems) and saved["protocol"] == "fttt" and saved["model"] == tiny_model
    greedy = tmp_path / "hard.greedy" / "attempts.jsonl"
    assert len(greedy.read_text().splitlines()) == 2  # one greedy answer per problem
    before = greedy.stat().st_mtime_ns
    assert hard_subset(index, tasks, generation, **args) == list(two_problems)
    assert greedy.stat().st_mtime_ns == before  # reused, not recomputed
    other = generation.model_copy(deep=True)
    other.engine.model = "embedded"
    with pytest.raises(ValueError, match="another model"):
        hard_subset(index, tasks, other, **args)


def test_math_problems_run_self_consistency_and_are_judged_by_their_final_answer(ray_cluster, tiny_model, tmp_path):
    from raylib.data.math_problems import load_math_problems
    from raylib.generate.settings import GenerationSettings
    from raylib.scale.runner import run_scaling
    from raylib.scale.strategies import ScaleSettings
    from raylib.scale.tasks import MathTasks

    data = tmp_path / "gsm8k.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} + {i}?", "answer": f"{i}+{i}={2 * i}\n#### {2 * i}"})
                            + "\n" for i in range(2)))
    generation = GenerationSettings.model_validate({"engine": {"backend": "hf", "model": tiny_model},
                                                    "sampling": {"max_tokens": 16}, "num_cpus": 0.5})
    tasks = MathTasks(load_math_problems("gsm8k", data), "gsm8k")
    out = tmp_path / "out"
    summary = run_scaling(tasks, ScaleSettings(strategy="self-consistency", budget=3), generation, out,
                          dataset="gsm8k", progress=False)
    rows = _rows(out)
    assert len(rows) == 6 and summary["problems"] == 2 and summary["solved"] == 0
    assert rows[0]["response"] and "What is 0 + 0?" not in rows[0]["response"]
    judged = [r for r in rows if r.get("passed") is not None]
    assert judged and all(r["status"] in ("no-answer", "failed") for r in judged)


@pytest.mark.parametrize("strategy", ["revision", "fttt"])
def test_a_killed_scaling_run_resumes_and_ends_with_the_files_of_an_uninterrupted_one(ray_cluster, tiny_model,
                                                                                       tmp_path, strategy):
    """fttt's adapters live in the actor: a resumed run rebuilds each unfinished problem's by replaying its steps."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import ray

    args = ["--dataset", "humaneval", "--limit", "6", "--strategy", strategy, "--budget", "4", "--feedback",
            "public-tests" if strategy == "revision" else "binary", "--backend", "hf", "--model", tiny_model,
            "--max_tokens", "24", "generation.num_cpus=0.5",
            "execution.workers_per_actor=1"]
    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address, PYTHONPATH=str(REPO))

    def job(output: Path, log: Path):
        with open(log, "w") as out:
            return subprocess.Popen([sys.executable, str(REPO / "jobs/scale.py"), *args, "--output", str(output)],
                                    env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    whole = tmp_path / "whole"
    assert job(whole, tmp_path / "whole.log").wait(timeout=600) == 0, (tmp_path / "whole.log").read_text()[-3000:]
    killed = tmp_path / "killed"
    driver = job(killed, tmp_path / "first.log")
    deadline = time.monotonic() + 300
    attempts = killed / "attempts.jsonl"
    while time.monotonic() < deadline and (not attempts.exists() or len(attempts.read_text().splitlines()) < 8):
        assert driver.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    partial = attempts.read_text().splitlines()
    assert 8 <= len(partial) and not (killed / "scale_summary.json").exists()
    assert job(killed, tmp_path / "second.log").wait(timeout=600) == 0, (tmp_path / "second.log").read_text()[-3000:]
    assert attempts.read_text() == (whole / "attempts.jsonl").read_text()
    summaries = [json.loads((d / "scale_summary.json").read_text()) for d in (whole, killed)]
    for s in summaries:
        s.pop("this_run")
    assert summaries[0] == summaries[1] and summaries[0]["attempts"] == 24
