"""Evaluate a model on a benchmark: problems -> engine actors (vLLM) -> sandbox actors -> pass@k, one Ray Data
pipeline; or evaluate a file of samples: samples -> sandbox actor pool -> pass@k.

    python jobs/evaluate.py --dataset humaneval --output runs/eval                  # the main job: embedded model, n=1
    python jobs/evaluate.py --dataset humaneval --output runs/eval10 --model /models/ckpt --n 10 --temperature 0.8
    python jobs/evaluate.py --dataset humaneval --samples samples.jsonl --output runs/eval
    python jobs/evaluate.py --dataset mbpp+ --dataset-path MbppPlus.jsonl --samples s.jsonl --output runs/mbpp --skip-invalid
    ray job submit --working-dir . -- python jobs/evaluate.py --dataset humaneval --samples /abs/s.jsonl --output /abs/out
    python jobs/evaluate.py --help        # every option

Writes OUTPUT/results.jsonl (a row per sample, written as results arrive), summary.json (pass@k for every k the
sample counts allow, counts by status, per difficulty/tag; generation counts), report.md, pass_at_k.png,
reference_times.json and config.yaml; when it generates, also samples.jsonl (as jobs/generate.py writes it).
Re-running with the same output directory generates and evaluates only what is missing (a killed run loses nothing).
Exit status: 0 done; 2 bad input or config; 3 some samples could not be evaluated (infrastructure) - re-run.
"""

import concurrent.futures
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Literal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, model_validator  # noqa: E402

from raylib.config import JobConfig, load_config, log_config, Section  # noqa: E402
from raylib.files import claim_output, write_json  # noqa: E402
from raylib.evaluate.stage import ExecutionPool  # noqa: E402
from raylib.generate.settings import GenerationSettings, GenerationShortcuts  # noqa: E402
from raylib.data.problems import check_dataset, DATASETS  # noqa: E402
from raylib.files import DataError  # noqa: E402


class TimeLimits(Section):
    floor_s: float = Field(1.0, gt=0, description="Smallest per-execution limit, seconds (EvalPlus: 1).")
    factor: float = Field(4.0, ge=1, description="Limit = max(floor, factor x the reference solution's runtime) (EvalPlus: 4).")
    default_s: float = Field(10.0, gt=0, description="Limit for problems without a timed reference solution or dataset limit.")
    from_reference: bool = Field(True, description="Time each problem's reference solution once (cached in reference_times.json).")
    reference_on: Literal["auto", "driver", "cluster"] = Field(
        "auto", description="Where references are timed: driver (in this process, while the cluster starts), cluster "
        "(the execution actor pool), auto (driver for up to 2,000 executions when it has a sandbox, else cluster).")


class EvaluateConfig(JobConfig, GenerationShortcuts):
    dataset: str = Field("humaneval", description=f"Problem set, one of {DATASETS}.")
    dataset_path: str | None = Field(
        None, description="Problem file; None: the shipped one (humaneval, humaneval+, mbpp, mbpp+).")
    samples: str | None = Field(None, description="Sample file (openai human-eval / EvalPlus JSONL: task_id + completion "
                                "or solution); None: generate them (see generation, --model, --n, ...).")
    limit: int | None = Field(None, ge=1, description="Generate for the first N problems only (quick runs).")
    generation: GenerationSettings = Field(default_factory=GenerationSettings, description="Engine, sampling, prompts, actors (without --samples).")
    output: str = Field("runs/evaluate", description="Output directory (re-use it to resume).")
    extract_code: bool = Field(False, description="Take code out of chat-style samples (fenced blocks, stray prose) first.")
    skip_invalid: bool = Field(False, description="Skip (and report) invalid sample lines instead of stopping at the first.")
    time_limits: TimeLimits = Field(default_factory=TimeLimits, description="Per-problem time limits.")
    execution: ExecutionPool = Field(default_factory=ExecutionPool, description="Execution actor pool and sandbox.")
    infra_retries: int = Field(2, ge=0, le=10, description="Rounds re-running samples whose sandbox failed (never counted as failed).")
    ray_address: str | None = Field(None, description="Ray cluster to join; None: RAY_ADDRESS (set by `ray job submit`) or a local one.")

    @model_validator(mode="after")
    def _check(self):
        check_dataset(self.dataset, self.dataset_path)
        if self.samples:
            given = [f for f in GenerationShortcuts.model_fields if getattr(self, f) is not None] + (["limit"] if self.limit else [])
            if given:
                raise ValueError(f"{', '.join(given)} set the generation, which only runs without --samples")
            if self.generation != GenerationSettings():
                raise ValueError("generation.* settings apply only without --samples (this run evaluates a file)")
        return self


