"""Sweep overhead: `jobs/sweep.py` (K Tune trials, each a Ray Train run whose checkpoint is scored by pass@1) vs the
same K trainings and evaluations run one after another as plain jobs (`jobs/sft.py`, then `jobs/evaluate.py`).

    .venv/bin/python benchmarks/sweep_overhead.py                      # K=3 learning rates, LoRA on SmolLM2-135M
    .venv/bin/python benchmarks/sweep_overhead.py --lrs 3e-4 2e-3 --train-examples 16 --eval-problems 8

Both sides do the same work on one local Ray cluster that this script starts (both join it, as `ray job submit`
jobs would): LoRA SFT of the embedded model on the canonical solutions of HumanEval problems the evaluation does not
use (the last --train-examples), one epoch, a checkpoint at its end; then pass@1 (greedy, n=1) of that checkpoint on
the first --eval-problems HumanEval problems by generation (vLLM) + sandbox, the adapter merged into the base first.
  sweep  `python jobs/sweep.py --config CFG`: one Tune trial per learning rate, one at a time (2 cores);
  plain  per learning rate `python jobs/sft.py ... train.peft.merge=true` then `python jobs/evaluate.py --model
         OUT/merged --limit N --n 1 --temperature 0` with the sweep's engine and execution settings.
Printed: wall time of each side and of each plain job, the pass@1 each side measured per trial (the same model and
greedy decoding, so they should agree), and the ratio plain / sweep (target >= 0.9: the sweep costs at most ~11%
more than running its trials by hand). Before either side is timed, one short training job and one evaluation job
warm the cluster's worker processes and the page cache (measured: the first TorchTrainer on a fresh cluster starts
26 s slower than the next ones), so neither side pays the machine's cold start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

COMMON_JOB_ARGS = ["train.peft.method=lora", "train.optim.epochs=1", "train.optim.micro_batch_size=4",
                   "train.scaling.workers=1", "train.scaling.cpus_per_worker=0.4", "train.deepspeed.zero_stage=2"]
GENERATION = {"num_cpus": 0.4, "sampling": {"n": 1, "temperature": 0.0, "max_tokens": 384}}
EXECUTION = {"workers_per_actor": 1, "actors": 1}


def write_training_data(path: Path, eval_problems: int, examples: int) -> Path:
    """SFT rows (prompt + canonical completion) of the last `examples` HumanEval problems, none of the evaluated."""
    from raylib.data.problems import load_problems
    from raylib.data.samples import reference_samples
    from raylib.files import write_records

    problems = load_problems("humaneval")
    held_out = list(problems)[eval_problems:][-examples:]
    rows = [{"task_id": r["task_id"], "prompt": problems[r["task_id"]].prompt, "completion": r["completion"]}
            for r in reference_samples({t: problems[t] for t in held_out}, ("canonical",))]
    write_records(path, rows)
    return path


def run(args: list[str], env: dict, log: Path) -> float:
    """Wall time of a job run as a subprocess; its console goes to `log`; a failure stops the benchmark."""
    start = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.call([sys.executable, *args], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.perf_counter() - start
    if code != 0:
        sys.exit(f"{' '.join(args[:1])} failed ({code}); its output: {log}\n{log.read_text()[-3000:]}")
    return elapsed


def sweep_side(work: Path, data: Path, lrs: list[float], eval_problems: int, env: dict) -> tuple[float, dict]:
    config = work / "sweep.yaml"
    config.write_text(yaml.safe_dump({
        "job": "sft", "job_args": ["--data.train", str(data), *COMMON_JOB_ARGS],
        "search_space": {"train.optim.lr": {"grid": lrs}}, "metric": "pass@1", "dataset": "humaneval",
        "limit": eval_problems, "max_concurrent_trials": 1, "generation": GENERATION, "execution": EXECUTION}))
    output = work / "sweep"
    elapsed = run(["jobs/sweep.py", "--config", str(config), "--output", str(output)], env, work / "sweep.log")
    summary = json.loads((output / "sweep_summary.json").read_text())
    values = {}
    for trial in summary["trials"]:
        lr = float(trial["config"]["train.optim.lr"])
        values[lr] = max(r["pass@1"] for r in trial["results"])  # one checkpoint per trial
    return elapsed, values


def sft_args(data: Path, output: Path, *overrides: str) -> list[str]:
    return ["jobs/sft.py", "--data.train", str(data), *COMMON_JOB_ARGS, *overrides, "train.peft.merge=true",
            "--output", str(output)]


def evaluate_args(model: Path, problems: int, max_tokens: int, output: Path) -> list[str]:
    """jobs/evaluate.py with the sweep's engine and execution settings (greedy, n=1)."""
    return ["jobs/evaluate.py", "--dataset", "humaneval", "--limit", str(problems), "--model", str(model), "--n", "1",
            "--temperature", "0", "--max-tokens", str(max_tokens), f"generation.num_cpus={GENERATION['num_cpus']}",
            f"execution.actors={EXECUTION['actors']}", f"execution.workers_per_actor={EXECUTION['workers_per_actor']}",
            "--output", str(output)]


