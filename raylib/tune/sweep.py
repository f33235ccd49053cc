"""Hyperparameter sweeps of a training job, each saved checkpoint scored by a code metric and reported to Ray Tune.

    from raylib.tune.sweep import sweep
    summary = sweep("sft", ["--config", "configs/sweep_lora_sft.yaml"], {"train.optim.lr": {"grid": [1e-4, 1e-3]}},
                    "reference_nll", {"dataset": "humaneval", "limit": 20}, "runs/sweep")
    summary["best"]      # {"trial", "config", "checkpoint", "value", "step"}; the model is copied to OUTPUT/best/

A trial is a Tune function trainable that loads the job's own config (`jobs/<job>.py`: its args, then the trial's
overrides and its output directory), runs the job's `prepare` and trains with Ray Train (the TorchTrainer inside the
trial, the pattern Ray 2.60 supports). `CodeMetricReport`, a Ray Train callback, scores each checkpoint the workers
report (raylib.tune.metrics: pass@K by generation + sandbox, or reference_nll) and passes it to Tune with the
training metrics, so Tune's scheduler (ASHA, optional) sees the code metric at every checkpoint. The experiment lives
in OUTPUT/tune/sweep (a stable name): the same call after a kill restores it; finished trials are not run again, and
a trial that was cut short resumes its training from its latest checkpoint (OUTPUT/trials/<trial>/).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from raylib.files import atomic_write, claim_output, write_json
from raylib.tune.metrics import metric_mode

__all__ = ["EXPERIMENT", "JOBS", "sweep", "sweep_trial"]

EXPERIMENT = "sweep"  # the Tune run's name: stable, so that a re-run restores it
JOBS = ("sft", "train_rm", "train_pref")  # training jobs with prepare(cfg) -> (loop, train, validation, summary)
STEP = "step"  # the training step each report belongs to


def _job(name: str):
    """The job module (jobs/<name>.py) and its config class."""
    import importlib

    from raylib.config import JobConfig

    module = importlib.import_module(f"jobs.{name}")
    config_cls = next(v for v in vars(module).values() if isinstance(v, type) and issubclass(v, JobConfig)
                      and v.__module__ == module.__name__)
    return module, config_cls


def _code_metric_callback(metric: str, problems_spec: dict, output: Path, generation: dict | None,
                          execution: dict | None):
    """A Ray Train callback that scores every reported checkpoint by `metric` and hands the scores, with the training
    metrics and the checkpoint's path, to the trial's Tune session."""
    from ray.tune.integration.ray_train import TuneReportCallback

    class CodeMetricReport(TuneReportCallback):
        def after_report(self, run_context, metrics, checkpoint):
            row = dict(metrics[0])
            if checkpoint is not None:
                row[metric] = _score(checkpoint.path, int(row.get(STEP, 0)), metric, problems_spec, output,
                                     generation, execution)
                row["checkpoint_path"] = checkpoint.path
            self._training_actor_item_queue.put(row)

    return CodeMetricReport()


def _score(checkpoint: str, step: int, metric: str, spec: dict, trial_dir: Path, generation: dict | None,
           execution: dict | None) -> float:
    """A reported checkpoint's value of `metric`, measured once: kept in TRIAL/scores/stepNNNNNN.json (a pass@K
    evaluation in TRIAL/eval-stepNNNNNN), so asking again, as a trial's end and a restored trial do, reads it back."""
    from raylib.tune.metrics import checkpoint_metric, problems_of

    stored = trial_dir / "scores" / f"step{step:06d}.json"
    if stored.is_file():
        known = json.loads(stored.read_text())
        if known.get("checkpoint") == str(checkpoint) and metric in known:
            return float(known[metric])
    value = checkpoint_metric(Path(checkpoint) / "model", metric, problems_of(spec),
                              output=trial_dir / f"eval-step{step:06d}", generation=_settings(generation, "generation"),
                              execution=_settings(execution, "execution"), pairs=spec.get("pairs"))
    write_json(stored, {"checkpoint": str(checkpoint), metric: value})
    return value


def _settings(data: dict | None, kind: str):
    if data is None:
        return None
    if kind == "generation":
        from raylib.generate.settings import GenerationSettings

        return GenerationSettings.model_validate(data)
    from raylib.evaluate.stage import ExecutionPool

    return ExecutionPool.model_validate(data)


