"""Do the scaling loops keep the engine full? Revision (budget B over P problems) vs one batched generate of the same
prompts and tokens, on the same engine, in the same run.

    .venv/bin/python benchmarks/scale_throughput.py                        # P=64 HumanEval problems, B=4, embedded
    .venv/bin/python benchmarks/scale_throughput.py --problems 164 --budget 8 --max-tokens 256

1. loops: `raylib.scale.runner.run_scaling` with revision (greedy, binary feedback) on the first P HumanEval
   problems: every problem's chat in flight at once, each answer judged in the sandbox before its next turn. Its
   throughput: output tokens / the loops' wall time once the engine was up (`this_run.loop_seconds`).
2. batched: the very chats the loops sent (rebuilt from attempts.jsonl: each attempt's prompt is the first turn plus
   the earlier answers and feedback), each with max_tokens = the tokens the loop got, in ONE `generate` call to an
   engine actor of the same settings (the best a static batch can do: no waiting on the sandbox, no turns).
Printed: tokens, seconds and tokens/s of each, and the ratio loops / batched (target >= 0.8). The loops lose mostly at
their tail: the last problems' turns run one after another with few others left to batch with, a fixed stretch
(the slowest problem's chain of B answers) that weighs less as P grows.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def chats_of(rows: list[dict], tasks) -> list[tuple[str, list[dict], int]]:
    """(task_id, messages, output tokens) of every attempt, as the revision loop asked it."""
    by_task: dict[str, list[dict]] = {}
    for row in rows:
        by_task.setdefault(row["task_id"], []).append(row)
    out = []
    for task_id, mine in by_task.items():
        messages = list(tasks.first_turn(task_id).messages)
        for row in sorted(mine, key=lambda r: r["attempt"]):
            out.append((task_id, list(messages), row["tokens"]["output"]))
            messages += [{"role": "assistant", "content": row["response"]},
                         {"role": "user", "content": row.get("feedback", "")}]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--budget", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--work", help="Working directory (default: a temporary one).")
    args = parser.parse_args()

    import ray

    from raylib.cluster import init_cluster
    from raylib.data.problems import load_problems
    from raylib.evaluate.stage import ExecutionPool
    from raylib.generate.engines.actor import EngineActor
    from raylib.generate.engines.base import GenerationRequest, SamplingParams
    from raylib.generate.settings import GenerationSettings
    from raylib.scale.runner import run_scaling
    from raylib.scale.strategies import ScaleSettings
    from raylib.scale.tasks import CodeTasks

    work = Path(args.work or tempfile.mkdtemp(prefix="scale_throughput_"))
    problems = dict(list(load_problems("humaneval").items())[:args.problems])
    generation = GenerationSettings.model_validate({"sampling": {"max_tokens": args.max_tokens}})
    init_cluster(num_cpus=4, include_dashboard=False, log_to_driver=False)
    tasks = CodeTasks(problems, generation.prompt)
    summary = run_scaling(tasks, ScaleSettings(strategy="revision", budget=args.budget), generation, work / "loops",
                          dataset="humaneval", execution=ExecutionPool(workers_per_actor=2))
    loops = summary["this_run"]
    rows = [json.loads(line) for line in (work / "loops" / "attempts.jsonl").read_text().splitlines()]
    chats = chats_of(rows, tasks)

    turn_prefix = tasks.first_turn(next(iter(problems))).response_prefix
    stop = list(tasks.first_turn(next(iter(problems))).stop)
    requests = [GenerationRequest(messages=messages, response_prefix=turn_prefix, key=task_id,
                                  params=SamplingParams(max_tokens=max(1, tokens), temperature=0.0, stop=stop))
                for task_id, messages, tokens in chats]
    engine = ray.remote(EngineActor).options(num_cpus=generation.num_cpus, max_concurrency=4).remote(
        generation.engine.model_dump(mode="json"))
    ray.get(engine.can_prefill.remote())  # built
    started = time.perf_counter()
    results = ray.get(engine.generate.remote(requests))
    batched_s = time.perf_counter() - started
    batched_tokens = sum(o.tokens for r in results for o in r.outputs)
    ray.kill(engine)

    loop_rate = loops["output_tokens"] / loops["loop_seconds"]
    batch_rate = batched_tokens / batched_s
    print(f"revision, B={args.budget}, {len(problems)} HumanEval problems, embedded model (vLLM): {len(rows)} "
          f"attempts, {summary['solved']} solved; work in {work}")
    print(f"{'':10} {'tokens':>8} {'seconds':>8} {'tokens/s':>9}")
    print(f"{'loops':10} {loops['output_tokens']:8d} {loops['loop_seconds']:8.1f} {loop_rate:9.1f}")
    print(f"{'batched':10} {batched_tokens:8d} {batched_s:8.1f} {batch_rate:9.1f}")
    print(f"ratio loops / batched: {loop_rate / batch_rate:.2f}x (target >= 0.8x)")


if __name__ == "__main__":
    main()
