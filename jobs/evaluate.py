"""Evaluate a file of model samples on a benchmark: problems x samples -> sandbox actor pool (Ray Data) -> pass@k.

    python jobs/evaluate.py --dataset humaneval --samples samples.jsonl --output runs/eval
    python jobs/evaluate.py --dataset mbpp+ --dataset-path MbppPlus.jsonl --samples s.jsonl --output runs/mbpp --skip-invalid
    ray job submit --working-dir . -- python jobs/evaluate.py --dataset humaneval --samples /abs/s.jsonl --output /abs/out
    python jobs/evaluate.py --help        # every option

Writes OUTPUT/results.jsonl (a row per sample, written as results arrive), summary.json (pass@k for every k the
sample counts allow, counts by status, per difficulty/tag), report.md, pass_at_k.png, reference_times.json and
config.yaml. Re-running with the same output directory evaluates only what is missing (a killed run loses nothing).
Exit status: 0 done; 2 bad input or config; 3 some samples could not be evaluated (infrastructure) - re-run.
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, model_validator  # noqa: E402

from raylib.config import JobConfig, Section, load_config, log_config  # noqa: E402
from raylib.execution import ExecutionPool  # noqa: E402
from raylib.problems import DATASETS, DataError  # noqa: E402


class TimeLimits(Section):
    floor_s: float = Field(1.0, gt=0, description="Smallest per-execution limit, seconds (EvalPlus: 1).")
    factor: float = Field(4.0, ge=1, description="Limit = max(floor, factor x the reference solution's runtime) (EvalPlus: 4).")
    default_s: float = Field(10.0, gt=0, description="Limit for problems without a timed reference solution or dataset limit.")
    from_reference: bool = Field(True, description="Time each problem's reference solution once (cached in reference_times.json).")


class EvaluateConfig(JobConfig):
    dataset: str = Field("humaneval", description=f"Problem set, one of {DATASETS}.")
    dataset_path: str | None = Field(None, description="Problem file (needed by every dataset but humaneval).")
    samples: str | None = Field(None, description="Sample file (openai human-eval / EvalPlus JSONL: task_id + completion or solution).")
    output: str = Field("runs/evaluate", description="Output directory (re-use it to resume).")
    extract_code: bool = Field(False, description="Take code out of chat-style samples (fenced blocks, stray prose) first.")
    skip_invalid: bool = Field(False, description="Skip (and report) invalid sample lines instead of stopping at the first.")
    time_limits: TimeLimits = Field(default_factory=TimeLimits, description="Per-problem time limits.")
    execution: ExecutionPool = Field(default_factory=ExecutionPool, description="Execution actor pool and sandbox.")
    infra_retries: int = Field(2, ge=0, le=10, description="Rounds re-running samples whose sandbox failed (never counted as failed).")
    ray_address: str | None = Field(None, description="Ray cluster to join; None: RAY_ADDRESS (set by `ray job submit`) or a local one.")

    @model_validator(mode="after")
    def _check(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.dataset != "humaneval" and not self.dataset_path:
            raise ValueError(f"dataset {self.dataset!r} needs dataset_path (its problem file)")
        if not self.samples:
            raise ValueError("samples is required: a JSONL file of task_id + completion/solution (generation is not built in yet)")
        return self


def reference_limits(cfg: EvaluateConfig, problems: dict, used: set[str], pool: ExecutionPool) -> tuple[dict, list[str]]:
    """Per-problem time limits; reference solutions are timed once and the times cached beside the results."""
    from raylib.evaluation import reference_seconds, time_limit
    from raylib.execution import execute_samples
    from raylib.samples import Sample
    from sandbox.schema import ExecResult

    tl = cfg.time_limits
    cache_path = Path(cfg.output) / "reference_times.json"
    times: dict[str, float | None] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    todo = [t for t in used if t not in times and problems[t].reference_solution and tl.from_reference]
    warnings = []
    if todo:
        print(f"timing {len(todo)} reference solutions ...", flush=True)
        rows: list[dict] = []
        limits = {t: max(tl.default_s, problems[t].time_limit_s or 0) for t in todo}
        execute_samples([Sample(t, -1, problems[t].reference_solution) for t in todo], problems, limits, pool,
                        lambda heads, lines: rows.extend(map(json.loads, lines)))
        for row in rows:
            result = ExecResult.from_dict({k: row[k] for k in ("status", "passed", "duration_s", "error")}
                                          | {"tests": [dict(index=i, **t) for i, t in enumerate(row["tests"])]})
            times[row["task_id"]] = reference_seconds(result)
            if times[row["task_id"]] is None and row["status"] != "sandbox-error":
                warnings.append(f"{row['task_id']}: reference solution does not pass its tests ({row['status']}: "
                                f"{row['error'][:100]}); using the default limit")
            if row["status"] == "sandbox-error":
                del times[row["task_id"]]  # infrastructure: time it again next run
        tmp = cache_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(times, indent=1, sort_keys=True))
        os.replace(tmp, cache_path)
    limits = {t: time_limit(times.get(t), tl.floor_s, tl.factor, tl.default_s, problems[t].time_limit_s) for t in used}
    return limits, warnings


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(EvaluateConfig, argv)
    from tqdm import tqdm

    from raylib.cluster import init_cluster
    from raylib.evaluation import INFRA_STATUS, ResultsFile
    from raylib.execution import execute_samples
    from raylib.metrics import summarize
    from raylib.problems import load_problems
    from raylib.report import pass_at_k_table, write_report
    from raylib.samples import read_samples

    output = Path(cfg.output)
    log_config(cfg, output)
    started = time.time()
    timings: dict[str, float] = {}  # seconds per stage, in summary.json
    stage_start = [started]

    def lap(name: str) -> None:
        timings[name] = round(time.time() - stage_start[0], 3)
        stage_start[0] = time.time()

    load_warnings: list[str] = []
    try:
        problems = load_problems(cfg.dataset, cfg.dataset_path, warnings=load_warnings)
        samples, skipped = read_samples(cfg.samples, problems, extract=cfg.extract_code, skip_invalid=cfg.skip_invalid)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        if not cfg.skip_invalid and err.line:
            print("(use --skip-invalid to skip invalid sample lines and go on)", file=sys.stderr)
        return 2
    for line in load_warnings[:20]:
        print(f"warning: {line}", file=sys.stderr)
    for err in skipped[:20]:
        print(f"skipped: {err}", file=sys.stderr)
    if len(skipped) > 20:
        print(f"skipped: ... and {len(skipped) - 20} more (all listed in summary.json)", file=sys.stderr)
    if not samples:
        print(f"error: no valid samples in {cfg.samples} ({len(skipped)} invalid lines skipped)", file=sys.stderr)
        return 2
    print(f"{cfg.dataset}: {len(problems)} problems; {len(samples)} samples for {len({s.task_id for s in samples})} "
          f"tasks from {cfg.samples}" + (f"; {len(skipped)} invalid lines skipped" if skipped else ""), flush=True)

    lap("load_s")
    init_cluster(cfg.ray_address)
    lap("cluster_s")
    used = {s.task_id for s in samples}
    limits, ref_warnings = reference_limits(cfg, problems, used, cfg.execution)
    lap("reference_s")
    for line in ref_warnings:
        print(f"warning: {line}", file=sys.stderr)

    store = ResultsFile(output / "results.jsonl")
    done = store.done
    pending = [s for s in samples if store.key_of(s) not in done]
    if len(pending) < len(samples):
        print(f"resuming: {len(samples) - len(pending)} of {len(samples)} samples already evaluated in {output}", flush=True)
    bar = tqdm(total=len(samples), initial=len(samples) - len(pending), desc="evaluating", unit="sample",
               dynamic_ncols=True, mininterval=1.0)
    passed = [sum(1 for s in samples if store.rows.get(store.key_of(s), {}).get("passed"))]

    def on_rows(rows: list[dict], lines: list[str]) -> None:
        written = store.append(rows, lines)
        good = [r for r in rows if r["status"] != INFRA_STATUS]
        passed[0] += sum(r["passed"] for r in good)
        bar.update(min(written, len(good)))
        bar.set_postfix(passed=passed[0], refresh=False)

    for round_ in range(cfg.infra_retries + 1):
        if not pending:
            break
        if round_:
            print(f"retrying {len(pending)} samples whose sandbox failed (round {round_})", flush=True)
        execute_samples(pending, problems, limits, cfg.execution, on_rows)
        done = store.done
        pending = [s for s in pending if store.key_of(s) not in done]
    bar.close()
    lap("evaluate_s")

    rows = store.finalize(samples, {t: i for i, t in enumerate(problems)})
    summary = summarize(rows, problems)
    summary.update(dataset=cfg.dataset, samples_file=str(cfg.samples), wall_time_s=round(time.time() - started, 2),
                   skipped_input=[str(e) for e in skipped], load_warnings=load_warnings, reference_warnings=ref_warnings,
                   time_limit_s={"min": min(limits.values()), "max": max(limits.values())}, timings_s=timings)
    tmp = output / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, output / "summary.json")
    write_report(summary, output, title=f"{cfg.dataset}: {Path(cfg.samples).name}")
    print("\n" + pass_at_k_table(summary))
    print(f"\nstatuses: {summary['statuses']}; results in {output}/ (results.jsonl, summary.json, report.md, pass_at_k.png)")
    if summary["infra_errors"]:
        print(f"error: {summary['infra_errors']} samples could not be evaluated (sandbox infrastructure); they are left "
              "out of pass@k - re-run with the same --output to retry them", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
