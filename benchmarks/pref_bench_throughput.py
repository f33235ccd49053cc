"""Judge-evaluation throughput: jobs/pref_bench.py's Ray Data pipeline against a bare loop over the same tasks with
the same model, in the same run (issue 20, item 7; target >= 0.9x).

    .venv/bin/python benchmarks/pref_bench_throughput.py                  # HumanEval + MBPP+: 542 tasks, 1,084 asks
    .venv/bin/python benchmarks/pref_bench_throughput.py --quick          # smoke run: 40 tasks
    .venv/bin/python benchmarks/pref_bench_throughput.py --cpus 2 --batch-size 32 --output runs/bench_pref

Tasks: one correctness task per problem (HumanEval and MBPP+): its reference solution against its wrong-result
variant (raylib.data.samples.reference_samples), the right one at gt_choice 0 or 1 by a hash (raylib.synth.pairs.
bench_rows); each task is asked in both orders. Judge: pair-rm, the packaged all-MiniLM-L6-v2 encoder with a fresh
2-label head (seed 0), max_length 512, the same BenchJudgeSettings on both sides. Both sides use --cpus torch threads
(the actor reserves --cpus CPUs; Ray sets its OMP_NUM_THREADS to that) and the same --batch-size tasks per call:
  bare      a fresh Python process (as a script without the engine runs), timed from launch to exit: torch and
            transformers imports, make_judge (model load), then raylib.synth.runner.decide_rows over the batches;
  pipeline  raylib.synth.runner.judge_bench on a local Ray cluster started first (its start is not timed): Ray Data
            actor start, model load in the actor, the batches, verdicts.jsonl written as they arrive.
Ratio = bare seconds / pipeline seconds (tasks/s of the pipeline over the loop's), end to end; and steady state
(without actor start and model load: a pipeline run of one batch is subtracted from the full one; the bare loop
without its load). --rounds rounds alternate the sides (this machine's speed drifts by several percent between
runs); each side's best round counts. The verdicts of both sides are compared. Prints a markdown table for
BENCHMARKS.md; with --output, writes it and every number to DIR/pref_bench_throughput.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from raylib.data.problems import load_problems  # noqa: E402
from raylib.data.samples import read_samples, reference_samples  # noqa: E402
from raylib.files import write_records  # noqa: E402


def build_pair_classifier(out: Path) -> Path:
    """A 2-label sequence classifier on the packaged MiniLM encoder (head initialised with seed 0), saved to `out`."""
    import torch
    import transformers

    from raylib.models import minilm_dir

    transformers.logging.set_verbosity_error()  # "newly initialized weights: classifier" is the point here
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=2)
    model.save_pretrained(out)
    transformers.AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(out)
    return out


def bench_tasks(tmp: Path, limit: int | None) -> list:
    """One correctness task per HumanEval and MBPP+ problem: reference solution vs its wrong-result variant."""
    from raylib.synth.bench import read_bench
    from raylib.synth.pairs import OBJECTIVE_CRITERIA, bench_rows, make_pair

    pairs = []
    for dataset in ("humaneval", "mbpp+"):
        problems = load_problems(dataset)
        path = tmp / f"{dataset}.jsonl"
        write_records(path, reference_samples(problems, ["canonical", "wrong-result"]))
        samples, _ = read_samples(path, problems)
        by_task: dict[str, list] = {}
        for sample in samples:
            by_task.setdefault(sample.task_id, []).append(sample.program)
        for task, programs in by_task.items():
            if len(programs) == 2:
                pairs.append(make_pair(task_id=task, instruction=problems[task].prompt,
                                       criteria=OBJECTIVE_CRITERIA["correctness"], chosen=programs[0],
                                       rejected=programs[1], objective="correctness",
                                       provenance={"method": "benchmark"}))
    write_records(tmp / "bench.jsonl", bench_rows(pairs[:limit]))
    return read_bench(tmp / "bench.jsonl")


def bare_process(bench: Path, settings, batch_size: int, cpus: int, out: Path) -> dict:
    """The bare loop in a fresh Python process, timed from its launch to its exit (interpreter start, torch and
    transformers imports, model load, the loop), as a script without the engine would run."""
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--bare-loop", str(bench), settings.model_dump_json(), str(batch_size),
                    str(cpus), str(out)], check=True)
    result = json.loads(out.read_text())
    result["total_s"] = time.perf_counter() - started
    result["verdicts"] = {k: tuple(v) for k, v in result["verdicts"].items()}
    return result


def bare_loop(bench: str, settings_json: str, batch_size: str, cpus: str, out: str) -> None:
    """Inside the fresh process: import, load the judge, decide every batch; write the times and verdicts."""
    started = time.perf_counter()
    import torch

    from raylib.synth.bench import read_bench
    from raylib.synth.judges import BenchJudgeSettings, make_judge
    from raylib.synth.runner import ask_rows, decide_rows

    torch.set_num_threads(int(cpus))
    tasks, size = read_bench(bench), int(batch_size)
    judge = make_judge(BenchJudgeSettings.model_validate_json(settings_json))
    loaded = time.perf_counter()
    verdicts = {}
    for start in range(0, len(tasks), size):
        for row in decide_rows(judge, ask_rows(tasks[start:start + size])):
            verdicts[row["key"]] = row["verdicts"]
    Path(out).write_text(json.dumps({"load_s": loaded - started, "loop_s": time.perf_counter() - loaded,
                                     "threads": torch.get_num_threads(), "verdicts": verdicts}))


def pipeline(tasks: list, settings, batch_size: int, cpus: int, path: Path) -> dict:
    from raylib.synth.runner import judge_bench

    started = time.perf_counter()
    verdicts = judge_bench(tasks, settings, path, actors=1, batch_size=batch_size, num_cpus=cpus, progress=False)
    return {"total_s": time.perf_counter() - started, "verdicts": verdicts}


def main() -> int:
    if sys.argv[1:2] == ["--bare-loop"]:
        bare_loop(*sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 tasks only (a smoke run)")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPUs (torch threads) per side")
    parser.add_argument("--batch-size", type=int, default=32, help="tasks per judge call (each asked twice)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of both sides, alternating; each side's best "
                        "counts")
    parser.add_argument("--output", type=Path, default=None, help="write the table and numbers here")
    args = parser.parse_args()

    from raylib.cluster import init_cluster, shutdown_cluster
    from raylib.synth.judges import BenchJudgeSettings

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tasks = bench_tasks(tmp, 40 if args.quick else None)
        settings = BenchJudgeSettings(kind="pair-rm", model=str(build_pair_classifier(tmp / "model")),
                                      batch_size=16, max_length=512)
        init_cluster(address="local", num_cpus=args.cpus, include_dashboard=False)
        fulls, ones, loops = [], [], []
        try:
            pipeline(tasks[:args.batch_size], settings, args.batch_size, args.cpus, tmp / "warm.jsonl")  # warm-up
            for k in range(args.rounds):  # alternate the sides: this machine's speed drifts by several percent
                ones.append(pipeline(tasks[:args.batch_size], settings, args.batch_size, args.cpus,
                                     tmp / f"one{k}.jsonl"))
                fulls.append(pipeline(tasks, settings, args.batch_size, args.cpus, tmp / f"full{k}.jsonl"))
                loops.append(bare_process(tmp / "bench.jsonl", settings, args.batch_size, args.cpus,
                                          tmp / f"bare{k}.json"))
        finally:
            shutdown_cluster()

    def best(runs: list[dict], field: str = "total_s") -> dict:
        return min(runs, key=lambda r: r[field])

    full, one, loop = best(fulls), best(ones), best(loops)
    same = sum(full["verdicts"][k] == v for k, v in loop["verdicts"].items())
    rest = len(tasks) - min(args.batch_size, len(tasks))
    steady_pipeline = rest / max(full["total_s"] - one["total_s"], 1e-9)
    steady_bare = len(tasks) / best(loops, "loop_s")["loop_s"]
    numbers = {
        "tasks": len(tasks), "asks": 2 * len(tasks), "cpus": args.cpus, "batch_size": args.batch_size,
        "rounds": args.rounds, "bare_total_s": [round(r["total_s"], 2) for r in loops],
        "bare_loop_s": [round(r["loop_s"], 2) for r in loops], "bare_threads": loop["threads"],
        "pipeline_total_s": [round(r["total_s"], 2) for r in fulls],
        "pipeline_one_batch_s": [round(r["total_s"], 2) for r in ones],
        "end_to_end_ratio": round(loop["total_s"] / full["total_s"], 3),
        "steady_ratio": round(steady_pipeline / steady_bare, 3),
        "same_verdicts": f"{same}/{len(tasks)}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
    }
    table = "\n".join([
        "| side | tasks/s end to end | seconds (best) | notes |", "|---|---|---|---|",
        f"| bare loop (own process) | {len(tasks) / loop['total_s']:.1f} | {loop['total_s']:.2f} | start, imports and "
        f"load {loop['total_s'] - loop['loop_s']:.2f} s, loop {loop['loop_s']:.2f} s, {loop['threads']} threads; "
        f"rounds {numbers['bare_total_s']} |",
        f"| Ray Data pipeline | {len(tasks) / full['total_s']:.1f} | {full['total_s']:.2f} | one batch alone "
        f"{one['total_s']:.2f} s; rounds {numbers['pipeline_total_s']} |",
        "", f"ratio (pipeline / bare, tasks/s): end to end **{numbers['end_to_end_ratio']:.2f}x**, steady state "
        f"{numbers['steady_ratio']:.2f}x; same verdicts {numbers['same_verdicts']}; {len(tasks)} tasks "
        f"({2 * len(tasks)} asks), batch {args.batch_size}, {args.cpus} CPUs; {numbers['machine']}"])
    print(table)
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "pref_bench_throughput.md").write_text(table + "\n")
        (args.output / "pref_bench_throughput.json").write_text(json.dumps(numbers, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
