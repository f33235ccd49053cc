"""ReflectionCoder's self-distillation on top of the causal LM objective, with dynamic block masking.

    from raylib.train.objectives.reflection import distillation_attention_mask, distillation_kl, mask_rate, Reflection
    attention = distillation_attention_mask(example["input_ids"], ids, mask_rate(step, max_steps), "block", rng=rng)
    kl = distillation_kl(teacher_logits, student_logits, distillation_labels)   # KL(teacher || student) on the answer
    objective = Reflection(tokenizer, dtype, distillation)   # tokenizer with reflection tokens; DistillationSettings
    loss, tokens = objective.loss(engine, examples, step=step, total_steps=total, rng=rng)  # lm + weight * KL

The sequence runs twice: the teacher sees everything (and gives the causal LM loss); the student sees the same ids
with an attention mask that hides the first instruction and part of the reflection sequence
(`distillation_attention_mask`), and learns the final answer (`distillation_labels` of
`raylib.train.data.reflection.encode_reflection`) against the teacher's distribution (`distillation_kl`). The hidden
part grows with training progress (`mask_rate` = step / max_steps): whole blocks at random or in order, blocks by type
in a configured order (`block_order`), or tokens. Validation is the causal LM's loss. Masks are plain functions over
lists of token ids; torch is imported inside the functions.
"""

from __future__ import annotations

import math
import random
from typing import Literal, Sequence

from raylib.train.data import IGNORE
from raylib.train.data.reflection import ASSISTANT, BLOCK_TYPES, END_OF_MESSAGE, special_token_ids, split_blocks
from raylib.train.objectives.causal_lm import CausalLM, num_tokens

__all__ = ["MASK_STRATEGIES", "Reflection", "distillation_attention_mask", "distillation_kl", "mask_rate"]

MASK_STRATEGIES = ("all", "random_block", "sequential_block", "block", "random_token", "sequential_token")


def mask_rate(step: int, max_steps: int) -> float:
    """How much of the reflection sequence the student does not see: grows linearly with training progress, from
    1/max_steps at the first step to 1 at the last (0 when there are no steps)."""
    return 0.0 if max_steps <= 0 else min(1.0, (step + 1) / max_steps)


def _masked_positions(span: Sequence[int], rate: float, strategy: str, ids: dict[str, int], block_order: Sequence[str],
                      rng: random.Random) -> set[int]:
    """Offsets into `span` (the reflection sequence) that the student must not attend to."""
    if strategy == "all":
        return set(range(len(span)))
    if strategy in ("random_token", "sequential_token"):
        count = math.ceil(len(span) * rate)
        return set(rng.sample(range(len(span)), count) if strategy == "random_token" else range(count))
    blocks = split_blocks(span, ids)
    if strategy == "block":  # block types in order: the first always, the second from 1/3, the third from 2/3
        hidden_types = set(block_order[:1 + (rate >= 1 / 3) + (rate >= 2 / 3)])
        chosen = [b for b in blocks if b[0] in hidden_types]
    else:
        count = math.ceil(len(blocks) * rate)
        chosen = rng.sample(blocks, count) if strategy == "random_block" else blocks[:count]
    return {i for _, start, end in chosen for i in range(start, end)}


def distillation_attention_mask(input_ids: Sequence[int], tokenizer_or_ids, rate: float,
                                strategy: Literal["all", "random_block", "sequential_block", "block", "random_token",
                                                  "sequential_token"] = "block",
                                block_order: Sequence[str] = ("execution", "text", "code"),
                                rng: random.Random | None = None) -> list[int]:
    """The student's attention mask for one encoded sample: 0 for everything up to the first assistant message
    (the first instruction), `strategy`'s share `rate` of the first assistant message's body (the reflection
    sequence), 0 for its <|endofmessage|>, 1 from there on (the one-off instruction and the final answer).

    `tokenizer_or_ids`: the tokenizer (with the reflection tokens) or its {token: id} for them.
    """
    if strategy not in MASK_STRATEGIES:
        raise ValueError(f"unknown mask strategy {strategy!r}; one of {MASK_STRATEGIES}")
    if sorted(block_order) != sorted(BLOCK_TYPES):
        raise ValueError(f"block_order must order {BLOCK_TYPES}, got {tuple(block_order)}")
    ids = tokenizer_or_ids if isinstance(tokenizer_or_ids, dict) else special_token_ids(tokenizer_or_ids)
    input_ids = list(input_ids)
    start = input_ids.index(ids[ASSISTANT]) + 1
    end = start + input_ids[start:].index(ids[END_OF_MESSAGE])
    hidden = _masked_positions(input_ids[start:end], rate, strategy, ids, block_order, rng or random.Random(0))
    body = [0 if i in hidden else 1 for i in range(end - start)]
    return [0] * start + body + [0] + [1] * (len(input_ids) - end - 1)


def distillation_kl(teacher_logits, student_logits, distillation_labels):
    """KL(teacher || student) over the final answer's positions (labels != -100), averaged over those positions;
    the teacher is not trained through it. Tensors: logits (batch, seq, vocab), labels (batch, seq)."""
    import torch.nn.functional as F

    keep = distillation_labels.ne(IGNORE)
    teacher = teacher_logits[keep].detach()
    student = student_logits[keep]
    if student.numel() == 0:
        return student_logits.sum() * 0.0
    return F.kl_div(F.log_softmax(student, dim=-1), F.softmax(teacher, dim=-1), reduction="batchmean")


class Reflection(CausalLM):
    """The causal LM loss plus `distillation.weight` times the student's KL from the teacher on the final answer.

    `distillation`: `raylib.train.settings.DistillationSettings` (weight, strategy, block_order)."""

    def __init__(self, tokenizer, dtype=None, distillation=None):
        if distillation is None:
            raise ValueError("the reflection objective needs its distillation settings")
        super().__init__(tokenizer, dtype)
        self.distillation = distillation
        self.special_ids = special_token_ids(tokenizer)

    def loss(self, model, examples: list[dict], *, step: int = 0, total_steps: int = 1,
             rng: random.Random | None = None):
        import torch

        distill = self.distillation
        batch = self.collate(examples)
        out = self.forward(model, batch)
        rate = mask_rate(step, total_steps)
        length = batch["input_ids"].shape[1]
        student_mask = torch.tensor([
            distillation_attention_mask(e["input_ids"], self.special_ids, rate, distill.strategy,
                                        distill.block_order, rng) + [0] * (length - len(e["input_ids"]))
            for e in examples])
        student = model(input_ids=batch["input_ids"], attention_mask=student_mask)
        # logits at t predict token t+1: compare the two where the next token is part of the final answer
        targets = torch.cat([batch["distillation_labels"][:, 1:],
                             torch.full_like(batch["distillation_labels"][:, :1], IGNORE)], dim=1)
        return out.loss + distill.weight * distillation_kl(out.logits, student.logits, targets), num_tokens(examples)