def sweep_trial(config: dict) -> None:
    """The Tune trainable: the job's config with this trial's overrides, trained on Ray Train, every checkpoint scored
    (see the module docstring). Everything comes from `config`, so a restored experiment runs it the same way."""
    import ray

    from raylib.config import load_config
    from raylib.train.runner import run_training
    from raylib.tune.space import trial_overrides

    if config.get("cwd") and os.path.isdir(config["cwd"]):
        os.chdir(config["cwd"])  # Tune starts a trial in its own directory; the job's relative paths are the driver's
    module, config_cls = _job(config["job"])
    overrides = config["overrides"]
    trial_dir = Path(config["output"]) / "trials" / _trial_name(overrides)
    cfg = load_config(config_cls, [*config["job_args"], *trial_overrides(overrides), f"output={trial_dir}"])
    loop, train, validation, _ = module.prepare(cfg)
    data = {"train": ray.put(train), "validation": ray.put(validation) if validation else None}
    callback = _code_metric_callback(config["metric"], config["problems"], trial_dir, config.get("generation"),
                                     config.get("execution"))
    outcome = run_training(loop, data, trial_dir, callbacks=[callback])  # the callback reported each checkpoint
    # The last checkpoint once more, from here: a trial restored after its training had ended (the driver was killed
    # before Tune recorded its end) trains nothing and reports nothing new, and Tune needs the metric from every run
    # of a trial. `_score` reads the callback's value back; the summary counts a checkpoint once.
    from ray import tune

    value = _score(outcome.checkpoint, int(outcome.metrics.get(STEP, 0)), config["metric"], config["problems"],
                   trial_dir, config.get("generation"), config.get("execution"))
    tune.report({**{k: v for k, v in outcome.metrics.items() if isinstance(v, (int, float))}, config["metric"]: value,
                 "checkpoint_path": outcome.checkpoint})


def _trial_name(overrides: dict) -> str:
    """A directory name for a trial's overrides: readable, stable across restores."""
    import hashlib

    text = json.dumps(overrides, sort_keys=True)
    short = ",".join(f"{k.rsplit('.', 1)[-1]}={v:.3g}" if isinstance(v, float) else f"{k.rsplit('.', 1)[-1]}={v}"
                     for k, v in sorted(overrides.items()))
    return (short[:80] + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]).replace("/", "_")


def sweep(job: str, job_args: list[str], space: dict, metric: str, problems: dict[str, Any], output: str | Path, *,
          generation=None, execution=None, num_samples: int = 1, max_concurrent_trials: int | None = None,
          asha: dict | None = None, retries: int = 1, trial_cpus: float = 0.1,
          ray_address: str | None = None) -> dict:
    """Run the sweep (or resume it) and pick the best checkpoint of every trial.

    Args:
        job: one of JOBS (jobs/<job>.py).
        job_args: the job's own arguments, before each trial's overrides (e.g. ["--config", FILE, "key=value"]).
        space: the search space over the job's config keys (raylib.tune.space), checked before any trial.
        metric: pass@K or reference_nll, scored on every checkpoint; the best is the max (min for NLL).
        problems: {"dataset", "dataset_path"?, "skip"?, "limit"?, "pairs"?}: what the metric is measured on.
        output: the output directory (re-use it to resume).
        generation, execution: GenerationSettings and ExecutionPool for pass@K.
        num_samples: samples of the space (each grid point is run that many times; random samplers drawn anew).
        max_concurrent_trials: trials at once; None: as many as the cluster's resources allow.
        asha: ASHA early stopping over checkpoints ({"grace_period", "reduction_factor", "max_t"}); None: none.
        retries: times an errored trial is run again (it resumes from its latest checkpoint).
        trial_cpus: CPUs each trial's driver reserves (its Ray Train workers reserve their own).

    Returns:
        sweep_summary.json's content.

    Raises:
        ValueError: an unknown job or metric, a search space the job's config rejects (naming the key), or an
            output holding another sweep.
    """
    from ray import tune

    from raylib.cluster import init_cluster
    from raylib.tune.space import parse_space, tune_param_space

    if job not in JOBS:
        raise ValueError(f"job must be one of {JOBS}, got {job!r}")
    mode = metric_mode(metric)
    _, config_cls = _job(job)
    dimensions = parse_space(space, config_cls, base_args=job_args)
    output = Path(output).resolve()
    settings = {"generation": generation.model_dump(mode="json") if generation and metric != "reference_nll" else None,
                "execution": execution.model_dump(mode="json") if execution else None}
    identity = {"job": job, "job_args": job_args, "space": space, "metric": metric, "problems": problems,
                "num_samples": num_samples, "generation": settings["generation"]}
    changed = claim_output(output / "sweep_identity.json", identity)
    if changed:
        raise ValueError(f"{output} holds another sweep (changed: {changed}); use a new output, or delete it")
    init_cluster(ray_address)
    trainable = tune.with_resources(sweep_trial, {"CPU": trial_cpus})
    storage = output / "tune"
    if tune.Tuner.can_restore(storage / EXPERIMENT):
        tuner = tune.Tuner.restore(str(storage / EXPERIMENT), trainable, resume_errored=True)
    else:
        scheduler = None
        if asha is not None:
            scheduler = tune.schedulers.ASHAScheduler(time_attr="training_iteration", **asha)
        param_space = {"overrides": tune_param_space(dimensions), "job": job, "job_args": list(job_args),
                       "metric": metric, "problems": problems, "output": str(output), "cwd": os.getcwd(),
                       **settings}
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(metric=metric, mode=mode, num_samples=num_samples, scheduler=scheduler,
                                        max_concurrent_trials=max_concurrent_trials),
            run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(storage), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=retries)))
    grid = tuner.fit()
    summary = _summarize(grid, metric, mode)
    if summary["best"] is not None:
        best = summary["best"]
        from raylib.train.runner import replace_dir

        replace_dir(Path(best["checkpoint"]) / "model", output / "best")
        write_json(output / "best" / "sweep_best.json", {"metric": metric, **best})
    write_json(output / "sweep_summary.json", summary)
    _report(summary, output)
    return summary


