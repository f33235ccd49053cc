"""Training batches as tensors: padding, packed rows with block-diagonal masks, pairs, and each rank's share.

    from raylib.train.batching import collate_causal, collate_classification, collate_pairs, rank_batches
    plan = rank_batches(lengths, micro_batch_size=4, world_size=2, rank=0, grad_accum=2, epoch=0, seed=0)
    batch = collate_causal([examples[i] for i in plan[0]], pad_id)   # input_ids, labels, attention_mask(, position_ids)

Each rank must run the same number of optimizer steps (DeepSpeed's collectives would otherwise hang), so the
plan cuts the epoch to a whole number of global steps and deals micro-batches round-robin. torch is imported
inside the collate functions; the planning is plain Python.
"""

from __future__ import annotations

import random

from raylib.train.data import IGNORE
from raylib.train.data.sft import length_grouped_batches

__all__ = ["block_causal_mask", "collate_causal", "collate_classification", "collate_pairs", "rank_batches",
           "read_splits", "sequence_logits", "split_validation", "steps_per_epoch"]


def split_validation(examples: list[dict], fraction: float, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(train, validation): a `fraction` of the examples' groups (their `group` key, e.g. the task; each example
    its own group without one) held out whole, so a task's programs never sit on both sides. Deterministic."""
    if fraction <= 0:
        return examples, []
    groups = sorted({str(e.get("group", i)) for i, e in enumerate(examples)})
    random.Random(seed).shuffle(groups)
    held = set(groups[:max(1, round(len(groups) * fraction))]) if len(groups) > 1 else set()
    train = [e for i, e in enumerate(examples) if str(e.get("group", i)) not in held]
    validation = [e for i, e in enumerate(examples) if str(e.get("group", i)) in held]
    return train, validation


def read_splits(read, train: str, validation: str | None, fraction: float, seed: int = 0) -> tuple[list, list]:
    """(train, validation) examples, each file read by `read(path)`: the validation file when there is one, else
    `split_validation` of the training file (whole groups held out)."""
    examples = read(train)
    if validation:
        return examples, read(validation)
    return split_validation(examples, fraction, seed)


def steps_per_epoch(num_examples: int, micro_batch_size: int, world_size: int, grad_accum: int) -> int:
    """Optimizer steps in one epoch: whole global batches (micro × world × accumulation) only."""
    return num_examples // (micro_batch_size * world_size * grad_accum)


def rank_batches(lengths: list[int], micro_batch_size: int, world_size: int, rank: int, grad_accum: int,
                 epoch: int, seed: int, group_by_length: bool = True) -> list[list[int]]:
    """This rank's micro-batches (example indices) for one epoch, in order; the same plan on every rank.

    Batches are length-grouped (`raylib.train.data.sft.length_grouped_batches`) or plain shuffled, reshuffled per
    epoch, never short (a short last batch is dropped), cut to `steps_per_epoch × grad_accum × world_size` and dealt
    round-robin, so micro-batch j of every rank belongs to the same optimizer step.
    """
    epoch_seed = seed * 1000 + epoch
    if group_by_length:
        batches = length_grouped_batches(lengths, micro_batch_size, seed=epoch_seed)
    else:
        order = list(range(len(lengths)))
        random.Random(epoch_seed).shuffle(order)
        batches = [order[i:i + micro_batch_size] for i in range(0, len(order), micro_batch_size)]
    batches = [b for b in batches if len(b) == micro_batch_size]
    usable = len(batches) // (world_size * grad_accum) * world_size * grad_accum
    return batches[:usable][rank::world_size]


def block_causal_mask(seq_lens_per_row: list[list[int]], length: int, dtype):
    """Additive attention mask (batch, 1, length, length) for packed rows: each token sees the earlier tokens of
    its own example only; padding positions see themselves (so no row is fully masked)."""
    import torch

    masks = []
    for seq_lens in seq_lens_per_row:
        segment = torch.full((length,), -1, dtype=torch.long)
        start = 0
        for i, n in enumerate(seq_lens):
            segment[start:start + n] = i
            start += n
        allowed = torch.tril(torch.ones(length, length, dtype=torch.bool))
        allowed &= (segment[:, None] == segment[None, :]) & (segment[None, :] >= 0)
        allowed |= torch.eye(length, dtype=torch.bool)
        masks.append(allowed)
    allowed = torch.stack(masks)[:, None]
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)


def collate_causal(examples: list[dict], pad_id: int, dtype=None) -> dict:
    """Right-padded tensors for a causal LM: `input_ids` (padded with `pad_id`), `labels` (padded with -100) and
    `attention_mask` (1/0 per token). Packed rows (with `seq_lens`, from `pack_examples`) get their `position_ids`
    and a block-diagonal additive mask (`dtype`) instead; reflection examples (with `distillation_mask`) also get
    `distillation_labels` (padded with -100)."""
    import torch

    length = max(len(e["input_ids"]) for e in examples)

    def pad(key, value):
        return torch.tensor([e[key] + [value] * (length - len(e[key])) for e in examples], dtype=torch.long)

    batch = {"input_ids": pad("input_ids", pad_id), "labels": pad("labels", IGNORE)}
    if "seq_lens" in examples[0]:
        batch["position_ids"] = pad("position_ids", 0)
        batch["attention_mask"] = block_causal_mask([e["seq_lens"] for e in examples], length,
                                                    dtype or torch.float32)
    else:
        batch["attention_mask"] = torch.tensor([[1] * len(e["input_ids"]) + [0] * (length - len(e["input_ids"]))
                                                for e in examples], dtype=torch.long)
    if "distillation_mask" in examples[0]:
        batch["distillation_labels"] = pad("distillation_labels", IGNORE)
    return batch


def collate_classification(examples: list[dict], pad_id: int) -> dict:
    """Right-padded `input_ids` / `attention_mask` and a `labels` tensor (int class or 0/1 outcome)."""
    import torch

    length = max(len(e["input_ids"]) for e in examples)
    return {
        "input_ids": torch.tensor([e["input_ids"] + [pad_id] * (length - len(e["input_ids"])) for e in examples]),
        "attention_mask": torch.tensor([[1] * len(e["input_ids"]) + [0] * (length - len(e["input_ids"]))
                                        for e in examples]),
        "labels": torch.tensor([e["label"] for e in examples]),
    }


def sequence_logits(model, batch: dict):
    """The model's logits for a right-padded batch (`collate_classification`, `collate_pairs`): one row of class
    logits (or one score) per sequence."""
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def collate_pairs(examples: list[dict], pad_id: int) -> dict:
    """Chosen and rejected sequences of B pairs in one batch of 2B rows: rows [0, B) chosen, [B, 2B) rejected."""
    rows = [{"input_ids": e["chosen_ids"], "label": 1} for e in examples]
    rows += [{"input_ids": e["rejected_ids"], "label": 0} for e in examples]
    return collate_classification(rows, pad_id)
