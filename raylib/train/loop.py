"""The training function every Ray Train worker runs: DeepSpeed engine, the objective, validation, checkpoints.

    TorchTrainer(train_func, train_loop_config={**loop.model_dump(mode="json"), "data": refs}, ...)
    # raylib.train.runner.run_training builds it; loop: a raylib.train.settings.LoopConfig

`train_func(config)` reads everything from `config` (never module globals), so the same function runs under Tune:
the fields of `LoopConfig` (objective, model, reflection_tokens, distillation, settings, tensorboard_dir; validated
back with `LoopConfig.model_validate`) and `data`: {"train": ObjectRef of examples, "validation": ObjectRef or None}.
Examples are token ids already (`raylib.train.data`: sft, reflection, reward). The objective
(`raylib.train.objectives.OBJECTIVES[objective]`) collates each micro-batch, gives its loss and the validation metrics.

Every `checkpoint.every_steps` optimizer steps (and at each epoch's end, and at the end) all ranks run validation,
save `deepspeed/` (their shards of the engine state, for resuming) and rank 0 saves `model/` (a Hugging Face
directory, or the PEFT adapter, with the tokenizer), then they report metrics with that checkpoint. A restarted
worker group, or the same command re-run after a kill, loads the latest checkpoint and skips the micro-batches
it already trained on (the batch plan is a function of the seed and epoch).
"""

from __future__ import annotations

import math
import random
import sys
import tempfile
import time
from pathlib import Path

from raylib.train.batching import rank_batches, steps_per_epoch
from raylib.train.objectives import OBJECTIVES
from raylib.train.settings import LoopConfig, deepspeed_config

__all__ = ["lr_lambda", "prepare_tokenizer", "train_func"]


def prepare_tokenizer(model: str, reflection_tokens: bool = False):
    """The tokenizer a run trains with (the driver encodes data with it, every worker rebuilds it the same way):
    a pad token (EOS when the model has none) and, for ReflectionCoder data, its special tokens."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if reflection_tokens:
        from raylib.train.data.reflection import add_reflection_tokens

        add_reflection_tokens(tokenizer)
    return tokenizer


def lr_lambda(schedule: str, warmup_steps: int, total_steps: int):
    """The LR multiplier per step: linear warmup to 1, then constant, linear to 0 or cosine to 0."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return max(0.0, 1 - progress) if schedule == "linear" else 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


def _example_length(example: dict) -> int:
    if "chosen_ids" in example:
        return max(len(example["chosen_ids"]), len(example["rejected_ids"]))
    return len(example["input_ids"])


# ------------------------------------------------------------------------------------------ the worker function