def _summarize(grid, metric: str, mode: str) -> dict:
    """{"metric", "mode", "best": {trial, config, checkpoint, step, value} | None, "trials": [...]} from Tune's
    results: every report of every trial (a trial's best checkpoint competes, not only its last)."""
    import math

    trials = []
    for result in grid:
        reports = []
        frame = result.metrics_dataframe
        if frame is not None and metric in frame:
            for _, row in frame.iterrows():
                value = row.get(metric)
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    continue
                checkpoint = row.get("checkpoint_path")
                if checkpoint and any(r["checkpoint"] == checkpoint for r in reports):
                    continue  # the last checkpoint, reported again at the trial's end
                reports.append({"step": int(row.get(STEP, row.get("training_iteration", 0))), metric: float(value),
                                "loss": _number(row.get("train_loss")), "checkpoint": checkpoint})
        trials.append({"trial": Path(result.path).name, "config": result.config["overrides"],
                       "status": "error" if result.error else "done",
                       "error": _last_line(result.error) if result.error else None, "results": reports})
    candidates = [(t, r) for t in trials for r in t["results"] if r.get("checkpoint")]
    best = None
    if candidates:
        pick = (max if mode == "max" else min)(candidates, key=lambda tr: tr[1][metric])
        trial, report = pick
        best = {"trial": trial["trial"], "config": trial["config"], "checkpoint": report["checkpoint"],
                "step": report["step"], "value": report[metric]}
    return {"metric": metric, "mode": mode, "best": best, "trials": trials}


def _last_line(error: BaseException) -> str:
    """What a trial's error says: the last line of its (Ray-wrapped) traceback, e.g. 'DataError: FILE: not found'."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[-1] if lines else type(error).__name__)[:500]


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _report(summary: dict, output: Path) -> None:
    """report.md (a row per trial, the best first) and sweep.png (the metric per trial over training steps)."""
    metric, mode = summary["metric"], summary["mode"]
    pick = max if mode == "max" else min

    def best_of(trial):
        values = [r[metric] for r in trial["results"]]
        return pick(values) if values else None

    ranked = sorted(summary["trials"], key=lambda t: (best_of(t) is None, -(best_of(t) or 0) if mode == "max"
                                                      else (best_of(t) or 0)))
    lines = [f"# Sweep by {metric} ({mode})", "", f"| trial | config | best {metric} | checkpoints | status |",
             "|---|---|---|---|---|"]
    for t in ranked:
        value = best_of(t)
        mark = "**" if summary["best"] and t["trial"] == summary["best"]["trial"] else ""
        lines.append(f"| {mark}{t['trial']}{mark} | {json.dumps(t['config'])} | "
                     f"{'' if value is None else f'{value:.4f}'} | {len(t['results'])} | "
                     f"{t['status'] if not t['error'] else 'error: ' + t['error'][:120]} |")
    plotted = [t for t in summary["trials"] if t["results"]]
    if plotted:
        lines += ["", "![sweep](sweep.png)"]
    atomic_write(output / "report.md", "\n".join(lines) + "\n")
    if not plotted:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=120)
    for t in plotted:
        ax.plot([r["step"] for r in t["results"]], [r[metric] for r in t["results"]], marker="o",
                label=json.dumps(t["config"])[:60], linewidth=2.5 if summary["best"] and
                t["trial"] == summary["best"]["trial"] else 1.2)
    ax.set_xlabel("training step")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per trial at each checkpoint")
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(output / "sweep.png")
    plt.close(fig)
