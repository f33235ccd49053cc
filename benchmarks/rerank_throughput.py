"""Reranking throughput: the orm verifier's actor pool vs a bare transformers loop, and public-tests vs evaluation.

    .venv/bin/python benchmarks/rerank_throughput.py                 # 164 HumanEval problems x 4 variants = 656
    .venv/bin/python benchmarks/rerank_throughput.py --quick         # smoke run: 20 problems
    .venv/bin/python benchmarks/rerank_throughput.py --batch-size 16 --cpus 2 --output runs/bench_rerank

Candidates: each HumanEval problem's reference solution and broken variants (`reference_samples`), written to a
sample file and read back with `read_samples` (whole programs). In one run, on one local Ray cluster started first
(its start is not timed):

  1. evaluation: `raylib.evaluate.pipeline.evaluate(problems, DIR, samples=...)` (time limits from the reference
     solutions, then the sandbox actor pool); its results.jsonl labels every rerank below, so no rerank runs the
     hidden tests. Rate: samples/s, end to end (the call) and of its evaluation stage (summary timings evaluate_s).
  2. public-tests: `rerank(problems, samples, "public-tests", DIR, results=<1>)` on a fresh DIR: candidates/s.
  3. orm, a reward model: the packaged all-MiniLM-L6-v2 encoder with a fresh 1-label sequence-classification head
     (seed 0), saved to a temporary directory. Both sides use the same tokenizer call (task prompt, program;
     truncation longest_first, --max-length), the same groups of --problems-per-batch problems (what one actor call
     gets), the same batches (one problem's candidates, length-sorted, at most --batch-size), float32 forward passes
     under torch.no_grad, and
     --cpus torch threads (the actor reserves --cpus CPUs; Ray sets its OMP_NUM_THREADS to that, checked below):
       bare      transformers in this process: model load, then the loop (after one untimed warm-up batch);
       codeloop  `rerank(..., "orm", settings=VerifierSettings(reward_model={model, batch_size, actors: 1,
                 cpus_per_actor: --cpus}), results=<1>)` on a fresh DIR.
     Both produce the same scores (max abs difference printed).

Times reported for each rerank: end to end (the rerank() call: Ray Data's actor start, the verifier's set-up — model
load or sandbox start —, scoring, scores.jsonl, summary, report and plot), scoring (its `_score_pending`: actor
start-up and scoring), and steady state, two ways, neither with actor start-up or model load:
  arrivals   candidates after the first batch that reached the driver / time from that batch to the last (too high
             when Ray Data hands over batches in bursts);
  one-batch  for orm: a second rerank() of the first --problems-per-batch problems only (fresh DIR: actor start, model
             load, one batch) is subtracted from the full one: (candidates - its candidates) / (scoring - its scoring).
Ratios (target for orm: >= 0.9 steady state, the one-batch way):
  orm:          codeloop steady candidates/s / bare loop candidates/s; also scoring and end to end vs load + loop;
  public-tests: rerank candidates/s / evaluate() samples/s, end to end and scoring stage vs evaluation stage.
Prints a markdown table for BENCHMARKS.md; with --output, writes it and every number to DIR/rerank_throughput.{md,json}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from raylib.data.problems import load_problems  # noqa: E402
from raylib.data.samples import BROKEN_VARIANTS, read_samples, reference_samples  # noqa: E402
from raylib.files import write_records  # noqa: E402

VARIANTS = ("canonical", "wrong-result", "exception", "syntax-error")


def build_reward_model(out: Path) -> Path:
    """A 1-label sequence classifier on the packaged MiniLM encoder (head initialised with seed 0), saved to `out`."""
    import torch
    import transformers

    from raylib.models import minilm_dir

    transformers.logging.set_verbosity_error()  # "newly initialized weights: classifier" is the point here
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=1)
    model.save_pretrained(out)
    transformers.AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(out)
    return out


def problem_groups(problems: dict, samples: list) -> tuple[list[str], dict[str, list]]:
    """Problems in dataset order and each one's candidates by sample_id, as rerank() forms them."""
    by_task: dict[str, list] = {}
    for sample in sorted(samples, key=lambda s: s.sample_id):
        by_task.setdefault(sample.task_id, []).append(sample)
    return [t for t in problems if t in by_task], by_task


