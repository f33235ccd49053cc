"""Training settings: the `train:` section of every training job, the jobs' shared config base, the DeepSpeed config,
and `LoopConfig`, what every Ray Train worker's `train_func` reads.

    from raylib.train.settings import deepspeed_config, LoopConfig, TrainData, TrainJobConfig, TrainSettings
    class RewardData(TrainData): ...                         # a job's data section: train/validation files, max_length
    class TrainRMConfig(TrainJobConfig): data: RewardData     # model, output, train (TrainSettings), ray_address
    train, validation = cfg.data.splits(read, cfg.train.optim.seed)      # the validation file, or whole tasks held out
    loop = LoopConfig(objective="bradley_terry", model=model_dir, settings=cfg.train)   # loop.task == "reward"
    deepspeed_config(cfg.train, world_size=2)                # the DeepSpeed config dict (pure)

`TrainSettings` says how many workers, what each holds, the DeepSpeed ZeRO stage and offload, the optimizer,
checkpointing and PEFT. All checks of a settings combination happen in validators, before any worker starts.
`LoopConfig.model_dump(mode="json")` is plain data: Ray Train (and Tune) pass it to every worker, which validates it
back with `LoopConfig.model_validate`; the examples travel beside it as object refs (`raylib.train.loop.train_func`).
Nothing here imports torch or Ray.
"""

from __future__ import annotations

from typing import Callable, Literal

from pydantic import Field, field_validator, model_validator

from raylib.config import ConsoleJobConfig, Section, deep_merge
from raylib.train.data.reflection import BLOCK_TYPES
from raylib.train.objectives import OBJECTIVES
from raylib.train.objectives.reflection import MASK_STRATEGIES

__all__ = ["CheckpointSettings", "DeepSpeedSettings", "DistillationSettings", "LoopConfig", "OptimSettings",
           "PeftSettings", "ScalingSettings", "TrainData", "TrainJobConfig", "TrainSettings", "deepspeed_config"]


class ScalingSettings(Section):
    workers: int = Field(2, ge=1, description="Ray Train workers (data-parallel ranks).")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs each worker reserves (fractional is allowed).")
    use_gpu: bool = Field(False, description="One GPU per worker, NCCL between them; gloo on CPU otherwise.")
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        "PACK", description="How the workers' bundles are placed on the cluster's nodes.")
    wait_for_nodes_s: float = Field(600.0, gt=0, description="How long the run waits for nodes with room for all its "
                                    "workers (at the start, or after losing a node; an autoscaler may add one) before "
                                    "the job stops with exit 3; the same command re-run resumes from the latest "
                                    "checkpoint.")


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


class DistillationSettings(Section):
    weight: float = Field(0.0, ge=0, description="ReflectionCoder self-distillation loss weight (0: off).")
    strategy: Literal[MASK_STRATEGIES] = Field("block", description="What the student does not see of the "
                                                                    "reflection sequence; grows with progress.")
    block_order: list[str] = Field(list(("execution", "text", "code")), description="Block types in the order "
                                                                                     "the block strategy hides them.")

    @field_validator("block_order")
    @classmethod
    def _order(cls, value):
        if sorted(value) != sorted(BLOCK_TYPES):
            raise ValueError(f"block_order must list each of {BLOCK_TYPES} once, got {value}")
        return value


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
        "zero_force_ds_cpu_optimizer": False,  # torch AdamW on offloaded state: slower than DeepSpeedCPUAdam, no build
        "steps_per_print": 10 ** 9,
        "wall_clock_breakdown": False,
    }
    deep_merge(config, ds.extra)
    return config


# ----------------------------------------------------------------------------------- what train_func reads


class LoopConfig(Section):
    """Everything `raylib.train.loop.train_func` reads but the examples (those travel as object refs beside it)."""

    objective: str = Field(..., description="A key of raylib.train.objectives.OBJECTIVES: lm, reflection, "
                                            "bradley_terry, orm or pairwise; it decides the model head (`task`).")
    model: str = Field(..., description="Hugging Face directory (or hub id) to start from.")
    reflection_tokens: bool = Field(False, description="Add ReflectionCoder's special tokens to the tokenizer "
                                                       "(and rows to the embeddings).")
    distillation: DistillationSettings | None = Field(None, description="The reflection objective's self-distillation "
                                                                        "(dynamic block masking); None otherwise.")
    settings: TrainSettings = Field(default_factory=TrainSettings, description="Workers, DeepSpeed, optimizer, PEFT.")
    tensorboard_dir: str | None = Field(None, description="Where rank 0 writes TensorBoard events (run_training sets "
                                                          "OUTPUT/tensorboard); None: no events.")

    @field_validator("objective")
    @classmethod
    def _known(cls, value):
        if value not in OBJECTIVES:
            raise ValueError(f"unknown objective {value!r}; one of {sorted(OBJECTIVES)}")
        return value

    @model_validator(mode="after")
    def _check(self):
        if (self.objective == "reflection") != (self.distillation is not None):
            raise ValueError("the reflection objective, and only it, takes distillation settings")
        if self.objective == "reflection" and not self.reflection_tokens:
            raise ValueError("the reflection objective needs reflection_tokens")
        return self

    @property
    def task(self) -> str:
        """The model head the objective trains: "causal_lm", "reward" or "preference" (`raylib.train.adapters`)."""
        return OBJECTIVES[self.objective].task


# ------------------------------------------------------------------------------- the training jobs' config base


class TrainData(Section):
    """A training job's data section; a job extends it (its own formats, defaults and descriptions)."""

    train: str = Field(..., description="Training JSONL.")
    validation: str | None = Field(None, description="Validation JSONL; None: hold out validation_fraction of train.")
    validation_fraction: float = Field(0.1, ge=0, lt=1, description="Share of tasks held out when no validation file.")
    max_length: int = Field(512, ge=8, description="Longest example in tokens; a longer one is an error.")

    def splits(self, read: Callable[[str], list[dict]], seed: int = 0) -> tuple[list[dict], list[dict]]:
        """(train, validation) examples, each file read by `read(path)`: the validation file when there is one,
        else `validation_fraction` of train's groups held out whole (`raylib.train.batching.read_splits`)."""
        from raylib.train.batching import read_splits

        return read_splits(read, self.train, self.validation, self.validation_fraction, seed)


class TrainJobConfig(ConsoleJobConfig):
    """The fields every training job shares; a job extends it with its `data` section and its own defaults."""

    model: str = Field("embedded", description="Model to start from: 'embedded', 'minilm', a Hugging Face "
                                               "directory or hub id.")
    data: TrainData = Field(..., description="Training and validation data.")
    output: str = Field("runs/train", description="Output directory (re-use it to resume after a kill).")
    train: TrainSettings = Field(default_factory=TrainSettings, description="Workers, DeepSpeed, optimizer, PEFT.")
    ray_address: str | None = Field(None, description="Ray cluster to join; None: RAY_ADDRESS or a local one.")
