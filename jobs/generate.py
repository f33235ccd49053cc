"""Generate samples for a problem set with a pool of engine actors (vLLM by default) on Ray Data.

    python jobs/generate.py --dataset humaneval --output runs/gen                      # embedded SmolLM2, greedy, n=1
    python jobs/generate.py --dataset humaneval --output runs/gen --model /models/ckpt --n 10 --temperature 0.8
    python jobs/generate.py --dataset stdio --dataset-path lcb.jsonl --output runs/lcb --backend openai \\
        --model my-model generation.engine.openai.base_url=http://127.0.0.1:8000/v1
    ray job submit --working-dir . -- python jobs/generate.py --dataset humaneval --output /shared/runs/gen
    python jobs/generate.py --help        # every option

Writes OUTPUT/samples.jsonl (evalplus-compatible: task_id + solution or completion, plus sample_id, raw_output,
finish_reason, prompt/output token counts, error; see raylib/generate/stage.py), generation_summary.json and config.yaml.
Evaluate it with `python jobs/evaluate.py --dataset humaneval --samples OUTPUT/samples.jsonl --output ...`.
Re-running with the same output directory generates only what is missing (another --limit or --n is fine; other
settings are refused). Exit status: 0 done; 2 bad input or
config; 3 some samples failed for infrastructure reasons (an endpoint down) - re-run to retry them.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, model_validator  # noqa: E402

from raylib.config import JobConfig, load_config, log_config  # noqa: E402
from raylib.files import claim_output, write_json  # noqa: E402
from raylib.generate.settings import GenerationSettings, GenerationShortcuts  # noqa: E402
from raylib.data.problems import check_dataset, DATASETS  # noqa: E402
from raylib.files import DataError  # noqa: E402


class GenerateConfig(JobConfig, GenerationShortcuts):
    dataset: str = Field("humaneval", description=f"Problem set, one of {DATASETS}.")
    dataset_path: str | None = Field(
        None, description="Problem file; None: the shipped one (humaneval, humaneval+, mbpp, mbpp+).")
    limit: int | None = Field(None, ge=1, description="Only the first N problems (quick runs).")
    output: str = Field("runs/generate", description="Output directory (re-use it to resume).")
    generation: GenerationSettings = Field(default_factory=GenerationSettings, description="Engine, sampling, prompts, actors.")
    ray_address: str | None = Field(None, description="Ray cluster to join; None: RAY_ADDRESS (set by `ray job submit`) or a local one.")

    @model_validator(mode="after")
    def _check(self):
        check_dataset(self.dataset, self.dataset_path)
        return self


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(GenerateConfig, argv)
    from tqdm import tqdm

    from raylib.cluster import init_cluster
    from raylib.generate.samples_file import SamplesFile
    from raylib.generate.settings import generation_identity
    from raylib.generate.loop import generation_summary, pending_requests
    from raylib.generate.stage import generation_stage
    from raylib.data.problems import load_problems, problems_sha

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
    changed = claim_output(output / "generation_identity.json",
                           generation_identity(cfg.dataset, problems_sha(dataset), cfg.generation))
    if changed:
        print(f"error: {output} holds samples generated with other problems or settings (changed: {changed}); "
              "use a new --output, or delete it to start over", file=sys.stderr)
        return 2
    log_config(cfg, output)

    n = cfg.generation.sampling.n
    store = SamplesFile(output / "samples.jsonl")
    requests = pending_requests(problems, n, store.done)
    todo = sum(r["count"] for r in requests)
    total = len(problems) * n
    print(f"{cfg.dataset}: {len(problems)} problems x {n} samples; {todo} to generate"
          + (f" ({total - todo} already in {output})" if todo < total else ""), flush=True)
    started = time.time()
    new_lines: list[str] = []
    if requests:
        init_cluster(cfg.ray_address)
        bar = tqdm(total=total, initial=total - todo, desc="generating", unit="sample", dynamic_ncols=True, mininterval=1.0)
        try:
            for batch in generation_stage(requests, problems, cfg.generation).iter_batches(batch_size=None, batch_format="pyarrow"):
                lines = batch.column("sample").to_pylist()
                new_lines.extend(lines)
                bar.update(store.append(lines))
        except Exception as exc:  # e.g. an engine actor that died more often than max_actor_restarts
            bar.close()
            store.close()
            print(f"error: the generation pipeline failed ({type(exc).__name__}: {str(exc)[:500]}); the {len(new_lines)} "
                  f"samples generated in this run are kept in {output / 'samples.jsonl'} - re-run with the same --output "
                  "to resume", file=sys.stderr)
            return 3
        bar.close()
    seconds = time.time() - started
    store.finalize({t: i for i, t in enumerate(dataset)})
    store.close()
    summary = generation_summary([line for (task_id, sample_id), line in store.lines.items() if task_id in problems and sample_id < n])
    summary.update(dataset=cfg.dataset, problems=len(problems), model=cfg.generation.engine.model,
                   generated_now=todo, generation_s=round(seconds, 2),
                   output_tokens_per_s=generation_summary(new_lines, seconds).get("output_tokens_per_s") if new_lines else None)
    write_json(output / "generation_summary.json", summary)
    print(f"\n{summary['samples']} samples in {output / 'samples.jsonl'}; output tokens {summary['output_tokens']} "
          f"(mean {summary['mean_output_tokens']}); finish reasons {summary['finish_reasons']}; errors {summary['errors']}")
    for line in summary.get("first_errors", []):
        print(f"  error: {line}", file=sys.stderr)
    if summary["retryable_errors"]:
        print(f"error: {summary['retryable_errors']} samples failed for infrastructure reasons; re-run with the same "
              "--output to retry them", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
