"""Evaluate a model on a benchmark: problems -> engine actors (vLLM) -> sandbox actors -> pass@k, one Ray Data
pipeline; or evaluate a file of samples: samples -> sandbox actor pool -> pass@k.

    python jobs/evaluate.py --dataset humaneval --output runs/eval                  # the main job: embedded model, n=1
    python jobs/evaluate.py --dataset humaneval --output runs/eval10 --model /models/ckpt --n 10 --temperature 0.8
    python jobs/evaluate.py --dataset humaneval --samples samples.jsonl --output runs/eval
    python jobs/evaluate.py --dataset mbpp+ --samples s.jsonl --output runs/mbpp --skip-invalid
    ray job submit --working-dir . -- python jobs/evaluate.py --dataset humaneval --samples /abs/s.jsonl --output /out
    python jobs/evaluate.py --help        # every option

Writes OUTPUT/results.jsonl (a row per sample, written as results arrive), summary.json (pass@k for every k the
sample counts allow, counts by status, per difficulty/tag; generation counts), report.md, pass_at_k.png,
reference_times.json, config.yaml and job.log (what Ray, vLLM and the library said; `--verbose` shows it live);
when it generates, also samples.jsonl (as jobs/generate.py writes it). The work is `raylib.evaluate.pipeline.evaluate`.
Re-running with the same output directory generates and evaluates only what is missing (a killed run loses nothing).
Exit status: 0 done; 2 bad input or config; 3 some samples could not be evaluated (infrastructure) - re-run.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, model_validator  # noqa: E402

from raylib.config import ConsoleJobConfig, load_config, log_config  # noqa: E402
from raylib.data.problems import DATASETS, check_dataset  # noqa: E402
from raylib.evaluate.limits import TimeLimits  # noqa: E402
from raylib.evaluate.stage import ExecutionPool  # noqa: E402
from raylib.files import DataError  # noqa: E402
from raylib.generate.settings import GenerationSettings, GenerationShortcuts  # noqa: E402


class EvaluateConfig(ConsoleJobConfig, GenerationShortcuts):
    dataset: str = Field("humaneval", description=f"Problem set, one of {DATASETS}.")
    dataset_path: str | None = Field(
        None, description="Problem file; None: the shipped one (humaneval, humaneval+, mbpp, mbpp+).")
    samples: str | None = Field(None, description="Sample file (openai human-eval / EvalPlus JSONL: task_id + "
                                "completion or solution); None: generate them (see generation, --model, --n, ...).")
    limit: int | None = Field(None, ge=1, description="Generate for the first N problems only (quick runs).")
    generation: GenerationSettings = Field(default_factory=GenerationSettings,
                                           description="Engine, sampling, prompts, actors (without --samples).")
    output: str = Field("runs/evaluate", description="Output directory (re-use it to resume).")
    extract_code: bool = Field(False, description="Take code out of chat-style samples (fenced blocks, stray prose) "
                               "first.")
    skip_invalid: bool = Field(False, description="Skip (and report) invalid sample lines instead of stopping at the "
                               "first.")
    time_limits: TimeLimits = Field(default_factory=TimeLimits, description="Per-problem time limits.")
    execution: ExecutionPool = Field(default_factory=ExecutionPool, description="Execution actor pool and sandbox.")
    infra_retries: int = Field(2, ge=0, le=10, description="Rounds re-running samples whose sandbox failed (never "
                               "counted as failed).")
    ray_address: str | None = Field(None, description="Ray cluster to join; None: RAY_ADDRESS (set by `ray job "
                                    "submit`) or a local one.")

    @model_validator(mode="after")
    def _check(self):
        check_dataset(self.dataset, self.dataset_path)
        if self.samples:
            given = [f for f in GenerationShortcuts.model_fields if getattr(self, f) is not None]
            given += ["limit"] if self.limit else []
            if given:
                raise ValueError(f"{', '.join(given)} set the generation, which only runs without --samples")
            if self.generation != GenerationSettings():
                raise ValueError("generation.* settings apply only without --samples (this run evaluates a file)")
        return self


def read_inputs(cfg: EvaluateConfig) -> tuple[dict, dict, list, list, list[str]]:
    """(the whole dataset, the problems to evaluate, samples, skipped sample lines, load warnings); DataError on
    bad input."""
    from raylib.data.problems import load_problems
    from raylib.data.samples import read_samples

    warnings: list[str] = []
    dataset = load_problems(cfg.dataset, cfg.dataset_path, warnings=warnings)
    problems = dict(list(dataset.items())[:cfg.limit]) if cfg.limit else dataset
    samples, skipped = [], []
    if cfg.samples:
        samples, skipped = read_samples(cfg.samples, problems, extract=cfg.extract_code, skip_invalid=cfg.skip_invalid)
    return dataset, problems, samples, skipped, warnings


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(EvaluateConfig, argv)
    from raylib.cluster import InfrastructureError
    from raylib.console import job_console
    from raylib.evaluate.pipeline import claim_evaluation_output, evaluate
    from raylib.evaluate.report import pass_at_k_table

    output = Path(cfg.output)
    try:
        dataset, problems, samples, skipped, load_warnings = read_inputs(cfg)
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
    generation = None if cfg.samples else cfg.generation
    changed = claim_evaluation_output(output, cfg.dataset, dataset, cfg.time_limits, cfg.execution, cfg.extract_code,
                                      generation)
    if changed:
        print(f"error: {output} holds results evaluated with other problems or settings (changed: {changed}); "
              "use a new --output, or delete it to start over", file=sys.stderr)
        return 2

    samples_file = cfg.samples or str(output / "samples.jsonl")
    with job_console(output, cfg.verbose) as console:
        log_config(cfg, output, file=console.out)  # only now: a refused run must not overwrite the config there
        if cfg.samples:
            print(f"{cfg.dataset}: {len(problems)} problems; {len(samples)} samples for "
                  f"{len({s.task_id for s in samples})} tasks from {cfg.samples}", file=console.out, flush=True)
        title = Path(cfg.samples).name if cfg.samples else f"model {cfg.generation.engine.model}"
        meta = {"dataset": cfg.dataset, "samples_file": samples_file, "skipped_input": [str(e) for e in skipped],
                "load_warnings": load_warnings}
        try:
            result = evaluate(problems, output, samples=samples if cfg.samples else None, generation=generation,
                              execution=cfg.execution, time_limits=cfg.time_limits, infra_retries=cfg.infra_retries,
                              ray_address=cfg.ray_address, meta=meta, title=f"{cfg.dataset}: {title}",
                              progress=console.err)
        except InfrastructureError as err:
            print(f"error: {err}", file=console.err)
            return 3
        summary = result.summary
        for line in summary["reference_warnings"]:
            print(f"warning: {line}", file=console.err)
        if result.stale_results:
            outside = f"no longer in {samples_file}" if cfg.samples else "outside this run's --limit / --n"
            print(f"warning: {result.stale_results} results in {output} belong to samples {outside}; moved to "
                  "results.stale.jsonl", file=console.err)
        print("\n" + pass_at_k_table(summary), file=console.out)
        print(f"\nstatuses: {summary['statuses']}; results in {output}/ (results.jsonl, summary.json, report.md, "
              f"pass_at_k.png; logs in {console.log_path.name})", file=console.out, flush=True)
        if result.infra_errors:
            print(f"error: {result.infra_errors} samples could not be evaluated (sandbox infrastructure); they are "
                  "left out of pass@k - re-run with the same --output to retry them", file=console.err)
            return 3
        if result.unanswered:
            print(f"error: {result.unanswered} samples got no answer (the engine's endpoint failed); they count as "
                  "failed - re-run with the same --output to generate them again", file=console.err)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
