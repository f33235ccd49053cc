"""Sweep a training job's hyperparameters with Ray Tune, every checkpoint scored by a code metric.

    python jobs/sweep.py --config configs/sweep_lora_sft.yaml --output runs/sweep
    python jobs/sweep.py --job sft --job_args '["--data.train", "runs/data/sft.jsonl"]' --metric reference_nll \\
        search_space='{"train.optim.lr": {"grid": [1e-4, 3e-4]}}' --output runs/sweep_lr
    python jobs/sweep.py --help        # every option

`job` is jobs/sft.py, train_rm.py or train_pref.py; `job_args` its own arguments (a --config file, key=value), before
each trial's values of `search_space` (grid, choice, uniform, loguniform, randint over the job's config keys; a key
or value the job's config rejects fails here, before any trial). Each trial trains with Ray Train inside a Tune
trial; each checkpoint it saves is scored by `metric` (pass@K by generation + sandbox on the problems, or
reference_nll) and reported to Tune (ASHA early stopping with `asha`). Writes OUTPUT/best/ (the best checkpoint: a
Hugging Face directory or adapter, with sweep_best.json: its trial, config, step and value), sweep_summary.json
{"metric", "mode", "best", "trials"}, report.md, sweep.png, each trial's run and TensorBoard logs under
OUTPUT/trials/, the Tune experiment under OUTPUT/tune/. Re-running with the same output resumes. The work is
`raylib.tune.sweep.sweep`. Exit status: 0 done; 2 bad input or config; 3 some trial failed (see sweep_summary.json).
"""

import os
import sys
from pathlib import Path
from typing import Literal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import BaseModel, ConfigDict, Field  # noqa: E402

from raylib.config import load_config, log_config  # noqa: E402
from raylib.tune.settings import CodeMetricJobConfig  # noqa: E402


class AshaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_period: int = Field(1, ge=1, description="Checkpoints every trial reaches before it can be stopped.")
    reduction_factor: float = Field(2.0, gt=1, description="Share of trials kept at each rung: 1/this.")
    max_t: int = Field(100, ge=1, description="Most checkpoints of a trial.")


class SweepConfig(CodeMetricJobConfig):
    job: Literal["sft", "train_rm", "train_pref"] = Field(..., description="The training job swept.")
    job_args: list[str] = Field(default_factory=list, description="The job's own arguments (e.g. ['--config', "
                                "'configs/sft_rejection_sampling.yaml', 'train.optim.max_steps=50']).")
    search_space: dict = Field(..., description="{config key: {grid|choice|uniform|loguniform|randint: [...]}}.")
    num_samples: int = Field(1, ge=1, description="Samples of the space (a grid is run that many times).")
    asha: AshaSettings | None = Field(None, description="ASHA early stopping over checkpoints; None: every trial "
                                      "runs to its end.")
    trial_cpus: float = Field(0.1, gt=0, description="CPUs each trial's driver reserves (its Ray Train workers "
                              "reserve their own).")
    output: str = Field("runs/sweep", description="Output directory (re-use it to resume).")


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(SweepConfig, argv)
    from raylib.console import job_console
    from raylib.tune.sweep import sweep

    output = Path(cfg.output)
    with job_console(output, cfg.verbose) as console:
        log_config(cfg, output, file=console.out)
        print(f"sweeping {cfg.job} over {', '.join(cfg.search_space)} by {cfg.metric} on {cfg.dataset}"
              f"{f' (first {cfg.limit})' if cfg.limit else ''}", file=console.out, flush=True)
        try:
            summary = sweep(cfg.job, cfg.job_args, cfg.search_space, cfg.metric, cfg.problems_spec(), output,
                            generation=cfg.generation, execution=cfg.execution, num_samples=cfg.num_samples,
                            max_concurrent_trials=cfg.max_concurrent_trials,
                            asha=cfg.asha.model_dump() if cfg.asha else None, retries=cfg.retries,
                            trial_cpus=cfg.trial_cpus, ray_address=cfg.ray_address)
        except ValueError as err:
            print(f"error: {err}", file=console.err)
            return 2
        print("\n" + (output / "report.md").read_text(), file=console.out)
        best = summary["best"]
        if best:
            print(f"best: {best['trial']} step {best['step']}: {cfg.metric} {best['value']:.4f}; model in "
                  f"{output / 'best'}", file=console.out)
        print(f"{output}/sweep_summary.json, report.md, sweep.png (logs in {console.log_path.name})",
              file=console.out, flush=True)
        failed = [t for t in summary["trials"] if t["error"]]
        for trial in failed:
            print(f"error: {trial['trial']}: {trial['error']}", file=console.err)
        if failed or not best:
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