def reference_times(cfg: EvaluateConfig, problems: dict, used: set[str]) -> tuple[dict[str, float | None], list[str]]:
    """Cached reference runtimes (reference_times.json beside the results) and the tasks still to time. Call tests
    (HumanEval+, MBPP+) are not timed here: the sandbox limits each of their calls by the reference's own time."""
    from sandbox.schema import CallTests

    path = Path(cfg.output) / "reference_times.json"
    times = json.loads(path.read_text()) if path.exists() else {}
    todo = [t for t in sorted(used) if t not in times and problems[t].reference_solution and cfg.time_limits.from_reference
            and not isinstance(problems[t].tests, CallTests)]
    return times, todo


def record_reference_times(cfg: EvaluateConfig, times: dict, results: dict) -> list[str]:
    """Add timed references to `times` and save them; returns a warning per reference that fails its own tests."""
    from raylib.evaluate.limits import reference_seconds
    from raylib.evaluate.requests import INFRA_STATUS

    warnings = []
    for task_id, result in results.items():
        if result.status == INFRA_STATUS:
            continue  # infrastructure: time it again next run
        times[task_id] = reference_seconds(result)
        if times[task_id] is None:
            warnings.append(f"{task_id}: reference solution does not pass its tests ({result.status}: "
                            f"{result.error[:100]}); using the default limit")
    write_json(Path(cfg.output) / "reference_times.json", dict(sorted(times.items())))
    return warnings


class InfrastructureError(RuntimeError):
    """The sandbox infrastructure failed in a way retries did not cure (exit status 3)."""


def check_output_matches(cfg: EvaluateConfig, problems: dict) -> str | None:
    """An output directory holds the results of one problem set under one set of settings: a re-run with another
    (say HumanEval+ after HumanEval: the same task ids, other tests; or another model) must not reuse them. Returns
    what differs, or None (and records this run's identity in OUTPUT/evaluation_identity.json, and when it generates
    the samples' in OUTPUT/generation_identity.json, as jobs/generate.py does). `problems`: the whole dataset."""
    from raylib.generate.settings import generation_identity
    from raylib.data.problems import problems_sha

    sha = problems_sha(problems)
    if not cfg.samples:
        changed = claim_output(Path(cfg.output) / "generation_identity.json",
                               generation_identity(cfg.dataset, sha, cfg.generation))
        if changed:
            return changed
    identity = {
        "dataset": cfg.dataset,
        "problems_sha": sha,
        "time_limits": cfg.time_limits.model_dump(exclude={"reference_on"}),
        "extract_code": cfg.extract_code,
        "memory_mb": cfg.execution.memory_mb,
    }
    return claim_output(Path(cfg.output) / "evaluation_identity.json", identity)


