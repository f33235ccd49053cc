"""Training settings and the Ray Train shell: one TorchTrainer runner for SFT, reward and preference jobs.

    from raylib.train.runner import check_run, launch, TrainSettings
    check_run(model, "causal_lm", len(train), settings)                   # ValueError before any worker starts
    outcome = launch(loop_config, train, validation, settings, "runs/sft")  # -> TrainingOutcome (model dir, metrics)

`settings` (a `TrainSettings`, the `train:` section of every training job) says how many workers, what each holds,
the DeepSpeed ZeRO stage and offload, the optimizer, checkpointing and PEFT. `loop_config` is the plain dict that
`raylib.train.loop.train_func` reads in every worker (task, model, data refs); the job builds it. Checkpoints land in
OUTPUT/ray/train/checkpoint_*/ (`model/`: a Hugging Face directory, full or PEFT adapter; `deepspeed/`: the state a
resumed run loads); running the same command again after a kill resumes from the latest one (Ray Train v2 restores
a run by its storage path and name). The final checkpoint's `model/` is copied to OUTPUT/model (and merged into
OUTPUT/merged with `peft.merge`). TensorBoard logs: OUTPUT/tensorboard (`tensorboard --logdir OUTPUT/tensorboard`).

All checks of a settings combination happen in validators, before any worker starts. `import ray` and torch are
inside the functions.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from raylib.config import deep_merge, Section
from raylib.files import write_json

__all__ = ["CheckpointSettings", "DeepSpeedSettings", "OptimSettings", "PeftSettings", "ScalingSettings",
           "TrainSettings", "TrainingOutcome", "check_batches", "check_run", "deepspeed_config", "launch", "launch_job", "run_training"]

PEFT_METHODS = ("none", "lora", "ia3", "ln_tuning", "prefix")


class ScalingSettings(Section):
    workers: int = Field(2, ge=1, description="Ray Train workers (data-parallel ranks).")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs each worker reserves (fractional is allowed).")
    use_gpu: bool = Field(False, description="One GPU per worker, NCCL between them; gloo on CPU otherwise.")
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        "PACK", description="How the workers' bundles are placed on the cluster's nodes.")


class DeepSpeedSettings(Section):
    zero_stage: Literal[0, 1, 2, 3] = Field(2, description="ZeRO stage: 0 plain data parallel, 1 optimizer state, "
                                                           "2 + gradients, 3 + parameters sharded over the workers.")
    offload_optimizer: bool = Field(False, description="Keep optimizer state in CPU memory (ZeRO 1-3).")
    offload_params: bool = Field(False, description="Keep parameters in CPU memory between uses (ZeRO-3 only).")
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="Training precision; fp16 needs GPUs.")
    gradient_clipping: float = Field(1.0, ge=0, description="Clip the global gradient norm to this (0: off).")
    extra: dict = Field(default_factory=dict, description="Merged last into the DeepSpeed config (any DeepSpeed key).")

    @model_validator(mode="after")
    def _check(self):
        if self.offload_params and self.zero_stage != 3:
            raise ValueError(f"offload_params needs zero_stage 3 (got {self.zero_stage}): only ZeRO-3 partitions "
                             "parameters; use offload_optimizer for stages 1-2")
        if self.offload_optimizer and self.zero_stage == 0:
            raise ValueError("offload_optimizer needs zero_stage 1, 2 or 3 (stage 0 does not partition the optimizer)")
        return self


class OptimSettings(Section):
    lr: float = Field(2e-5, gt=0, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas.")
    epochs: int = Field(1, ge=1, description="Passes over the training data (unless max_steps is set).")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps in all; overrides epochs.")
    micro_batch_size: int = Field(4, ge=1, description="Examples (pairs, packed rows) per worker per forward pass.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    schedule: Literal["constant", "linear", "cosine"] = Field("linear", description="LR decay after warmup.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Share of the steps with linear warmup.")
    group_by_length: bool = Field(True, description="Batch examples of similar length together (less padding).")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in backward (less memory).")
    seed: int = Field(0, description="Seed of the batch order and of new weights (heads, adapters).")


class CheckpointSettings(Section):
    every_steps: int = Field(0, ge=0, description="Checkpoint every N optimizer steps (0: at each epoch's end); "
                                                  "always at the end of training.")
    keep: int = Field(2, ge=1, description="Checkpoints kept (the newest ones).")
    max_failures: int = Field(2, ge=0, description="Worker failures Ray Train recovers from (restarting the "
                                                   "workers from the latest checkpoint) before the run fails.")


class PeftSettings(Section):
    method: Literal["none", "lora", "ia3", "ln_tuning", "prefix"] = Field(
        "none", description="Parameter-efficient fine-tuning method (peft); none trains every weight.")
    r: int = Field(8, ge=1, description="LoRA rank.")
    alpha: int = Field(16, ge=1, description="LoRA alpha.")
    dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout.")
    target_modules: list[str] | None = Field(
        None, description="Modules the adapter wraps (LoRA, IA3, LN-tuning); None: peft's default for the model type.")
    feedforward_modules: list[str] | None = Field(
        None, description="IA3: which of target_modules are feed-forward layers; None: peft's default.")
    num_virtual_tokens: int = Field(16, ge=1, description="Prefix tuning: virtual tokens per layer.")
    merge: bool = Field(False, description="Also write the adapter merged into the base model (OUTPUT/merged).")

    @model_validator(mode="after")
    def _check(self):
        if self.merge and self.method in ("none", "prefix"):
            raise ValueError(f"peft.merge needs an adapter with weights to fold in (lora, ia3, ln_tuning), "
                             f"not {self.method!r}")
        return self


class TrainSettings(Section):
    scaling: ScalingSettings = Field(default_factory=ScalingSettings, description="Workers and their resources.")
    deepspeed: DeepSpeedSettings = Field(default_factory=DeepSpeedSettings, description="DeepSpeed ZeRO settings.")
    optim: OptimSettings = Field(default_factory=OptimSettings, description="Optimizer, schedule and batches.")
    checkpoint: CheckpointSettings = Field(default_factory=CheckpointSettings, description="Checkpoints, recovery.")
    peft: PeftSettings = Field(default_factory=PeftSettings, description="Adapters instead of full fine-tuning.")
    log_every: int = Field(1, ge=1, description="Log the training loss every N optimizer steps.")

    @model_validator(mode="after")
    def _check(self):
        ds, peft = self.deepspeed, self.peft
        if ds.precision == "fp16" and not self.scaling.use_gpu:
            raise ValueError("deepspeed.precision fp16 needs GPUs (scaling.use_gpu); on CPU use fp32 or bf16")
        if ds.zero_stage == 3 and peft.method == "prefix":
            # Measured: the step after the first validation pass hangs in ZeRO-3's parameter coordinator (ranks
            # disagree on the parameters the prefix encoder's forward touches), so refuse it up front.
            raise ValueError("peft.method prefix does not work with deepspeed.zero_stage 3 (training hangs): use "
                             "zero_stage 2 (a prefix adapter gains nothing from partitioning) or lora/ia3/ln_tuning")
        return self


def deepspeed_config(settings: TrainSettings, world_size: int) -> dict:
    """The DeepSpeed config dict for `settings` (pure). The optimizer is a torch AdamW passed to
    `deepspeed.initialize` (no compiled DeepSpeed op, also with offload), so the config names none."""
    ds, optim = settings.deepspeed, settings.optim
    zero: dict = {"stage": ds.zero_stage}
    if ds.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": settings.scaling.use_gpu}
    if ds.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": settings.scaling.use_gpu}
    if ds.zero_stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    config = {
        "train_micro_batch_size_per_gpu": optim.micro_batch_size,
        "gradient_accumulation_steps": optim.grad_accum,
        "train_batch_size": optim.micro_batch_size * optim.grad_accum * world_size,
        "gradient_clipping": ds.gradient_clipping,
        "zero_optimization": zero,
        "bf16": {"enabled": ds.precision == "bf16"},
        "fp16": {"enabled": ds.precision == "fp16"},
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,  # a torch AdamW on offloaded state: slower than DeepSpeedCPUAdam, no build
        "steps_per_print": 10 ** 9,
        "wall_clock_breakdown": False,
    }
    deep_merge(config, ds.extra)
    return config


@dataclass
class TrainingOutcome:
    """What a finished run leaves: the final model directory (and merged one), its metrics, the checkpoint path."""

    model_dir: Path
    merged_dir: Path | None
    metrics: dict
    checkpoint: str


def check_run(model: str, task: str, num_examples: int, settings: TrainSettings) -> int:
    """Everything about a run that can be checked before a worker starts: the data fills a global batch and the
    adapter fits the model (on its weightless skeleton). Returns optimizer steps per epoch; raises ValueError."""
    from raylib.train.adapters import check_peft

    steps = check_batches(num_examples, settings)
    check_peft(model, task, settings.peft)
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


def launch(loop_config: dict, train: list[dict], validation: list[dict], settings: TrainSettings,
           output: str | Path, ray_address: str | None = None) -> TrainingOutcome:
    """Join or start the cluster, put the encoded examples in the object store and `run_training`."""
    import ray

    from raylib.cluster import init_cluster

    init_cluster(ray_address)
    data = {"train": ray.put(train), "validation": ray.put(validation) if validation else None}
    return run_training({**loop_config, "data": data}, settings, output)


def launch_job(loop_config: dict, train: list[dict], validation: list[dict], settings: TrainSettings,
               output: str | Path, ray_address: str | None = None) -> int:
    """A training job's last step: `launch`, print where the model is and its final metrics; returns the exit status
    (0, or 1 with the error and how to resume when the run failed)."""
    import sys

    try:
        outcome = launch(loop_config, train, validation, settings, output, ray_address)
    except RuntimeError as err:
        print(f"error: {err}\nre-run the same command to resume from the latest checkpoint", file=sys.stderr)
        return 1
    print(f"model: {outcome.model_dir}" + (f", merged: {outcome.merged_dir}" if outcome.merged_dir else ""))
    print("metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in outcome.metrics.items()
                                  if isinstance(v, float) and k != "training_started_at"))
    return 0


def run_training(loop_config: dict, settings: TrainSettings, output: str | Path, name: str = "train") -> TrainingOutcome:
    """Fit `raylib.train.loop.train_func` on Ray Train workers; resume from OUTPUT/ray/NAME's latest checkpoint if a
    previous run of the same output was killed. Writes OUTPUT/model (and OUTPUT/merged) and OUTPUT/metrics.json.

    Raises RuntimeError when the run fails (after `checkpoint.max_failures` recoveries) or reports no checkpoint.
    """
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    from raylib.train.loop import train_func

    output = Path(output).resolve()
    loop_config = {**loop_config, "settings": settings.model_dump(mode="json"),
                   "tensorboard_dir": str(output / "tensorboard")}
    trainer = TorchTrainer(
        train_func,
        train_loop_config=loop_config,
        torch_config=TorchConfig(backend="nccl" if settings.scaling.use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=settings.scaling.workers, use_gpu=settings.scaling.use_gpu,
            resources_per_worker={"CPU": settings.scaling.cpus_per_worker},
            placement_strategy=settings.scaling.placement_strategy),
        run_config=ray.train.RunConfig(
            name=name, storage_path=str(output / "ray"),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=settings.checkpoint.keep),
            failure_config=ray.train.FailureConfig(max_failures=settings.checkpoint.max_failures)),
    )
    try:
        result = _without_placement_group_cleaner(trainer).fit()
    except ray.train.TrainingFailedError as err:  # workers failed more than checkpoint.max_failures times
        raise RuntimeError(f"training failed: {err}") from err
    if result.error is not None:
        raise RuntimeError(f"training failed: {result.error}") from result.error
    if result.checkpoint is None:
        raise RuntimeError("training reported no checkpoint")
    model_dir = _replace_dir(Path(result.checkpoint.path) / "model", output / "model")
    merged_dir = None
    if settings.peft.merge:
        from raylib.train.adapters import merge_adapter

        merged_dir = merge_adapter(model_dir, output / "merged", loop_config["task"])
    metrics = dict(result.metrics or {})
    write_json(output / "metrics.json", metrics)
    return TrainingOutcome(model_dir, merged_dir, metrics, result.checkpoint.path)


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


def _replace_dir(source: Path, target: Path) -> Path:
    """Copy `source` to `target` through a temporary sibling and a rename, so a kill never leaves half a model."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
