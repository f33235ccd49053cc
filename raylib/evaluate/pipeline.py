"""The evaluation pipeline as one library call: time limits from the reference solutions, then samples -> sandbox
actor pool -> results, or problems -> engine actors -> sandbox actors -> results in one streaming Ray Data run;
then pass@k, summary.json and the report.

    from raylib.evaluate.pipeline import evaluate
    from raylib.evaluate.stage import ExecutionPool
    from raylib.evaluate.limits import TimeLimits
    from raylib.generate.settings import GenerationSettings
    result = evaluate(problems, "runs/eval", generation=GenerationSettings())        # generate, then evaluate
    result = evaluate(problems, "runs/eval", samples=samples, execution=ExecutionPool(workers_per_actor=4))
    result.pass_at_k[1], result.summary["statuses"], result.complete

Writes OUTPUT/results.jsonl (a row per sample, as results arrive), summary.json, report.md, pass_at_k.png and
reference_times.json; when it generates, samples.jsonl too. Calling it again on the same output directory
generates and evaluates only what is missing. `claim_evaluation_output` ties a directory to one problem set and
one set of settings (the jobs call it before anything else writes there).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import math
import os
import time
from pathlib import Path
from typing import TextIO

from raylib.cluster import InfrastructureError
from raylib.data.problems import Problem, problems_sha
from raylib.data.samples import Sample
from raylib.evaluate.limits import ReferenceTimes, TimeLimits
from raylib.evaluate.requests import INFRA_STATUS
from raylib.evaluate.results_file import ResultsFile
from raylib.evaluate.stage import ExecutionPool
from raylib.files import claim_output, write_json
from raylib.generate.loop import claim_samples_output
from raylib.generate.settings import GenerationSettings

__all__ = ["EvaluationSummary", "claim_evaluation_output", "evaluate", "time_limits_on_cluster"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class EvaluationSummary:
    """What an evaluation produced: summary.json's content (`summary`) and where its outputs are."""

    summary: dict
    output: Path
    stale_results: int = 0  # rows of samples no longer asked for, moved to results.stale.jsonl

    @property
    def pass_at_k(self) -> dict[int, float]:
        return {point["k"]: point["pass"] for point in self.summary["pass_at_k"]}

    @property
    def infra_errors(self) -> int:
        """Samples the sandbox infrastructure could not evaluate (left out of pass@k; a re-run retries them)."""
        return self.summary["infra_errors"]

    @property
    def unanswered(self) -> int:
        """Samples the engine's endpoint failed to produce (counted as failed; a re-run generates them again)."""
        return self.summary.get("generation", {}).get("retryable_errors", 0)

    @property
    def complete(self) -> bool:
        return not self.infra_errors and not self.unanswered


def claim_evaluation_output(output: str | Path, dataset: str, dataset_problems: dict[str, Problem],
                            time_limits: TimeLimits, execution: ExecutionPool, extract_code: bool = False,
                            generation: GenerationSettings | None = None) -> str | None:
    """An output directory holds the results of one problem set under one set of settings: a re-run with another
    (say HumanEval+ after HumanEval: the same task ids, other tests; or another model) must not reuse them. Returns
    what differs, or None after recording this run's identity (OUTPUT/evaluation_identity.json, and when it
    generates OUTPUT/generation_identity.json as jobs/generate.py does). `dataset_problems`: the whole dataset
    (--limit may change between runs)."""
    if generation is not None:
        changed = claim_samples_output(output, dataset, dataset_problems, generation)
        if changed:
            return changed
    identity = {"dataset": dataset, "problems_sha": problems_sha(dataset_problems),
                "time_limits": time_limits.model_dump(exclude={"reference_on"}), "extract_code": extract_code,
                "memory_mb": execution.memory_mb}
    return claim_output(Path(output) / "evaluation_identity.json", identity)


