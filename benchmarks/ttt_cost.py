"""What test-time training costs per attempt: FTTT and OpTune against plain sampling, in the same run.

    .venv/bin/python benchmarks/ttt_cost.py                        # 6 HumanEval problems, budget 3, embedded model
    .venv/bin/python benchmarks/ttt_cost.py --problems 20 --budget 8 --max-tokens 256

All three are `jobs/scale.py` strategies on the same problems with the same sampling (temperature 0.6, top-p 0.95,
as FTTT samples) on the embedded model through transformers (test-time training needs the weights in the actor):
  plain   best-of-n, oracle, one sample per call: independent attempts from the prompt, judged until one passes;
  fttt    the same attempts, plus one AdamW step of the problem's LoRA adapter after each failure;
  optune  the same, plus the learned optimizer's update after each failure (odd attempts sample with it); the
          optimizer is trained first on other problems (HumanEval after the tested ones) and that time is reported
          apart, as a one-off cost.
Printed per method: attempts, wall seconds of the loops, seconds per attempt, its ratio to plain sampling's, and
the extra seconds per training step ((loops - plain loops) / steps: what a step adds, the one model copy doing one
thing at a time). The busy seconds per kind of step (generate, judge, train) are summed over the problems' calls,
so they include waiting for the actor; they show the split, not the cost.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=6)
    parser.add_argument("--budget", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--train-problems", type=int, default=6, help="OpTune's training problems.")
    parser.add_argument("--work", help="Working directory (default: a temporary one).")
    args = parser.parse_args()

    from raylib.cluster import init_cluster
    from raylib.data.problems import load_problems
    from raylib.evaluate.pipeline import evaluate
    from raylib.evaluate.stage import ExecutionPool
    from raylib.files import read_records
    from raylib.generate.settings import GenerationSettings
    from raylib.models import resolve_model
    from raylib.scale.feedback import FTTT_FEEDBACK
    from raylib.scale.optune_train import OpTuneTraining, failure_examples, train_optune
    from raylib.scale.runner import run_scaling
    from raylib.scale.strategies import ScaleSettings
    from raylib.scale.tasks import CodeTasks
    from raylib.train.loop import prepare_tokenizer

    work = Path(args.work or tempfile.mkdtemp(prefix="ttt_cost_"))
    everything = list(load_problems("humaneval").items())
    tested = dict(everything[:args.problems])
    training = dict(everything[args.problems:args.problems + args.train_problems])
    generation = GenerationSettings.model_validate({"engine": {"backend": "hf"},
                                                    "sampling": {"max_tokens": args.max_tokens}})
    execution = ExecutionPool(workers_per_actor=1)
    init_cluster(num_cpus=3, include_dashboard=False, log_to_driver=False)

    # OpTune's one-off training: 2 samples per training problem from the base model, then 1 epoch on the failures
    started = time.perf_counter()
    sampling = generation.model_copy(deep=True)
    sampling.sampling.n, sampling.sampling.temperature = 2, 0.8
    evaluate(training, work / "optune" / "samples", generation=sampling, execution=execution, progress=False)
    samples = {(r["task_id"], r["sample_id"]): r for _, r in read_records(work / "optune/samples/samples.jsonl")}
    results = [r for _, r in read_records(work / "optune/samples/results.jsonl")]
    tokenizer = prepare_tokenizer(resolve_model("embedded"))
    examples = failure_examples(CodeTasks(training, generation.prompt), samples, results, tokenizer, FTTT_FEEDBACK,
                                2048)
    train_optune(examples, [], resolve_model("embedded"), OpTuneTraining(epochs=1), work / "optune")
    optune_training_s = time.perf_counter() - started

    rows = []
    for name, settings in (("plain", ScaleSettings(strategy="best-of-n", budget=args.budget, samples_per_call=1)),
                           ("fttt", ScaleSettings(strategy="fttt", budget=args.budget)),
                           ("optune", ScaleSettings(strategy="optune", budget=args.budget,
                                                    optune=str(work / "optune" / "optune")))):
        summary = run_scaling(CodeTasks(tested, generation.prompt), settings, generation, work / name,
                              dataset="humaneval", execution=execution, progress=False)
        run = summary["this_run"]
        rows.append((name, summary["attempts"], summary["solved"], run["loop_seconds"], run["busy"]))

    plain_cost = rows[0][3] / rows[0][1]
    print(f"{args.problems} HumanEval problems, budget {args.budget}, max {args.max_tokens} tokens, embedded model on "
          f"transformers; work in {work}")
    print(f"OpTune training (one-off, {len(examples)} failures of {len(training)} problems): {optune_training_s:.1f} s")
    print(f"{'method':8} {'attempts':>8} {'solved':>6} {'loops s':>8} {'s/attempt':>9} {'x plain':>7} {'s/step':>6}  "
          "busy seconds (generate / judge / train)")
    for name, attempts, solved, seconds, busy in rows:
        cost, steps = seconds / attempts, busy.get("train_steps", 0)
        per_step = f"{(seconds - rows[0][3]) / steps:6.2f}" if steps else f"{'-':>6}"
        print(f"{name:8} {attempts:8d} {solved:6d} {seconds:8.1f} {cost:9.2f} {cost / plain_cost:7.2f} {per_step}  "
              f"{busy.get('generate_s', 0):.1f} / {busy.get('judge_s', 0):.1f} / {busy.get('train_s', 0):.1f} "
              f"({steps} steps)")
    (work / "ttt_cost.json").write_text(json.dumps({"rows": rows, "optune_training_s": optune_training_s}))


if __name__ == "__main__":
    main()