def start_cluster_and_time_references(cfg: EvaluateConfig, problems: dict, used: set[str], lap) -> tuple[dict, list[str]]:
    """Join/start the cluster and set each used problem's time limit; returns (limits, warnings).

    Limits depend on the reference solutions' runtimes, so those are timed first: in this process while the cluster
    starts when they are few (and this machine has a sandbox), else on the cluster.
    """
    from raylib.cluster import init_cluster
    from raylib.evaluate.limits import CALL_TESTS_CAP_S, time_limit
    from raylib.evaluate.requests import INFRA_STATUS
    from raylib.evaluate.stage import run_references_here, run_references_on_cluster
    from sandbox.schema import CallTests

    tl = cfg.time_limits
    times, todo = reference_times(cfg, problems, used)
    ref_limits = {t: max(tl.default_s, problems[t].time_limit_s or 0) for t in todo}
    executions = sum(len(getattr(problems[t].tests, "cases", [None])) for t in todo)
    background = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="reference-timing")
    timing_here = None
    if todo and (tl.reference_on == "driver" or (tl.reference_on == "auto" and executions <= 2000)):
        print(f"timing {len(todo)} reference solutions in this process ...", flush=True)
        timing_here = background.submit(run_references_here, problems, todo, ref_limits, cfg.execution)
    lap("load_s")
    reserve = 0.0 if cfg.samples else cfg.generation.num_cpus * cfg.generation.replicas
    local = not (cfg.ray_address or os.environ.get("RAY_ADDRESS"))
    # A local cluster gets the engine actors' CPUs on top of the cores, so the sandbox pool still gets every core.
    init_cluster(cfg.ray_address, num_cpus=(os.cpu_count() or 1) + math.ceil(reserve) if local and reserve else None)
    lap("cluster_s")
    results = None
    if timing_here is not None:
        try:
            results = timing_here.result()
        except Exception as exc:  # noqa: BLE001 - e.g. no sandbox isolation on the driver's machine: use the cluster
            print(f"warning: timing references in this process failed ({exc}); timing them on the cluster", file=sys.stderr)
    background.shutdown()
    if todo and results is None:
        print(f"timing {len(todo)} reference solutions on the cluster ...", flush=True)
        results = run_references_on_cluster(problems, todo, ref_limits, cfg.execution)
    for _ in range(cfg.infra_retries):  # a reference whose sandbox failed has no time: never guess its limit
        broken = [t for t, r in (results or {}).items() if r.status == INFRA_STATUS]
        if not broken:
            break
        print(f"timing {len(broken)} reference solutions again (their sandbox failed)", flush=True)
        results.update(run_references_on_cluster(problems, broken, ref_limits, cfg.execution))
    broken = [t for t, r in (results or {}).items() if r.status == INFRA_STATUS]
    if broken:
        raise InfrastructureError(f"the sandbox failed while timing the reference solutions of {len(broken)} tasks "
                                  f"(e.g. {broken[0]}: {results[broken[0]].error[:200]}); nothing was evaluated - re-run")
    warnings = record_reference_times(cfg, times, results) if todo else []
    limits = {t: CALL_TESTS_CAP_S if isinstance(problems[t].tests, CallTests)
              else time_limit(times.get(t), tl.floor_s, tl.factor, tl.default_s, problems[t].time_limit_s) for t in used}
    lap("reference_s")
    return limits, warnings


def evaluate_pending(cfg: EvaluateConfig, samples: list, problems: dict, limits: dict, store, quiet_if_done: bool = False) -> None:
    """Evaluate every sample `store` (a ResultsFile) does not have yet, with a progress bar; samples whose sandbox
    failed are retried for up to `infra_retries` more rounds. `quiet_if_done`: say nothing when nothing is left."""
    from tqdm import tqdm

    from raylib.evaluate.requests import INFRA_STATUS
    from raylib.evaluate.stage import execute_samples

    done = store.done
    pending = [s for s in samples if store.key_of(s) not in done]
    if quiet_if_done and not pending:
        return
    if len(pending) < len(samples):
        print(f"resuming: {len(samples) - len(pending)} of {len(samples)} samples already evaluated in {cfg.output}", flush=True)
    bar = tqdm(total=len(samples), initial=len(samples) - len(pending), desc="evaluating", unit="sample",
               dynamic_ncols=True, mininterval=1.0)
    passed = sum(1 for s in samples if store.rows.get(store.key_of(s), {}).get("passed"))

    def on_rows(rows: list[dict], lines: list[str]) -> None:
        nonlocal passed
        written = store.append(rows, lines)
        good = [r for r in rows if r["status"] != INFRA_STATUS]
        passed += sum(r["passed"] for r in good)
        bar.update(min(written, len(good)))
        bar.set_postfix(passed=passed, refresh=False)

    for round_ in range(cfg.infra_retries + 1):
        if not pending:
            break
        if round_:
            print(f"retrying {len(pending)} samples whose sandbox failed (round {round_})", flush=True)
        execute_samples(pending, problems, limits, cfg.execution, on_rows)
        done = store.done
        pending = [s for s in pending if store.key_of(s) not in done]
    bar.close()