def evaluate(problems: dict[str, Problem], output: str | Path, *, samples: list[Sample] | None = None,
             generation: GenerationSettings | None = None, execution: ExecutionPool | None = None,
             time_limits: TimeLimits | None = None, infra_retries: int = 2, ray_address: str | None = None,
             meta: dict | None = None, title: str = "", progress: bool | TextIO = True) -> EvaluationSummary:
    """Evaluate `samples` against `problems`, or generate them first with `generation` (exactly one of the two).

    Args:
        problems: {task_id: Problem}; with `generation`, every problem gets `generation.sampling.n` samples.
        output: the output directory (re-use it to resume).
        samples: whole programs to evaluate (`raylib.data.samples.read_samples`).
        generation: engine, sampling, prompts and actors to generate the samples with.
        execution: the execution actor pool and sandbox (default `ExecutionPool()`).
        time_limits: how each problem's limit is set (default `TimeLimits()`).
        infra_retries: rounds re-running samples (and references) whose sandbox failed.
        ray_address: cluster to join; None: RAY_ADDRESS or a new local one.
        meta: extra keys for summary.json (e.g. dataset, samples_file, skipped_input).
        title: the report's title.
        progress: show a progress bar (on stderr, or on the stream given).

    Returns:
        The `EvaluationSummary`; `complete` is False when some samples could not be evaluated or generated (a
        re-run with the same output retries them).

    Raises:
        InfrastructureError: the reference solutions could not be timed, or the generation pipeline failed; what
            was done is kept.
    """
    if (samples is None) == (generation is None):
        raise ValueError("evaluate() takes samples or generation settings, not both and not neither")
    if not (samples if samples is not None else problems):
        raise ValueError("nothing to evaluate: no samples" if samples is not None else "no problems")
    unknown = {s.task_id for s in samples or []} - problems.keys()
    if unknown:
        raise ValueError(f"samples of tasks that are not among the problems: {sorted(unknown)[:5]}")
    execution, time_limits = execution or ExecutionPool(), time_limits or TimeLimits()
    output = Path(output)
    started = stage_start = time.time()
    timings: dict[str, float] = {}  # seconds per stage, in summary.json

    def lap(name: str) -> None:
        nonlocal stage_start
        timings[name] = round(time.time() - stage_start, 3)
        stage_start = time.time()

    used = {s.task_id for s in samples} if samples is not None else set(problems)
    reserved = 0.0 if generation is None else generation.num_cpus * generation.replicas
    limits, ref_warnings = time_limits_on_cluster(problems, used, output, time_limits, execution, ray_address, reserved,
                                        infra_retries, lap)
    store = ResultsFile(output / "results.jsonl")
    generation_counts = None
    try:
        if generation is not None:
            samples, generation_counts = _generate_and_evaluate(problems, limits, store, generation, execution,
                                                                output, progress)
            lap("generate_s")
        _evaluate_pending(samples, problems, limits, store, execution, infra_retries, progress,
                          quiet_if_done=generation is not None)
        lap("evaluate_s")
        rows = store.finalize(samples, {t: i for i, t in enumerate(problems)})
    finally:
        store.close()

    from raylib.evaluate.metrics import summarize
    from raylib.evaluate.report import write_report

    summary = summarize(rows, problems)
    if generation_counts is not None:
        summary["generation"] = {"model": generation.engine.model, "backend": generation.engine.backend,
                                 **generation_counts}
    summary.update(meta or {})
    summary.update(wall_time_s=round(time.time() - started, 2), reference_warnings=ref_warnings,
                   time_limit_s={"min": min(limits.values()), "max": max(limits.values())}, timings_s=timings)
    write_json(output / "summary.json", summary)
    write_report(summary, output, title=title or str(output))
    return EvaluationSummary(summary=summary, output=output, stale_results=store.stale_rows)


def time_limits_on_cluster(problems: dict[str, Problem], used: set[str], output: Path, settings: TimeLimits,
                           execution: ExecutionPool, ray_address: str | None, reserved_cpus: float,
                           infra_retries: int, lap) -> tuple[dict[str, float], list[str]]:
    """Join/start the cluster and set each used problem's time limit; returns (limits, warnings).

    Limits depend on the reference solutions' runtimes, so those are timed first: in this process while the cluster
    starts when they are few (and this machine has a sandbox), else on the cluster.
    """
    from raylib.cluster import init_cluster
    from raylib.evaluate import stage

    cache = ReferenceTimes(output / "reference_times.json")
    todo = cache.to_time(problems, used, settings)
    ref_limits = {t: max(settings.default_s, problems[t].time_limit_s or 0) for t in todo}
    executions = sum(len(getattr(problems[t].tests, "cases", [None])) for t in todo)
    background = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="reference-timing")
    timing_here = None
    if todo and (settings.reference_on == "driver" or (settings.reference_on == "auto" and executions <= 2000)):
        log.info("timing %d reference solutions in this process", len(todo))
        timing_here = background.submit(stage.run_references_here, problems, todo, ref_limits, execution)
    lap("load_s")
    local = not (ray_address or os.environ.get("RAY_ADDRESS"))
    # A local cluster gets the engine actors' CPUs on top of the cores, so the sandbox pool still gets every core.
    init_cluster(ray_address,
                 num_cpus=(os.cpu_count() or 1) + math.ceil(reserved_cpus) if local and reserved_cpus else None)
    lap("cluster_s")
    results = None
    if timing_here is not None:
        try:
            results = timing_here.result()
        except Exception as exc:  # noqa: BLE001 - e.g. no sandbox isolation on the driver's machine: use the cluster
            log.warning("timing references in this process failed (%s); timing them on the cluster", exc)
    background.shutdown()
    if todo and results is None:
        log.info("timing %d reference solutions on the cluster", len(todo))
        results = stage.run_references_on_cluster(problems, todo, ref_limits, execution)
    for _ in range(infra_retries):  # a reference whose sandbox failed has no time: never guess its limit
        broken = [t for t, r in (results or {}).items() if r.status == INFRA_STATUS]
        if not broken:
            break
        log.info("timing %d reference solutions again (their sandbox failed)", len(broken))
        results.update(stage.run_references_on_cluster(problems, broken, ref_limits, execution))
    broken = [t for t, r in (results or {}).items() if r.status == INFRA_STATUS]
    if broken:
        raise InfrastructureError(f"the sandbox failed while timing the reference solutions of {len(broken)} tasks "
                                  f"(e.g. {broken[0]}: {results[broken[0]].error[:200]}); nothing was evaluated - "
                                  "re-run")
    warnings = cache.record(results) if todo else []
    lap("reference_s")
    return cache.limits(problems, used, settings), warnings