def train_func(config: dict) -> None:
    """Ray Train's per-worker function (see the module docstring for `config`)."""
    import deepspeed
    import ray
    import ray.train
    import torch
    import torch.distributed as dist

    from raylib.train.adapters import apply_peft, load_base

    loop = LoopConfig.model_validate({key: value for key, value in config.items() if key != "data"})
    settings, optim, task = loop.settings, loop.settings.optim, loop.task
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.manual_seed(optim.seed)

    train = ray.get(config["data"]["train"])
    validation = ray.get(config["data"]["validation"]) if config["data"].get("validation") is not None else []
    tokenizer = prepare_tokenizer(loop.model, loop.reflection_tokens)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[settings.deepspeed.precision]
    objective = OBJECTIVES[loop.objective](tokenizer, dtype, loop.distillation)

    model = load_base(loop.model, task, dtype=torch.float32)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    if optim.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        if settings.peft.method != "none":
            model.enable_input_require_grads()
    model = apply_peft(model, settings.peft, task)

    spe = steps_per_epoch(len(train), optim.micro_batch_size, world, optim.grad_accum)
    total_steps = optim.max_steps or spe * optim.epochs
    warmup = int(total_steps * optim.warmup_ratio)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=optim.lr, weight_decay=optim.weight_decay, betas=tuple(optim.betas))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(optim.schedule, warmup, total_steps))
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler,
                                           config=deepspeed_config(settings, world), dist_init_required=False)

    step = 0
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            _, client_state = engine.load_checkpoint(str(Path(directory) / "deepspeed"), tag="state",
                                                     load_module_strict=settings.peft.method == "none")
        step = client_state["step"]
        if rank == 0:
            _say(f"resumed from the checkpoint at step {step}/{total_steps}")

    writer = None
    if rank == 0 and loop.tensorboard_dir:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(loop.tensorboard_dir)
    lengths = [_example_length(e) for e in train]
    every = settings.checkpoint.every_steps
    # train_seconds: wall time of the loop (batching, steps, logging) without validation and checkpointing
    tokens_done, paused, loss_window = 0, 0.0, []
    engine.train()
    loop_started, started_at = time.perf_counter(), time.time()

    while step < total_steps:
        epoch = step // spe
        plan = rank_batches(lengths, optim.micro_batch_size, world, rank, optim.grad_accum, epoch, optim.seed,
                            optim.group_by_length)
        skip = (step - epoch * spe) * optim.grad_accum
        for index in range(skip, len(plan), optim.grad_accum):
            step_loss, step_tokens = 0.0, 0
            for micro in plan[index:index + optim.grad_accum]:
                examples = [train[i] for i in micro]
                rng = random.Random(optim.seed * 1_000_003 + step * 1009 + rank)  # the reflection objective's masks
                loss, tokens = objective.loss(engine, examples, step=step, total_steps=total_steps, rng=rng)
                engine.backward(loss)
                engine.step()
                step_loss += loss.item() / optim.grad_accum
                step_tokens += tokens
            step += 1
            tokens_done += step_tokens
            loss_window.append(step_loss)
            end_of_epoch = step % spe == 0
            if step % settings.log_every == 0 or step == total_steps:
                mean_loss = _mean_over_ranks(sum(loss_window) / len(loss_window))
                loss_window = []
                lr = scheduler.get_last_lr()[0]
                if writer is not None:
                    writer.add_scalar("train/loss", mean_loss, step)
                    writer.add_scalar("train/lr", lr, step)
                if rank == 0:
                    _say(f"step {step}/{total_steps} epoch {epoch} loss {mean_loss:.4f} lr {lr:.3g}")
            if step == total_steps or (every and step % every == 0) or (not every and end_of_epoch):
                checkpoint_started = time.perf_counter()
                tokens = _sum_over_ranks(tokens_done)
                train_seconds = checkpoint_started - loop_started - paused
                metrics = {"step": step, "epoch": step / spe, "train_loss": step_loss, "tokens": tokens,
                           "train_seconds": train_seconds, "tokens_per_second": tokens / train_seconds,
                           "training_started_at": started_at}
                metrics.update(_validate(engine, objective, validation, rank, world, optim.micro_batch_size))
                if writer is not None:
                    for key, value in metrics.items():
                        if key.startswith("val_"):
                            writer.add_scalar(f"validation/{key[4:]}", value, step)
                    writer.flush()
                if rank == 0:
                    scores = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k.startswith("val_"))
                    _say(f"checkpoint at step {step}" + (f": {scores}" if scores else ""))
                _save_and_report(engine, tokenizer, settings, step, rank, metrics)
                paused += time.perf_counter() - checkpoint_started
            if step >= total_steps:
                break
    if writer is not None:
        writer.close()
    # gloo/NCCL teardown is Ray Train's (it owns the process group); waiting here lets every rank finish its report
    dist.barrier()


# rank 0's progress lines, as the driver's console reads them from the forwarded log (raylib.console.follow)
STEP_LINE = r"step (\d+)/(\d+)(?: epoch \S+ loss (?P<loss>\S+))?"


def _say(message: str) -> None:
    """One progress line from rank 0. Not print(): Ray Train's print patch would emit it twice (logger + tee)."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def _mean_over_ranks(value: float) -> float:
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.item() / dist.get_world_size()


def _sum_over_ranks(value: float) -> float:
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.item()


def _validate(engine, objective, validation, rank, world, batch_size) -> dict:
    """The objective's validation metrics (keys `val_*`) over the whole validation set, every rank scoring its share.
    Under ZeRO-3 every rank must run the same number of forward passes, so a rank short of batches repeats one and
    drops its outputs."""
    import torch
    import torch.distributed as dist

    if not validation:
        return {}
    batches = [list(range(i, min(i + batch_size, len(validation)))) for i in range(0, len(validation), batch_size)]
    mine = batches[rank::world]
    rounds = math.ceil(len(batches) / world)
    outputs = []
    engine.eval()
    with torch.no_grad():
        for r in range(rounds):
            indices = mine[r] if r < len(mine) else batches[0]
            value = objective.validation_outputs(engine, [validation[i] for i in indices])
            if r < len(mine):
                outputs.extend(value)
    engine.train()
    gathered: list = [None] * world
    dist.all_gather_object(gathered, outputs)
    return objective.validation_metrics([row for part in gathered for row in part])


def _save_and_report(engine, tokenizer, settings, step: int, rank: int, metrics: dict) -> None:
    """Every rank saves its DeepSpeed shards; rank 0 writes the Hugging Face model (gathered under ZeRO-3) and the
    tokenizer; then all report the directory to Ray Train, which merges the ranks' files into one checkpoint."""
    import ray.train

    peft = settings.peft.method != "none"
    with tempfile.TemporaryDirectory(prefix="codeloop-ckpt-") as directory:
        engine.save_checkpoint(str(Path(directory) / "deepspeed"), tag="state", client_state={"step": step},
                               exclude_frozen_parameters=peft)
        state_dict = engine._zero3_consolidated_16bit_state_dict() if settings.deepspeed.zero_stage == 3 else None
        if rank == 0:
            model_dir = Path(directory) / "model"
            module = engine.module
            if state_dict is None:
                module.save_pretrained(model_dir, safe_serialization=True)
            else:
                module.save_pretrained(model_dir, state_dict=state_dict, safe_serialization=True)
            tokenizer.save_pretrained(model_dir)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory))
