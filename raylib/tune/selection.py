"""Checkpoint selection by a code metric, one Ray Tune trial per checkpoint (in parallel where the cluster has room).

    from raylib.tune.selection import select_checkpoint
    selection = select_checkpoint(["runs/a/model", "runs/b/model"], "reference_nll", {"dataset": "humaneval"},
                                  "runs/select")
    selection["best"], selection["scores"]

Each trial scores one checkpoint (raylib.tune.metrics.checkpoint_metric) and reports it to Tune. The experiment
lives in OUTPUT/tune/select (a stable name): calling it again with the same output restores it, so finished trials
are not run again and errored ones are retried. Writes OUTPUT/selection.json
{"metric", "mode", "best", "scores": {checkpoint: value}, "errors": {checkpoint: message}}, report.md and
selection.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raylib.files import atomic_write, claim_output, write_json
from raylib.tune.metrics import checkpoint_metric, metric_mode, problems_of

__all__ = ["EXPERIMENT", "score_checkpoint", "select_checkpoint"]

EXPERIMENT = "select"  # the Tune run's name: stable, so that a re-run restores it


def score_checkpoint(config: dict) -> None:
    """The Tune trainable: everything comes from `config` (checkpoint, metric, problems spec, output, generation
    and execution settings as plain data), so a restored experiment runs it the same way."""
    from ray import tune

    from raylib.evaluate.stage import ExecutionPool
    from raylib.generate.settings import GenerationSettings

    spec = config["problems"]
    problems = problems_of(spec)
    generation = GenerationSettings.model_validate(config["generation"]) if config.get("generation") else None
    execution = ExecutionPool.model_validate(config["execution"]) if config.get("execution") else None
    output = Path(config["output"]) / "trials" / _trial_name(config["checkpoints"], config["checkpoint"])
    value = checkpoint_metric(config["checkpoint"], config["metric"], problems, output=output,
                              generation=generation, execution=execution, pairs=spec.get("pairs"))
    tune.report({config["metric"]: value})


def _trial_name(checkpoints: list[str], checkpoint: str) -> str:
    return f"{checkpoints.index(checkpoint):02d}-{Path(checkpoint).name or 'model'}"


def select_checkpoint(checkpoints: list[str], metric: str, problems: dict[str, Any], output: str | Path, *,
                      generation=None, execution=None, max_concurrent_trials: int | None = None,
                      trial_cpus: float = 1.0, retries: int = 1, ray_address: str | None = None) -> dict:
    """Score each checkpoint with `metric` as a Tune trial and pick the best.

    Args:
        checkpoints: Hugging Face directories (full models or PEFT adapters), each scored once.
        metric: pass@K or reference_nll (raylib.tune.metrics).
        problems: {"dataset", "dataset_path"?, "skip"?, "limit"?, "pairs"?}: what each trial measures on.
        output: the output directory (re-use it to resume).
        generation, execution: GenerationSettings and ExecutionPool for pass@K.
        max_concurrent_trials: trials at once; None: as many as the cluster's resources allow.
        trial_cpus: CPUs each trial reserves (a pass@K trial mostly waits on its engine and sandbox actors).
        retries: times an errored trial is run again.

    Returns:
        selection.json's content.

    Raises:
        ValueError: an unknown metric, a checkpoint named twice, or an output holding another selection.
    """
    from ray import tune

    from raylib.cluster import init_cluster

    mode = metric_mode(metric)
    if len(set(checkpoints)) != len(checkpoints):
        raise ValueError("a checkpoint is named twice")
    output = Path(output).resolve()
    given = {str(Path(c).resolve()): c for c in checkpoints}  # trials run elsewhere (Tune's trial dirs): absolute
    checkpoints = list(given)
    identity = {"checkpoints": checkpoints, "metric": metric, "problems": problems,
                "generation": generation.model_dump(mode="json") if generation and metric != "reference_nll" else None}
    changed = claim_output(output / "selection_identity.json", identity)
    if changed:
        raise ValueError(f"{output} holds a selection of other checkpoints or settings (changed: {changed}); use a new "
                         "output, or delete it to start over")
    init_cluster(ray_address)
    trainable = tune.with_resources(score_checkpoint, {"CPU": trial_cpus})
    storage = output / "tune"
    if tune.Tuner.can_restore(storage / EXPERIMENT):
        tuner = tune.Tuner.restore(str(storage / EXPERIMENT), trainable, resume_errored=True)
    else:
        param_space = {"checkpoint": tune.grid_search(checkpoints), "checkpoints": checkpoints, "metric": metric,
                       "problems": problems, "output": str(output),
                       "generation": generation.model_dump(mode="json") if generation else None,
                       "execution": execution.model_dump(mode="json") if execution else None}
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(metric=metric, mode=mode, max_concurrent_trials=max_concurrent_trials),
            run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(storage), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=retries)))
    grid = tuner.fit()
    scores, errors = {}, {}
    for result in grid:
        checkpoint = given.get(result.config["checkpoint"], result.config["checkpoint"])
        if result.error is not None or not result.metrics or metric not in result.metrics:
            errors[checkpoint] = str(result.error or "no metric reported")[:500]
        else:
            scores[checkpoint] = float(result.metrics[metric])
    names = list(given.values())  # as the caller named them, in order
    ordered = {c: scores[c] for c in names if c in scores}
    best = (max if mode == "max" else min)(ordered, key=ordered.get) if ordered else None
    selection = {"metric": metric, "mode": mode, "best": best, "scores": ordered,
                 "errors": {c: errors[c] for c in names if c in errors}}
    write_json(output / "selection.json", selection)
    _report(selection, output)
    return selection


def _report(selection: dict, output: Path) -> None:
    """report.md (a table, the best first) and selection.png (a bar per checkpoint, the best highlighted)."""
    metric, scores = selection["metric"], selection["scores"]
    ranked = sorted(scores, key=scores.get, reverse=selection["mode"] == "max")
    lines = [f"# Checkpoint selection by {metric} ({selection['mode']})", "", f"| checkpoint | {metric} |", "|---|---|"]
    lines += [f"| {'**' + c + '**' if c == selection['best'] else c} | {scores[c]:.4f} |" for c in ranked]
    lines += [f"| {c} | error: {message.splitlines()[0] if message else ''} |"
              for c, message in selection["errors"].items()]
    if scores:
        lines += ["", "![selection](selection.png)"]
    atomic_write(output / "report.md", "\n".join(lines) + "\n")
    if not scores:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(scores)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(names)), 3.5), dpi=120)
    ax.bar(range(len(names)), [scores[n] for n in names],
           color=["tab:green" if n == selection["best"] else "tab:grey" for n in names])
    ax.set_xticks(range(len(names)), [Path(n).parent.name + "/" + Path(n).name for n in names], rotation=20,
                  ha="right", fontsize="small")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per checkpoint (best in green)")
    fig.tight_layout()
    fig.savefig(output / "selection.png")
    plt.close(fig)