def _evaluate_pending(samples: list[Sample], problems: dict[str, Problem], limits: dict[str, float],
                      store: ResultsFile, execution: ExecutionPool, infra_retries: int, progress: bool | TextIO,
                      quiet_if_done: bool = False) -> None:
    """Evaluate every sample `store` does not have yet, with a progress bar; samples whose sandbox failed are
    retried for up to `infra_retries` more rounds. `quiet_if_done`: no bar when nothing is left."""
    from raylib.console import progress_bar
    from raylib.evaluate.stage import execute_samples

    done = store.done
    pending = [s for s in samples if store.key_of(s) not in done]
    if quiet_if_done and not pending:
        return
    if len(pending) < len(samples):
        log.info("resuming: %d of %d samples already evaluated in %s", len(samples) - len(pending), len(samples),
                 store.path.parent)
    bar = progress_bar(len(samples), "evaluating", progress, initial=len(samples) - len(pending))
    passed = sum(1 for s in samples if store.rows.get(store.key_of(s), {}).get("passed"))

    def on_rows(rows: list[dict], lines: list[str]) -> None:
        nonlocal passed
        written = store.append(rows, lines)
        good = [r for r in rows if r["status"] != INFRA_STATUS]
        passed += sum(r["passed"] for r in good)
        bar.update(min(written, len(good)))
        bar.set_postfix(passed=passed, refresh=False)

    for round_ in range(infra_retries + 1):
        if not pending:
            break
        if round_:
            log.info("retrying %d samples whose sandbox failed (round %d)", len(pending), round_)
        execute_samples(pending, problems, limits, execution, on_rows)
        done = store.done
        pending = [s for s in pending if store.key_of(s) not in done]
    bar.close()


def _generate_and_evaluate(problems: dict[str, Problem], limits: dict[str, float], store: ResultsFile,
                           generation: GenerationSettings, execution: ExecutionPool, output: Path,
                           progress: bool | TextIO) -> tuple[list[Sample], dict]:
    """Generate the samples OUTPUT/samples.jsonl lacks and evaluate them as they come, in one streaming pipeline
    (engine actors -> sandbox actors); returns (every sample of the file, generation counts). Samples generated
    by a killed run but not evaluated are left to `_evaluate_pending`, like sandbox failures."""
    from raylib.evaluate.stage import batch_results, execution_stage
    from raylib.generate.loop import generate

    passed = 0

    def then(dataset, rows: int):
        return execution_stage(dataset, problems, set(problems), limits, execution, rows=rows,
                               reserved_cpus=generation.num_cpus * generation.replicas,
                               batch_size=min(execution.batch_size, generation.batch_size * generation.sampling.n))

    def on_batch(batch) -> dict:
        nonlocal passed
        heads, lines = batch_results(batch)
        store.append(heads, lines)
        passed += sum(1 for h in heads if h["passed"] and h["status"] != INFRA_STATUS)
        return {"passed": passed}

    run = generate(problems, generation, output / "samples.jsonl", then=then, on_batch=on_batch,
                   progress=progress, what="generate+evaluate",
                   wait_for_nodes_s=max(generation.wait_for_nodes_s, execution.wait_for_nodes_s))
    return run.samples(problems), run.summary()