def bare_loop(model_dir: Path, problems: dict, samples: list, args) -> dict:
    """The reward model over the same batches in this process with plain transformers; scores keyed like rerank's."""
    import torch
    import transformers

    torch.set_num_threads(args.cpus_int)
    started = time.perf_counter()
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    load_s = time.perf_counter() - started
    pad = tokenizer.pad_token_id
    order, by_task = problem_groups(problems, samples)
    groups = [order[i:i + args.problems_per_batch] for i in range(0, len(order), args.problems_per_batch)]

    def score(group: list[str]) -> dict:
        out = {}
        for task in group:  # one problem's candidates per forward batch, as the orm verifier does
            keys = [(task, sample.sample_id) for sample in by_task[task]]
            inputs = [tokenizer(problems[task].prompt, sample.program, truncation="longest_first",
                                max_length=args.max_length)["input_ids"] for sample in by_task[task]]
            ranked = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
            with torch.no_grad():
                for start in range(0, len(ranked), args.batch_size):
                    chunk = ranked[start:start + args.batch_size]
                    width = max(len(inputs[i]) for i in chunk)
                    ids = torch.tensor([inputs[i] + [pad] * (width - len(inputs[i])) for i in chunk])
                    mask = torch.tensor([[1] * len(inputs[i]) + [0] * (width - len(inputs[i])) for i in chunk])
                    logits = model(input_ids=ids, attention_mask=mask).logits.float().tolist()
                    for i, row in zip(chunk, logits):
                        out[keys[i]] = row[0]
        return out

    score(groups[0])  # warm-up (untimed): the actor's first batch is left out of its steady state too
    started = time.perf_counter()
    scores = {}
    for group in groups:
        scores.update(score(group))
    loop_s = time.perf_counter() - started
    return {"load_s": load_s, "loop_s": loop_s, "scores": scores, "threads": torch.get_num_threads()}


@contextlib.contextmanager
def timed_rerank():
    """Record when each batch of scores reaches the driver (ScoresFile.append) and how long _score_pending takes."""
    from raylib.rerank import pipeline

    record = {"appends": [], "score_pending_s": None}
    append, score_pending = pipeline.ScoresFile.append, pipeline._score_pending

    def timed_append(self, rows, lines=None):
        record["appends"].append((time.perf_counter(), len(rows)))
        return append(self, rows, lines)

    def timed_score_pending(*a, **k):
        started = time.perf_counter()
        try:
            return score_pending(*a, **k)
        finally:
            record["score_pending_s"] = time.perf_counter() - started

    pipeline.ScoresFile.append, pipeline._score_pending = timed_append, timed_score_pending
    try:
        yield record
    finally:
        pipeline.ScoresFile.append, pipeline._score_pending = append, score_pending


def run_rerank(problems: dict, samples: list, verifier: str, output: Path, labels: Path, settings) -> dict:
    from raylib.rerank.pipeline import rerank

    with timed_rerank() as record:
        started = time.perf_counter()
        result = rerank(problems, samples, verifier, output, settings=settings, results=labels, progress=False)
        total_s = time.perf_counter() - started
    appends = record["appends"]
    first_at, _ = appends[0]
    after_first = sum(n for _, n in appends[1:])  # one row per candidate (one verifier)
    steady_s = appends[-1][0] - first_at
    return {"total_s": total_s, "scoring_s": record["score_pending_s"], "first_batch_s": first_at - started,
            "batches": len(appends), "steady_candidates": after_first, "steady_s": steady_s,
            "steady_rate": after_first / steady_s if after_first and steady_s > 0 else None,
            "top1": result.top1(verifier), "output": output,
            "arrivals_s": [(round(at - started, 3), rows) for at, rows in appends]}


def actor_threads(cpus: float) -> int:
    """torch's thread count in a Ray worker that reserves `cpus` CPUs, as the orm actor does."""
    import ray

    @ray.remote(num_cpus=cpus)
    def threads() -> int:
        import torch

        return torch.get_num_threads()

    return ray.get(threads.remote())


