"""Train OpTune's learned optimizer: sample the base model on training problems, judge the samples in the sandbox,
and learn to turn each failure's gradient into a weight update that makes the reference solution likelier.

    python jobs/train_optune.py --dataset mbpp+ --limit 200 --samples 4 --output runs/optune
    python jobs/train_optune.py --dataset humaneval --skip 82 --training.epochs 3 --output runs/optune_he
    python jobs/scale.py --dataset humaneval --limit 82 --strategy optune --optune runs/optune_he/optune \\
        --budget 8 --output runs/scale/optune                       # then use it in the scaling loops
    python jobs/train_optune.py --help        # every option

Steps: (1) `raylib.evaluate.pipeline.evaluate` generates `--samples` answers per training problem with the base
model and judges them (OUTPUT/samples/: samples.jsonl, results.jsonl; resumable); (2) each failed sample of a problem
with a reference solution becomes an example (raylib.scale.optune_train.failure_examples), the last
`validation_fraction` of the problems held out; (3) Ray Train fits the learned optimizer (the model stays frozen).
Writes OUTPUT/optune/ (optune.pt, optune.json: what --strategy optune loads), OUTPUT/metrics.json (reference NLL
with and without the update on the held-out failures), OUTPUT/ray/ (checkpoints; re-running resumes), config.yaml
and job.log. Exit status: 0 done; 2 bad input or config; 1 failed run; 3 samples could not be judged (re-run).
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, model_validator  # noqa: E402

from raylib.config import ConsoleJobConfig, load_config, log_config  # noqa: E402
from raylib.data.problems import DATASETS, check_dataset  # noqa: E402
from raylib.evaluate.stage import ExecutionPool  # noqa: E402
from raylib.generate.settings import GenerationSettings, GenerationShortcuts  # noqa: E402
from raylib.scale.optune_train import OpTuneTraining  # noqa: E402


class TrainOpTuneConfig(ConsoleJobConfig, GenerationShortcuts):
    dataset: str = Field("mbpp+", description=f"Training problems: one of {DATASETS}.")
    dataset_path: str | None = Field(None, description="Problem file; None: the shipped one.")
    skip: int = Field(0, ge=0, description="Leave out the first N problems (e.g. those you will test on).")
    limit: int | None = Field(None, ge=1, description="Then take the first N problems only.")
    samples: int = Field(4, ge=1, le=256, description="Answers sampled per training problem (k).")
    validation_fraction: float = Field(0.1, ge=0, lt=1, description="Share of the problems held out.")
    generation: GenerationSettings = Field(
        default_factory=lambda: GenerationSettings.model_validate({"sampling": {"temperature": 0.8}}),
        description="How the base model samples (temperature 0.8 by default: failures worth learning from).")
    execution: ExecutionPool = Field(default_factory=ExecutionPool, description="Sandbox actors.")
    training: OpTuneTraining = Field(default_factory=OpTuneTraining, description="The network and its training.")
    output: str = Field("runs/optune", description="Output directory (re-use it to resume).")
    ray_address: str | None = Field(None, description="Ray cluster to join; None: RAY_ADDRESS or a local one.")

    @model_validator(mode="after")
    def _check(self):
        check_dataset(self.dataset, self.dataset_path)
        self.generation.sampling.n = self.samples
        return self


def training_tasks(cfg: TrainOpTuneConfig):
    from raylib.data.problems import load_problems, subset
    from raylib.scale.tasks import CodeTasks

    return CodeTasks(subset(load_problems(cfg.dataset, cfg.dataset_path), cfg.skip, cfg.limit), cfg.generation.prompt)


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(TrainOpTuneConfig, argv)
    from raylib.cluster import InfrastructureError
    from raylib.console import job_console
    from raylib.evaluate.pipeline import evaluate
    from raylib.files import DataError, read_records
    from raylib.models import resolve_model
    from raylib.scale.feedback import FTTT_FEEDBACK
    from raylib.scale.optune_train import failure_examples, train_optune
    from raylib.train.loop import prepare_tokenizer

    output = Path(cfg.output)
    try:
        tasks = training_tasks(cfg)
    except (DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with job_console(output, cfg.verbose) as console:
        log_config(cfg, output, file=console.out)
        try:
            result = evaluate(tasks.problems, output / "samples", generation=cfg.generation,
                              execution=cfg.execution, ray_address=cfg.ray_address, progress=console.err,
                              title=f"{cfg.dataset}: OpTune training samples")
        except InfrastructureError as err:
            print(f"error: {err}", file=console.err)
            return 3
        if not result.complete:
            print("error: some samples could not be judged; re-run with the same --output", file=console.err)
            return 3
        samples = {(r["task_id"], r["sample_id"]): r for _, r in read_records(output / "samples" / "samples.jsonl")}
        results = [r for _, r in read_records(output / "samples" / "results.jsonl")]
        model = resolve_model(cfg.generation.engine.model)
        tokenizer = prepare_tokenizer(model)
        examples = failure_examples(tasks, samples, results, tokenizer, FTTT_FEEDBACK, cfg.training.max_length)
        held = set(list(tasks.problems)[len(tasks.problems) - int(len(tasks.problems) * cfg.validation_fraction):]) \
            if cfg.validation_fraction else set()
        train = [e for e in examples if e["task_id"] not in held]
        validation = [e for e in examples if e["task_id"] in held]
        print(f"{len(results)} samples, pass@1 {result.pass_at_k.get(1, 0):.3f}: {len(train)} training and "
              f"{len(validation)} validation failures", file=console.out, flush=True)
        if len(train) < cfg.training.workers:
            print(f"error: {len(train)} failures cannot feed {cfg.training.workers} workers: sample more problems",
                  file=console.err)
            return 2
        try:
            metrics = train_optune(train, validation, model, cfg.training, output)
        except RuntimeError as err:
            print(f"error: {err}\nre-run the same command to resume from the latest checkpoint", file=console.err)
            return 1
        print("metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float))),
              file=console.out)
        print(f"learned optimizer: {output / 'optune'} (use it with jobs/scale.py --strategy optune --optune "
              f"{output / 'optune'}); logs in {console.log_path.name}", file=console.out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
