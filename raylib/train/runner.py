"""The Ray Train shell of every training job: one TorchTrainer runner for SFT, reward and preference models.

    from raylib.train.runner import check_run, launch_job
    loop = LoopConfig(objective="lm", model=model_dir, settings=cfg.train)     # raylib.train.settings
    check_run(loop, len(train))                            # steps per epoch; ValueError before any worker starts
    launch_job(loop, train, validation, "runs/sft")        # exit status: 0 (model and metrics printed), 1 failed run
    outcome = launch(loop, train, validation, "runs/sft")  # TrainingOutcome(model_dir, merged_dir, metrics, checkpoint)

`loop` (a `LoopConfig`) is what `raylib.train.loop.train_func` reads in every worker: the objective, the model and the
`TrainSettings` (workers, DeepSpeed, optimizer, checkpoints, PEFT); the job builds it, the runner adds where
TensorBoard logs go and puts the examples in the object store. Checkpoints land in OUTPUT/ray/train/checkpoint_*/
(`model/`: a Hugging Face directory, full or PEFT adapter; `deepspeed/`: the state a resumed run loads); running the
same command again after a kill resumes from the latest one (Ray Train v2 restores a run by its storage path and
name). The final checkpoint's `model/` is copied to OUTPUT/model (and merged into OUTPUT/merged with `peft.merge`).
TensorBoard logs: OUTPUT/tensorboard (`tensorboard --logdir OUTPUT/tensorboard`). `import ray` and torch are inside
the functions.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from raylib.cluster import InfrastructureError
from raylib.files import write_json
from raylib.train.settings import LoopConfig, TrainSettings

__all__ = ["TrainingOutcome", "check_batches", "check_run", "launch", "launch_job", "replace_dir", "run_training"]


@dataclass
class TrainingOutcome:
    """What a finished run leaves: the final model directory (and merged one), its metrics, the checkpoint path."""

    model_dir: Path
    merged_dir: Path | None
    metrics: dict
    checkpoint: str


def check_run(loop: LoopConfig, num_examples: int) -> int:
    """Everything about a run that can be checked before a worker starts: the data fills a global batch and the
    adapter fits the model (on its weightless skeleton). Returns optimizer steps per epoch; raises ValueError."""
    from raylib.train.adapters import check_peft

    steps = check_batches(num_examples, loop.settings)
    check_peft(loop.model, loop.task, loop.settings.peft)
    return steps


def check_batches(num_examples: int, settings: TrainSettings) -> int:
    """Optimizer steps per epoch; ValueError when the data cannot fill one global batch."""
    from raylib.train.batching import steps_per_epoch

    optim, workers = settings.optim, settings.scaling.workers
    steps = steps_per_epoch(num_examples, optim.micro_batch_size, workers, optim.grad_accum)
    if steps == 0:
        need = optim.micro_batch_size * workers * optim.grad_accum
        raise ValueError(f"{num_examples} training examples cannot fill one optimizer step of {need} "
                         f"(micro_batch_size {optim.micro_batch_size} x workers {workers} x grad_accum "
                         f"{optim.grad_accum}): lower those or add data")
    return steps


def launch(loop: LoopConfig, train: list[dict], validation: list[dict], output: str | Path,
           ray_address: str | None = None) -> TrainingOutcome:
    """Join or start the cluster, put the encoded examples in the object store and `run_training`."""
    import ray

    from raylib.cluster import init_cluster

    init_cluster(ray_address)
    data = {"train": ray.put(train), "validation": ray.put(validation) if validation else None}
    return run_training(loop, data, output)


def launch_job(loop: LoopConfig, train: list[dict], validation: list[dict], output: str | Path,
               ray_address: str | None = None, *, config: BaseModel | None = None, verbose: bool = False,
               summary: str = "") -> int:
    """A training job's last step, in the job's console (raylib.console): the resolved `config` and `summary`, a
    progress bar over optimizer steps, then where the model is and its final metrics; what Ray, DeepSpeed and the
    workers say goes to OUTPUT/job.log (`verbose`: live too). Returns the exit status: 0; or, with the error and how to
    resume, 3 when no nodes had room for the workers and 1 when the run failed otherwise."""
    from raylib.config import log_config
    from raylib.console import job_console
    from raylib.train.loop import STEP_LINE

    with job_console(output, verbose) as console:
        if config is not None:
            log_config(config, output, file=console.out)
        if summary:
            print(summary, file=console.out, flush=True)
        try:
            with console.follow(STEP_LINE, desc="training"):
                outcome = launch(loop, train, validation, output, ray_address)
        except RuntimeError as err:
            print(f"error: {err}\nre-run the same command to resume from the latest checkpoint", file=console.err)
            return 3 if isinstance(err, InfrastructureError) else 1
        print(f"model: {outcome.model_dir}" + (f", merged: {outcome.merged_dir}" if outcome.merged_dir else ""),
              file=console.out)
        print("metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in outcome.metrics.items()
                                      if isinstance(v, float) and k != "training_started_at"), file=console.out)
        print(f"logs: {console.log_path}", file=console.out, flush=True)
    return 0


def run_training(loop: LoopConfig, data: dict, output: str | Path, name: str = "train",
                 callbacks: list | None = None) -> TrainingOutcome:
    """Fit `raylib.train.loop.train_func` on Ray Train workers; resume from OUTPUT/ray/NAME's latest checkpoint if a
    previous run of the same output was killed. Writes OUTPUT/model (and OUTPUT/merged) and OUTPUT/metrics.json.

    `data`: {"train": ObjectRef of the examples, "validation": ObjectRef or None}, passed beside the loop config.
    `callbacks`: Ray Train UserCallbacks (a sweep's trial reports each checkpoint to Tune through one).
    Raises RuntimeError when the run fails (after `checkpoint.max_failures` recoveries) or reports no checkpoint;
    InfrastructureError (a RuntimeError) when no nodes had room for its workers for `scaling.wait_for_nodes_s`.
    """
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    from raylib.train.loop import train_func

    output = Path(output).resolve()
    settings = loop.settings
    loop = loop.model_copy(update={"tensorboard_dir": str(output / "tensorboard")})
    trainer = TorchTrainer(
        train_func,
        train_loop_config={**loop.model_dump(mode="json"), "data": data},
        torch_config=TorchConfig(backend="nccl" if settings.scaling.use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=settings.scaling.workers, use_gpu=settings.scaling.use_gpu,
            resources_per_worker={"CPU": settings.scaling.cpus_per_worker},
            placement_strategy=settings.scaling.placement_strategy),
        run_config=ray.train.RunConfig(
            name=name, storage_path=str(output / "ray"), callbacks=callbacks or [],
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=settings.checkpoint.keep),
            failure_config=ray.train.FailureConfig(max_failures=settings.checkpoint.max_failures,
                                                   controller_failure_limit=_start_tries(settings.scaling))),
    )
    try:
        result = _without_placement_group_cleaner(trainer).fit()
    except ray.train.ControllerError as err:  # the worker group could not start, try after try: no room for it
        scaling = settings.scaling
        raise InfrastructureError(
            f"no nodes had room for the {scaling.workers} training workers ({scaling.cpus_per_worker:g} CPUs"
            f"{' and a GPU' if scaling.use_gpu else ''} each) for {scaling.wait_for_nodes_s:g} s (a node was lost, or "
            f"the run asks for more than the cluster holds): {str(err)[-300:]}") from err
    except ray.train.TrainingFailedError as err:  # workers failed more than checkpoint.max_failures times
        raise RuntimeError(f"training failed: {err}") from err
    if result.error is not None:
        raise RuntimeError(f"training failed: {result.error}") from result.error
    if result.checkpoint is None:
        raise RuntimeError("training reported no checkpoint")
    model_dir = replace_dir(Path(result.checkpoint.path) / "model", output / "model")
    merged_dir = None
    if settings.peft.merge:
        from raylib.train.adapters import merge_adapter

        merged_dir = merge_adapter(model_dir, output / "merged", loop.task)
    metrics = dict(result.metrics or {})
    write_json(output / "metrics.json", metrics)
    return TrainingOutcome(model_dir, merged_dir, metrics, result.checkpoint.path)


def _start_tries(scaling) -> int:
    """Worker-group starts Ray Train may retry: enough to wait `scaling.wait_for_nodes_s` (Ray Train gives each
    start RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S, 60 s by default, to get its resources)."""
    per_try = float(os.environ.get("RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S", "60"))  # Ray's own knob, read as Ray does
    return max(1, math.ceil(scaling.wait_for_nodes_s / per_try))


def _without_placement_group_cleaner(trainer):
    """Drop Ray Train v2's PlacementGroupCleaner from `trainer`'s default callbacks.

    The cleaner asks the state API (through the dashboard and GCS) every second whether the train controller is
    alive, to remove the workers' placement group should the controller die while its driver lives on. Measured on
    2 saturated cores (BENCHMARKS.md, training): a plain DeepSpeed loop in a TorchTrainer ran at 402 tokens/s with
    it and 488 without. Our drivers exit after `fit`, and Ray removes a dead job's placement groups itself (the
    resume-after-SIGKILL test relies on it). If a Ray upgrade moves these internals, the trainer keeps its defaults.
    """
    try:
        from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback
    except ImportError:
        return trainer
    defaults = getattr(trainer, "_create_default_callbacks", None)
    if defaults is None:
        return trainer
    trainer._create_default_callbacks = lambda: [callback for callback in defaults()
                                                 if not isinstance(callback, PlacementGroupCleanerCallback)]
    return trainer


def replace_dir(source: Path, target: Path) -> Path:
    """Copy `source` to `target` through a temporary sibling and a rename, so a kill never leaves half a model."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