def warm_up(work: Path, data: Path, env: dict) -> None:
    """One training step and a one-problem evaluation, untimed: Ray's worker processes, imports and files warm."""
    run(sft_args(data, work / "warmup" / "sft", "train.optim.max_steps=1"), env, work / "warmup_sft.log")
    run(evaluate_args(work / "warmup" / "sft" / "merged", 1, 16, work / "warmup" / "eval"), env,
        work / "warmup_eval.log")


def plain_side(work: Path, data: Path, lrs: list[float], eval_problems: int, env: dict) -> tuple[float, dict, list]:
    values, jobs = {}, []
    start = time.perf_counter()
    for i, lr in enumerate(lrs):
        out = work / f"plain{i}"
        train = run(sft_args(data, out / "sft", f"train.optim.lr={lr}"), env, work / f"plain{i}_sft.log")
        evaluate = run(evaluate_args(out / "sft" / "merged", eval_problems, GENERATION["sampling"]["max_tokens"],
                                     out / "eval"), env, work / f"plain{i}_eval.log")
        summary = json.loads((out / "eval" / "summary.json").read_text())
        values[lr] = summary["pass@1"]
        jobs.append((lr, train, evaluate))
    return time.perf_counter() - start, values, jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-4, 1e-3, 2e-3], help="One trial each (K).")
    parser.add_argument("--train-examples", type=int, default=24)
    parser.add_argument("--eval-problems", type=int, default=16)
    parser.add_argument("--work", help="Working directory (default: a temporary one).")
    args = parser.parse_args()

    import ray

    work = Path(args.work or tempfile.mkdtemp(prefix="sweep_overhead_"))
    work.mkdir(parents=True, exist_ok=True)
    data = write_training_data(work / "sft.jsonl", args.eval_problems, args.train_examples)
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR")
    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address, PYTHONPATH=str(REPO))
    try:
        warm_up(work, data, env)
        sweep_time, sweep_values = sweep_side(work, data, args.lrs, args.eval_problems, env)
        plain_time, plain_values, jobs = plain_side(work, data, args.lrs, args.eval_problems, env)
    finally:
        ray.shutdown()

    print(f"K={len(args.lrs)} trials: LoRA SFT of the embedded model on {args.train_examples} HumanEval solutions, "
          f"pass@1 on the first {args.eval_problems} problems; work in {work}")
    print(f"{'lr':>8} {'sft job s':>10} {'evaluate job s':>15} {'pass@1 plain':>13} {'pass@1 sweep':>13}")
    for lr, train, evaluate in jobs:
        swept = sweep_values.get(lr, float("nan"))
        print(f"{lr:8.1e} {train:10.1f} {evaluate:15.1f} {plain_values[lr]:13.4f} {swept:13.4f}")
    print(f"plain jobs, one after another: {plain_time:.1f} s")
    print(f"sweep (jobs/sweep.py):         {sweep_time:.1f} s")
    print(f"ratio plain / sweep: {plain_time / sweep_time:.2f}x (target >= 0.9x)")
    agree = all(abs(plain_values[lr] - sweep_values.get(lr, -1)) < 1e-9 for lr in plain_values)
    print(f"pass@1 per trial agrees between the sides: {agree}")


if __name__ == "__main__":
    main()
