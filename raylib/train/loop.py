"""The training function every Ray Train worker runs: DeepSpeed engine, objectives, validation, checkpoints.

    TorchTrainer(train_func, train_loop_config=loop_config, ...)      # raylib.train.runner.run_training builds it

`train_func(config)` reads everything from `config` (never module globals), so the same function runs under Tune:

    task          "causal_lm" | "reward" | "preference"
    objective     "lm" (SFT; + self-distillation when `distillation` is set) | "bradley_terry" | "orm" | "classification"
    model         a Hugging Face directory (or hub id) to start from
    reflection_tokens  add ReflectionCoder's special tokens to the tokenizer (and rows to the embeddings)
    data          {"train": ObjectRef of examples, "validation": ObjectRef or None}; examples are token ids already
                  (`raylib.train.data.sft`, `encode_pairs`, `encode_classification`)
    distillation  None | {"weight", "strategy", "block_order"} (ReflectionCoder's dynamic block masking)
    settings      `TrainSettings.model_dump()`; tensorboard_dir: where rank 0 writes its events

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

from raylib.train.batching import collate_causal, collate_classification, collate_pairs, rank_batches, steps_per_epoch
from raylib.train.data.sft import IGNORE

__all__ = ["encode_classification", "encode_pairs", "lr_lambda", "prepare_tokenizer", "train_func"]


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


def encode_pairs(tokenizer, pairs: list[dict], max_len: int) -> list[dict]:
    """Reward-model pairs {"prompt", "chosen", "rejected"} as {"chosen_ids", "rejected_ids"} (prompt + code,
    truncation never: a longer pair is a ValueError naming it)."""
    examples = []
    for i, pair in enumerate(pairs):
        ids = {}
        for side in ("chosen", "rejected"):
            ids[side] = list(tokenizer(pair["prompt"], pair[side], truncation=False)["input_ids"])
            if len(ids[side]) > max_len:
                raise ValueError(f"pair {i}: the {side} sequence has {len(ids[side])} tokens, more than max_len {max_len}")
        examples.append({"chosen_ids": ids["chosen"], "rejected_ids": ids["rejected"]})
    return examples


def encode_classification(tokenizer, texts: list[tuple[str, str | None]], labels: list[int], max_len: int) -> list[dict]:
    """(text, second text or None) with an int label as {"input_ids", "label"}; over max_len is a ValueError."""
    examples = []
    for i, ((first, second), label) in enumerate(zip(texts, labels)):
        ids = list(tokenizer(first, second, truncation=False)["input_ids"])
        if len(ids) > max_len:
            raise ValueError(f"example {i} has {len(ids)} tokens, more than max_len {max_len}")
        examples.append({"input_ids": ids, "label": label})
    return examples


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
    from raylib.train.runner import deepspeed_config, TrainSettings

    settings = TrainSettings.model_validate(config["settings"])
    optim = settings.optim
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    task, objective = config["task"], config["objective"]
    torch.manual_seed(optim.seed)

    train = ray.get(config["data"]["train"])
    validation = ray.get(config["data"]["validation"]) if config["data"].get("validation") is not None else []
    tokenizer = prepare_tokenizer(config["model"], config.get("reflection_tokens", False))
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[settings.deepspeed.precision]

    model = load_base(config["model"], task, dtype=torch.float32)
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
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(config["tensorboard_dir"])
    distill = config.get("distillation")
    special_ids = None
    if distill:
        from raylib.train.data.reflection import special_token_ids

        special_ids = special_token_ids(tokenizer)
    lengths = [_example_length(e) for e in train]
    every = settings.checkpoint.every_steps
    pad_id = tokenizer.pad_token_id
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
                loss, tokens = _loss(engine, objective, examples, pad_id, dtype, distill, special_ids,
                                     step, total_steps, random.Random(optim.seed * 1_000_003 + step * 1009 + rank))
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
                    _say(f"step {step}/{total_steps} epoch {epoch} loss {mean_loss:.4f} lr {lr:.3g}")
            if step == total_steps or (every and step % every == 0) or (not every and end_of_epoch):
                checkpoint_started = time.perf_counter()
                tokens = _sum_over_ranks(tokens_done)
                train_seconds = checkpoint_started - loop_started - paused
                metrics = {"step": step, "epoch": step / spe, "train_loss": step_loss, "tokens": tokens,
                           "train_seconds": train_seconds, "tokens_per_second": tokens / train_seconds,
                           "training_started_at": started_at}
                metrics.update(_validate(engine, objective, validation, pad_id, dtype, rank, world, optim.micro_batch_size))
                if writer is not None:
                    for key, value in metrics.items():
                        if key.startswith("val_"):
                            writer.add_scalar(f"validation/{key[4:]}", value, step)
                    writer.flush()
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


def _loss(engine, objective, examples, pad_id, dtype, distill, special_ids, step, total_steps, rng):
    """(loss tensor, tokens that are not padding) of one micro-batch."""
    import torch
    import torch.nn.functional as F

    from raylib.train.data.reward import bradley_terry_loss, orm_loss

    if objective == "lm":
        batch = collate_causal(examples, pad_id, dtype)
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids") if k in batch}
        out = engine(**inputs, labels=batch["labels"])
        # not input_ids != pad: the pad token is often EOS, which the examples contain
        tokens = sum(len(e["input_ids"]) for e in examples) if "position_ids" not in batch else \
            sum(sum(e["seq_lens"]) for e in examples)
        if not distill:
            return out.loss, tokens
        from raylib.train.data.reflection import distillation_attention_mask, distillation_kl, mask_rate

        rate = mask_rate(step, total_steps)
        length = batch["input_ids"].shape[1]
        student_mask = torch.tensor([
            distillation_attention_mask(e["input_ids"], special_ids, rate, distill["strategy"],
                                        distill["block_order"], rng) + [0] * (length - len(e["input_ids"]))
            for e in examples])
        student = engine(input_ids=batch["input_ids"], attention_mask=student_mask)
        # logits at t predict token t+1: compare the two where the next token is part of the final answer
        targets = torch.cat([batch["distillation_labels"][:, 1:],
                             torch.full_like(batch["distillation_labels"][:, :1], IGNORE)], dim=1)
        return out.loss + distill["weight"] * distillation_kl(out.logits, student.logits, targets), tokens
    if objective == "bradley_terry":
        batch = collate_pairs(examples, pad_id)
        scores = engine(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)
        half = len(examples)
        return bradley_terry_loss(scores[:half], scores[half:]), int(batch["attention_mask"].sum())
    batch = collate_classification(examples, pad_id)
    logits = engine(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    tokens = int(batch["attention_mask"].sum())
    if objective == "orm":
        return orm_loss(logits.squeeze(-1), batch["labels"]), tokens
    return F.cross_entropy(logits, batch["labels"]), tokens


def _validate(engine, objective, validation, pad_id, dtype, rank, world, batch_size) -> dict:
    """Validation metrics (keys `val_*`) over the whole validation set, every rank scoring its share. Under ZeRO-3
    every rank must run the same number of forward passes, so a rank short of batches repeats one and drops it."""
    import torch
    import torch.distributed as dist

    from raylib.train.data.reward import pairwise_accuracy, roc_auc

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
            examples = [validation[i] for i in indices]
            if objective == "lm":
                batch = collate_causal(examples, pad_id, dtype)
                inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids") if k in batch}
                value = [(float(engine(**inputs, labels=batch["labels"]).loss), len(examples))]
            elif objective == "bradley_terry":
                batch = collate_pairs(examples, pad_id)
                scores = engine(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)
                value = list(zip(scores[:len(examples)].tolist(), scores[len(examples):].tolist()))
            else:
                batch = collate_classification(examples, pad_id)
                logits = engine(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                predictions = logits.squeeze(-1).tolist() if objective == "orm" else logits.argmax(-1).tolist()
                value = list(zip(predictions, batch["labels"].tolist()))
            if r < len(mine):
                outputs.extend(value)
    engine.train()
    gathered: list = [None] * world
    dist.all_gather_object(gathered, outputs)
    rows = [row for part in gathered for row in part]
    if objective == "lm":
        return {"val_loss": sum(loss * n for loss, n in rows) / sum(n for _, n in rows)}
    if objective == "bradley_terry":
        chosen, rejected = [c for c, _ in rows], [r for _, r in rows]
        return {"val_pairwise_accuracy": pairwise_accuracy(chosen, rejected),
                "val_margin": sum(c - r for c, r in rows) / len(rows)}
    if objective == "orm":
        scores, labels = [s for s, _ in rows], [y for _, y in rows]
        metrics = {"val_accuracy": sum((s > 0) == bool(y) for s, y in rows) / len(rows)}
        if 0 < sum(labels) < len(labels):
            metrics["val_auc"] = roc_auc(scores, labels)
        return metrics
    return {"val_accuracy": sum(p == y for p, y in rows) / len(rows)}


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
