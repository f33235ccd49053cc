"""Pick the best checkpoint by a code metric: each checkpoint is a Ray Tune trial that generates with it and runs
the samples in the sandbox (pass@k), or scores the reference solutions' likelihood (reference_nll, a cheap proxy).

    python jobs/select_checkpoint.py --checkpoints runs/a/model runs/b/model --dataset humaneval --metric pass@1 \\
        --output runs/select
    python jobs/select_checkpoint.py --checkpoints runs/sft/ray/*/checkpoint_*/model --dataset humaneval \\
        --limit 40 --n 10 --temperature 0.8 --metric pass@10 --output runs/select10
    python jobs/select_checkpoint.py --checkpoints A B --metric reference_nll --output runs/select_nll
    python jobs/select_checkpoint.py --help        # every option

Checkpoints are Hugging Face directories, full models or PEFT adapters (merged once per trial for the engine).
Writes OUTPUT/selection.json {"metric", "mode", "best", "scores": {checkpoint: value}, "errors"}, report.md,
selection.png, each trial's evaluation under OUTPUT/trials/, the Tune experiment under OUTPUT/tune/, config.yaml and
job.log. Re-running with the same output directory resumes (finished trials are not run again). The work is
`raylib.tune.selection.select_checkpoint`.
Exit status: 0 done; 2 bad input or config; 3 some checkpoint could not be scored (see selection.json "errors").
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, model_validator  # noqa: E402

from raylib.config import load_config, log_config  # noqa: E402
from raylib.tune.settings import CodeMetricJobConfig  # noqa: E402


class SelectCheckpointConfig(CodeMetricJobConfig):
    checkpoints: list[str] = Field(..., min_length=1, description="Checkpoint directories to compare.")
    trial_cpus: float = Field(1.0, gt=0, description="CPUs each trial reserves (its driver; a pass@K trial's engine "
                              "and sandbox actors reserve their own).")
    output: str = Field("runs/select", description="Output directory (re-use it to resume).")

    @model_validator(mode="after")
    def _check(self):
        missing = [c for c in self.checkpoints if not (Path(c) / "config.json").exists()
                   and not (Path(c) / "adapter_config.json").exists()]
        if missing:
            raise ValueError(f"not a Hugging Face model or adapter directory: {missing}")
        return self


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(SelectCheckpointConfig, argv)
    from raylib.console import job_console
    from raylib.tune.selection import select_checkpoint

    output = Path(cfg.output)
    with job_console(output, cfg.verbose) as console:
        log_config(cfg, output, file=console.out)
        print(f"scoring {len(cfg.checkpoints)} checkpoints by {cfg.metric} on {cfg.dataset}"
              f"{f' (first {cfg.limit})' if cfg.limit else ''}", file=console.out, flush=True)
        try:
            selection = select_checkpoint(cfg.checkpoints, cfg.metric, cfg.problems_spec(), output,
                                          generation=cfg.generation, execution=cfg.execution,
                                          max_concurrent_trials=cfg.max_concurrent_trials, trial_cpus=cfg.trial_cpus,
                                          retries=cfg.retries,
                                          ray_address=cfg.ray_address)
        except ValueError as err:
            print(f"error: {err}", file=console.err)
            return 2
        print("\n" + (output / "report.md").read_text(), file=console.out)
        print(f"best: {selection['best']}; {output}/selection.json, report.md, selection.png (logs in "
              f"{console.log_path.name})", file=console.out, flush=True)
        if selection["errors"]:
            for checkpoint, message in selection["errors"].items():
                print(f"error: {checkpoint}: {message.splitlines()[0] if message else ''}", file=console.err)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