def generate_and_evaluate(cfg: EvaluateConfig, problems: dict, limits: dict, store) -> tuple[list, dict]:
    """Generate the samples OUTPUT/samples.jsonl lacks and evaluate them as they come, in one streaming pipeline
    (engine actors -> sandbox actors); returns (every sample of the file, generation counts). Samples generated
    by a killed run but not evaluated are left to `evaluate_pending`, like sandbox failures."""
    from tqdm import tqdm

    from raylib.evaluate.requests import INFRA_STATUS
    from raylib.evaluate.stage import execution_stage, iter_results
    from raylib.generate.samples_file import SamplesFile
    from raylib.generate.loop import generated_samples, generation_summary, pending_requests
    from raylib.generate.stage import generation_stage

    gen = cfg.generation
    path = Path(cfg.output) / "samples.jsonl"
    samples_store = SamplesFile(path)
    requests = pending_requests(problems, gen.sampling.n, samples_store.done)
    todo = sum(r["count"] for r in requests)
    total = len(problems) * gen.sampling.n
    print(f"generating {todo} samples ({len(problems)} problems x {gen.sampling.n}) with {gen.engine.backend} "
          f"model {gen.engine.model}" + (f"; {total - todo} already in {path}" if todo < total else ""), flush=True)
    started, fresh = time.time(), []
    if requests:
        stage = generation_stage(requests, problems, gen)
        stage = execution_stage(stage, problems, set(problems), limits, cfg.execution, rows=todo,
                                reserved_cpus=gen.num_cpus * gen.replicas,
                                batch_size=min(cfg.execution.batch_size, gen.batch_size * gen.sampling.n))
        bar = tqdm(total=todo, desc="generating+evaluating", unit="sample", dynamic_ncols=True, mininterval=1.0)
        passed = 0
        try:
            for heads, lines, sample_lines in iter_results(stage):
                samples_store.append(sample_lines)  # first: a result row never exists without its sample
                fresh.extend(sample_lines)
                store.append(heads, lines)
                passed += sum(1 for h in heads if h["passed"] and h["status"] != INFRA_STATUS)
                bar.update(len(heads))
                bar.set_postfix(passed=passed, refresh=False)
        except Exception as exc:  # e.g. an engine actor that died more often than max_actor_restarts
            samples_store.close()
            raise InfrastructureError(f"the generate+evaluate pipeline failed ({type(exc).__name__}: {str(exc)[:500]}); "
                                      f"the {len(fresh)} samples generated in this run are kept in {path} - re-run with "
                                      "the same --output to resume") from exc
        finally:
            bar.close()
    seconds = time.time() - started
    samples_store.finalize({t: i for i, t in enumerate(problems)})
    samples_store.close()
    samples = generated_samples(samples_store.lines.values(), problems, gen.sampling.n)
    counts = generation_summary([samples_store.lines[(s.task_id, s.sample_id)] for s in samples])
    if fresh:
        counts["this_run"] = generation_summary(fresh, seconds)
    return samples, counts


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(EvaluateConfig, argv)
    from raylib.evaluate.results_file import ResultsFile
    from raylib.evaluate.metrics import summarize
    from raylib.data.problems import load_problems
    from raylib.evaluate.report import pass_at_k_table, write_report
    from raylib.data.samples import read_samples

    output = Path(cfg.output)
    started = time.time()
    timings: dict[str, float] = {}  # seconds per stage, in summary.json
    stage_start = [started]

    def lap(name: str) -> None:
        timings[name] = round(time.time() - stage_start[0], 3)
        stage_start[0] = time.time()

    load_warnings: list[str] = []
    try:
        dataset = load_problems(cfg.dataset, cfg.dataset_path, warnings=load_warnings)
        problems = dict(list(dataset.items())[:cfg.limit]) if cfg.limit else dataset
        if cfg.samples:
            samples, skipped = read_samples(cfg.samples, problems, extract=cfg.extract_code, skip_invalid=cfg.skip_invalid)
        else:
            samples, skipped = [], []
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        if cfg.samples and not cfg.skip_invalid and err.line and Path(err.path) == Path(cfg.samples):
            print("(use --skip-invalid to skip invalid sample lines and go on)", file=sys.stderr)
        return 2
    for line in load_warnings[:20]:
        print(f"warning: {line}", file=sys.stderr)
    for err in skipped[:20]:
        print(f"skipped: {err}", file=sys.stderr)
    if len(skipped) > 20:
        print(f"skipped: ... and {len(skipped) - 20} more (all listed in summary.json)", file=sys.stderr)
    if cfg.samples and not samples:
        print(f"error: no valid samples in {cfg.samples} ({len(skipped)} invalid lines skipped)", file=sys.stderr)
        return 2
    changed = check_output_matches(cfg, dataset)
    if changed:
        print(f"error: {output} holds results evaluated with other problems or settings (changed: {changed}); "
              "use a new --output, or delete it to start over", file=sys.stderr)
        return 2
    log_config(cfg, output)  # only now: a refused run must not overwrite the config of the results there
    if cfg.samples:
        print(f"{cfg.dataset}: {len(problems)} problems; {len(samples)} samples for {len({s.task_id for s in samples})} "
              f"tasks from {cfg.samples}" + (f"; {len(skipped)} invalid lines skipped" if skipped else ""), flush=True)
    used = {s.task_id for s in samples} if cfg.samples else set(problems)

    try:
        limits, ref_warnings = start_cluster_and_time_references(cfg, problems, used, lap)
    except InfrastructureError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    for line in ref_warnings:
        print(f"warning: {line}", file=sys.stderr)
    store = ResultsFile(output / "results.jsonl")
    generation = None
    if not cfg.samples:
        try:
            samples, generation = generate_and_evaluate(cfg, problems, limits, store)
        except InfrastructureError as err:
            print(f"error: {err}", file=sys.stderr)
            return 3
        lap("generate_s")
    evaluate_pending(cfg, samples, problems, limits, store, quiet_if_done=not cfg.samples)
    lap("evaluate_s")

    rows = store.finalize(samples, {t: i for i, t in enumerate(problems)})
    samples_file = cfg.samples or str(output / "samples.jsonl")
    if store.stale_rows:
        outside = f"no longer in {samples_file}" if cfg.samples else "outside this run's --limit / --n"
        print(f"warning: {store.stale_rows} results in {output} belong to samples {outside}; moved to "
              "results.stale.jsonl", file=sys.stderr)
    summary = summarize(rows, problems)
    if generation is not None:
        summary["generation"] = {"model": cfg.generation.engine.model, "backend": cfg.generation.engine.backend, **generation}
    summary.update(dataset=cfg.dataset, samples_file=samples_file, wall_time_s=round(time.time() - started, 2),
                   skipped_input=[str(e) for e in skipped], load_warnings=load_warnings, reference_warnings=ref_warnings,
                   time_limit_s={"min": min(limits.values()), "max": max(limits.values())}, timings_s=timings)
    write_json(output / "summary.json", summary)
    title = Path(cfg.samples).name if cfg.samples else f"model {cfg.generation.engine.model}"
    write_report(summary, output, title=f"{cfg.dataset}: {title}")
    print("\n" + pass_at_k_table(summary))
    print(f"\nstatuses: {summary['statuses']}; results in {output}/ (results.jsonl, summary.json, report.md, pass_at_k.png)")
    if summary["infra_errors"]:
        print(f"error: {summary['infra_errors']} samples could not be evaluated (sandbox infrastructure); they are left "
              "out of pass@k - re-run with the same --output to retry them", file=sys.stderr)
        return 3
    if generation and generation["retryable_errors"]:
        print(f"error: {generation['retryable_errors']} samples got no answer (the engine's endpoint failed); they count "
              "as failed - re-run with the same --output to generate them again", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