def markdown(facts: dict, rows: list[tuple]) -> str:
    lines = [f"`{facts['command']}`", "",
             f"Machine: {facts['cpus']} CPUs ({facts['platform']}, Python {facts['python']}, torch {facts['torch']}); "
             f"{facts['problems']} HumanEval problems x {facts['variants']} variants = {facts['candidates']} "
             f"candidates; orm batch {facts['batch_size']}, {facts['problems_per_batch']} problems per actor call, "
             f"{facts['cpus_per_actor']} CPUs / torch threads (bare {facts['bare_threads']}, "
             f"actor {facts['actor_threads']}), max_length {facts['max_length']}.", "",
             "| measure | codeloop | baseline (same run) | ratio | target |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=164, help="first N HumanEval problems")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated: canonical and/or {', '.join(BROKEN_VARIANTS)}")
    parser.add_argument("--batch-size", type=int, default=16, help="orm sequences per forward pass (its default)")
    parser.add_argument("--problems-per-batch", type=int, default=4, help="problems per actor call (rerank's default)")
    parser.add_argument("--max-length", type=int, default=512, help="tokens per input (MiniLM's positions: 512)")
    parser.add_argument("--cpus", type=float, default=2.0, help="CPUs of the orm actor = torch threads on both sides")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 problems")
    parser.add_argument("--output", type=Path, help="also write rerank_throughput.md/.json here")
    args = parser.parse_args()
    if args.quick:
        args.problems = min(args.problems, 20)
    args.cpus_int = max(1, int(args.cpus))
    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    unknown = set(variants) - {"canonical", *BROKEN_VARIANTS}
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}")

    import torch

    from raylib.cluster import init_cluster, shutdown_cluster
    from raylib.evaluate.pipeline import evaluate
    from raylib.rerank.settings import VerifierSettings

    problems = dict(list(load_problems("humaneval").items())[:args.problems])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_records(tmp / "samples.jsonl", reference_samples(problems, variants))
        samples, _ = read_samples(tmp / "samples.jsonl", problems)
        n = len(samples)
        model_dir = build_reward_model(tmp / "orm-model")
        print(f"{len(problems)} HumanEval problems x {len(variants)} variants ({', '.join(variants)}) = {n} "
              f"candidates; {os.cpu_count()} CPUs; orm: MiniLM-L6 + 1-label head, batch {args.batch_size}, "
              f"{args.problems_per_batch} problems per call, {args.cpus:g} CPUs/threads", flush=True)

        started = time.perf_counter()
        init_cluster("local", include_dashboard=False, log_to_driver=False)
        print(f"Ray cluster started in {time.perf_counter() - started:.1f} s (not in any time below)", flush=True)
        threads_in_actor = actor_threads(args.cpus)

        # 1. the evaluation job's rate; its results label every rerank below
        started = time.perf_counter()
        evaluation = evaluate(problems, tmp / "evaluation", samples=samples, progress=False)
        eval_s = time.perf_counter() - started
        eval_stage_s = evaluation.summary["timings_s"]["evaluate_s"]
        print(f"evaluate():            {eval_s:7.2f} s  {n / eval_s:7.1f} samples/s end to end; evaluation stage "
              f"{eval_stage_s:.2f} s  {n / eval_stage_s:7.1f} samples/s; statuses {evaluation.summary['statuses']}",
              flush=True)

        # 2. public-tests
        public = run_rerank(problems, samples, "public-tests", tmp / "rerank-public", tmp / "evaluation",
                            VerifierSettings())
        print(f"rerank public-tests:   {public['total_s']:7.2f} s  {n / public['total_s']:7.1f} candidates/s end "
              f"to end; scoring {public['scoring_s']:.2f} s  {n / public['scoring_s']:7.1f} candidates/s; steady "
              f"{_rate(public['steady_rate'])} ({public['batches']} batches, first after "
              f"{public['first_batch_s']:.2f} s); top-1 {public['top1']:.3f}", flush=True)

        # 3. orm: bare loop, then the actor pool
        bare = bare_loop(model_dir, problems, samples, args)
        bare_rate = n / bare["loop_s"]
        print(f"bare transformers:     load {bare['load_s']:.2f} s, loop {bare['loop_s']:.2f} s  {bare_rate:7.1f} "
              f"candidates/s ({bare['threads']} torch threads; actor: {threads_in_actor})", flush=True)
        settings = VerifierSettings(reward_model={"model": str(model_dir), "batch_size": args.batch_size,
                                                  "max_length": args.max_length, "actors": 1,
                                                  "cpus_per_actor": args.cpus})
        orm = run_rerank(problems, samples, "orm", tmp / "rerank-orm", tmp / "evaluation", settings)
        print(f"rerank orm:            {orm['total_s']:7.2f} s  {n / orm['total_s']:7.1f} candidates/s end to end; "
              f"scoring {orm['scoring_s']:.2f} s; steady {_rate(orm['steady_rate'])} ({orm['batches']} batches, "
              f"first after {orm['first_batch_s']:.2f} s: actor start + model load + first batch)", flush=True)
        order, _ = problem_groups(problems, samples)
        first = set(order[:args.problems_per_batch])
        small = run_rerank({t: problems[t] for t in first}, [s for s in samples if s.task_id in first], "orm",
                           tmp / "rerank-orm-one-batch", tmp / "evaluation", settings)
        small_n = sum(1 for s in samples if s.task_id in first)
        extra_s = orm["scoring_s"] - small["scoring_s"]
        orm_sub_rate = (n - small_n) / extra_s if n > small_n and extra_s > 0 else None
        print(f"rerank orm, one batch: {small['total_s']:7.2f} s end to end, scoring {small['scoring_s']:.2f} s "
              f"({small_n} candidates); steady state by difference {_rate(orm_sub_rate)}", flush=True)
        ours = {}
        for line in (orm["output"] / "scores.jsonl").read_text().splitlines():
            row = json.loads(line)
            ours[(row["task_id"], int(row["sample_id"]))] = row["score"]
        if ours.keys() != bare["scores"].keys():
            sys.exit(f"orm scored {len(ours)} candidates, the bare loop {len(bare['scores'])}: not the same set")
        max_diff = max(abs(ours[k] - bare["scores"][k]) for k in ours)
        print(f"orm scores vs bare loop: max abs diff {max_diff:.2e} over {len(ours)} candidates", flush=True)
        shutdown_cluster()

    orm_steady = orm_sub_rate / bare_rate if orm_sub_rate else None
    orm_arrivals = orm["steady_rate"] / bare_rate if orm["steady_rate"] else None
    orm_e2e = (bare["load_s"] + bare["loop_s"]) / orm["total_s"]
    orm_scoring = bare["loop_s"] / orm["scoring_s"]
    pt_e2e = (n / public["total_s"]) / (n / eval_s)
    pt_stage = (n / public["scoring_s"]) / (n / eval_stage_s)
    print(f"ratio orm / bare loop: {_ratio(orm_steady)} steady state, one-batch way (target >= 0.9); "
          f"{_ratio(orm_arrivals)} steady state from arrivals; {orm_scoring:.3f} scoring "
          f"incl. actor start + model load, {orm_e2e:.3f} end to end (bare load + loop / rerank())")
    print(f"ratio public-tests candidates/s / evaluation samples/s: {pt_e2e:.3f} end to end, {pt_stage:.3f} "
          f"scoring stage / evaluation stage")

    facts = {"command": "python " + " ".join([f"benchmarks/{Path(__file__).name}", *sys.argv[1:]]),
             "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
             "torch": torch.__version__, "problems": len(problems), "variants": len(variants), "candidates": n,
             "batch_size": args.batch_size, "problems_per_batch": args.problems_per_batch,
             "cpus_per_actor": args.cpus, "bare_threads": bare["threads"], "actor_threads": threads_in_actor,
             "max_length": args.max_length}
    rows = [
        ("orm steady state (full run minus a one-batch run)", _rate(orm_sub_rate),
         f"{bare_rate:.1f} cand/s (bare loop)", f"**{_ratio(orm_steady)}**", ">= 0.9"),
        ("orm steady state (batch arrivals after the first)", _rate(orm["steady_rate"]),
         f"{bare_rate:.1f} cand/s (bare loop)", _ratio(orm_arrivals), "-"),
        ("orm scoring (actor start + model load + scoring)", f"{orm['scoring_s']:.2f} s",
         f"{bare['loop_s']:.2f} s (loop)", f"{orm_scoring:.3f}", "-"),
        ("orm end to end (rerank() / bare load + loop)", f"{orm['total_s']:.2f} s",
         f"{bare['load_s'] + bare['loop_s']:.2f} s", f"{orm_e2e:.3f}", "-"),
        ("orm scores, max abs diff", f"{max_diff:.2e}", "", "", "~0"),
        ("public-tests end to end (rerank() / evaluate())", f"{n / public['total_s']:.1f} cand/s",
         f"{n / eval_s:.1f} samples/s", f"{pt_e2e:.3f}", "-"),
        ("public-tests scoring stage / evaluation stage", f"{n / public['scoring_s']:.1f} cand/s",
         f"{n / eval_stage_s:.1f} samples/s", f"{pt_stage:.3f}", "-"),
        ("public-tests steady state", _rate(public["steady_rate"]), "", "", "-"),
    ]
    table = markdown(facts, rows)
    print()
    print(table)
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "rerank_throughput.md").write_text(table + "\n")
        numbers = {**facts, "evaluate": {"total_s": eval_s, "stage_s": eval_stage_s,
                                         "statuses": evaluation.summary["statuses"]},
                   "public_tests": {k: v for k, v in public.items() if k != "output"},
                   "orm": {k: v for k, v in orm.items() if k != "output"},
                   "orm_one_batch": {**{k: v for k, v in small.items() if k != "output"}, "candidates": small_n,
                                     "steady_rate_by_difference": orm_sub_rate},
                   "bare": {k: v for k, v in bare.items() if k != "scores"},
                   "orm_max_abs_diff": max_diff,
                   "ratios": {"orm_steady": orm_steady, "orm_steady_arrivals": orm_arrivals,
                              "orm_scoring": orm_scoring, "orm_end_to_end": orm_e2e,
                              "public_tests_end_to_end": pt_e2e, "public_tests_stage": pt_stage}}
        (args.output / "rerank_throughput.json").write_text(json.dumps(numbers, indent=2) + "\n")
        print(f"\nwritten to {args.output}/rerank_throughput.md and .json")


def _rate(value: float | None) -> str:
    return f"{value:.1f} cand/s" if value else "n/a (one batch)"


def _ratio(value: float | None) -> str:
    return f"{value:.3f}" if value else "n/a"


if __name__ == "__main__":
    main()
