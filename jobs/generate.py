"""Generate samples for a problem set with a pool of engine actors (vLLM by default) on Ray Data.

    python jobs/generate.py --dataset humaneval --output runs/gen                      # embedded SmolLM2, greedy, n=1
    python jobs/generate.py --dataset humaneval --output runs/gen --model /models/ckpt --n 10 --temperature 0.8
    python jobs/generate.py --dataset stdio --dataset-path lcb.jsonl --output runs/lcb --backend openai \\
        --model my-model generation.engine.openai.base_url=http://127.0.0.1:8000/v1
    ray job submit --working-dir . -- python jobs/generate.py --dataset humaneval --output /shared/runs/gen
    python jobs/generate.py --help        # every option

Writes OUTPUT/samples.jsonl (evalplus-compatible: task_id + solution or completion, plus sample_id, raw_output,
finish_reason, prompt/output token counts, error; see raylib/generate/samples_file.py), generation_summary.json,
config.yaml and job.log (what Ray and vLLM said; `--verbose` shows it live).
Evaluate it with `python jobs/evaluate.py --dataset humaneval --samples OUTPUT/samples.jsonl --output ...`.
Re-running with the same output directory generates only what is missing (another --limit or --n is fine; other
settings are refused). Exit status: 0 done; 2 bad input or
config; 3 some samples failed for infrastructure reasons (an endpoint down) - re-run to retry them.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, model_validator  # noqa: E402

from raylib.config import ConsoleJobConfig, load_config, log_config  # noqa: E402
from raylib.data.problems import DATASETS, check_dataset  # noqa: E402
from raylib.files import DataError, write_json  # noqa: E402
from raylib.generate.settings import GenerationSettings, GenerationShortcuts  # noqa: E402


class GenerateConfig(ConsoleJobConfig, GenerationShortcuts):
    dataset: str = Field("humaneval", description=f"Problem set, one of {DATASETS}.")
    dataset_path: str | None = Field(
        None, description="Problem file; None: the shipped one (humaneval, humaneval+, mbpp, mbpp+).")
    limit: int | None = Field(None, ge=1, description="Only the first N problems (quick runs).")
    output: str = Field("runs/generate", description="Output directory (re-use it to resume).")
    generation: GenerationSettings = Field(default_factory=GenerationSettings,
                                           description="Engine, sampling, prompts, actors.")
    ray_address: str | None = Field(None, description="Ray cluster to join; None: RAY_ADDRESS (set by `ray job "
                                    "submit`) or a local one.")

    @model_validator(mode="after")
    def _check(self):
        check_dataset(self.dataset, self.dataset_path)
        return self


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(GenerateConfig, argv)
    from raylib.cluster import InfrastructureError, init_cluster
    from raylib.console import job_console
    from raylib.data.problems import load_problems
    from raylib.generate.loop import claim_samples_output, generate, generation_summary, pending_requests
    from raylib.generate.samples_file import SamplesFile

    output = Path(cfg.output)
    warnings: list[str] = []
    try:
        dataset = load_problems(cfg.dataset, cfg.dataset_path, warnings=warnings)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for line in warnings[:20]:
        print(f"warning: {line}", file=sys.stderr)
    problems = dict(list(dataset.items())[:cfg.limit]) if cfg.limit else dataset
    changed = claim_samples_output(output, cfg.dataset, dataset, cfg.generation)
    if changed:
        print(f"error: {output} holds samples generated with other problems or settings (changed: {changed}); "
              "use a new --output, or delete it to start over", file=sys.stderr)
        return 2

    path = output / "samples.jsonl"
    with job_console(output, cfg.verbose) as console:
        log_config(cfg, output, file=console.out)
        n = cfg.generation.sampling.n
        store = SamplesFile(path)
        todo = sum(r["count"] for r in pending_requests(problems, n, store.done))
        store.close()
        print(f"{cfg.dataset}: {len(problems)} problems x {n} samples; {todo} to generate"
              + (f" ({len(problems) * n - todo} already in {output})" if todo < len(problems) * n else ""),
              file=console.out, flush=True)
        try:
            if todo:
                init_cluster(cfg.ray_address)
            run = generate(problems, cfg.generation, path, problem_order={t: i for i, t in enumerate(dataset)},
                           progress=console.err)
        except InfrastructureError as err:
            print(f"error: {err}", file=console.err)
            return 3
        summary = generation_summary(run.lines)
        summary.update(dataset=cfg.dataset, problems=len(problems), model=cfg.generation.engine.model,
                       generated_now=todo, generation_s=round(run.seconds, 2),
                       output_tokens_per_s=run.summary().get("this_run", {}).get("output_tokens_per_s"))
        write_json(output / "generation_summary.json", summary)
        print(f"\n{summary['samples']} samples in {path}; output tokens {summary['output_tokens']} "
              f"(mean {summary['mean_output_tokens']}); finish reasons {summary['finish_reasons']}; errors "
              f"{summary['errors']}; logs in {console.log_path}", file=console.out, flush=True)
        for line in summary.get("first_errors", []):
            print(f"  error: {line}", file=console.err)
        if summary["retryable_errors"]:
            print(f"error: {summary['retryable_errors']} samples failed for infrastructure reasons; re-run with the "
                  "same --output to retry them", file=console.err)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
