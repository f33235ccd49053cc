"""ReflectionCoder's reflection sequences as token ids: the format, the loss masks, and dynamic block masking.

    from raylib.train.data.reflection import add_reflection_tokens, distillation_attention_mask, encode_reflection, mask_rate
    add_reflection_tokens(tokenizer)                          # once; then resize the model's embeddings to len(tokenizer)
    example = encode_reflection(tokenizer, messages, max_len=2048)
    attention = distillation_attention_mask(example["input_ids"], ids, mask_rate(step, max_steps), "block", rng=rng)

A sample is a list of messages, each `{"role": "user" | "assistant", "content": [{"type": "text" | "code" |
"execution", "content": str}, ...]}`. Rendered as ReflectionCoder does:
`<|user|><|text|>...<|endofblock|><|endofmessage|><|assistant|><|code|>...<|endofblock|><|execution|>...` with BOS
first and EOS last. The usual sample is [user: the task, assistant: the reflection sequence (code -> execution ->
text -> code ...), user: "now write it in one go", assistant: the final code].

Labels (what the loss is taken on): every token but BOS, the user messages and the execution blocks (the sandbox
wrote those, not the model). Self-distillation runs the sequence twice: the teacher sees everything; the student
sees the same ids with an attention mask that hides the first instruction and part of the reflection sequence
(`distillation_attention_mask`), and learns the final answer (`distillation_labels`) against the teacher's
distribution (`distillation_kl`). The hidden part grows with training progress (`mask_rate` = step / max_steps):
whole blocks at random or in order, blocks by type in a configured order (`block_order`), or tokens.

Everything here is a plain function over lists of token ids (the KL loss over tensors); no model, no Ray.
"""

from __future__ import annotations

import math
import random
from typing import Literal, Sequence

__all__ = [
    "BLOCK_TYPES", "MASK_STRATEGIES", "REFLECTION_TOKENS", "add_reflection_tokens", "distillation_attention_mask",
    "distillation_kl", "encode_reflection", "mask_rate", "render_reflection", "special_token_ids", "split_blocks",
]

USER, ASSISTANT = "<|user|>", "<|assistant|>"
BLOCK_TOKENS = {"text": "<|text|>", "code": "<|code|>", "execution": "<|execution|>"}
END_OF_BLOCK, END_OF_MESSAGE = "<|endofblock|>", "<|endofmessage|>"
REFLECTION_TOKENS = (USER, ASSISTANT, *BLOCK_TOKENS.values(), END_OF_BLOCK, END_OF_MESSAGE)
BLOCK_TYPES = tuple(BLOCK_TOKENS)
MASK_STRATEGIES = ("all", "random_block", "sequential_block", "block", "random_token", "sequential_token")
IGNORE = -100  # label of a token the loss skips


def add_reflection_tokens(tokenizer) -> int:
    """Add the seven reflection special tokens to `tokenizer`; returns how many were new (resize the model's
    embeddings to `len(tokenizer)` when it is more than 0)."""
    return tokenizer.add_tokens(list(REFLECTION_TOKENS), special_tokens=True)


def render_reflection(messages: Sequence[dict]) -> str:
    """The text of a reflection sample (without BOS/EOS). Raises ValueError naming the first malformed message."""
    text = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise ValueError(f"message {i}: role must be 'user' or 'assistant', got {role!r}")
        blocks = message.get("content")
        if not isinstance(blocks, list) or not blocks:
            raise ValueError(f"message {i}: content must be a non-empty list of blocks")
        text.append(USER if role == "user" else ASSISTANT)
        for j, block in enumerate(blocks):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind not in BLOCK_TOKENS or not isinstance(block.get("content"), str):
                raise ValueError(f"message {i} block {j}: expected {{'type': one of {list(BLOCK_TOKENS)}, 'content': str}}")
            text.append(f"{BLOCK_TOKENS[kind]}{block['content']}{END_OF_BLOCK}")
        text.append(END_OF_MESSAGE)
    return "".join(text)


def special_token_ids(tokenizer) -> dict[str, int]:
    """{token: id} of the reflection special tokens in `tokenizer`; ValueError when any is missing."""
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in REFLECTION_TOKENS}
    missing = [t for t, i in ids.items() if i is None or i == tokenizer.unk_token_id]
    if missing:
        raise ValueError(f"the tokenizer lacks {missing}: call add_reflection_tokens(tokenizer) first")
    return ids


def _ignore_spans(input_ids: list[int], labels: list[int], ids: dict[str, int]) -> list[int]:
    """`labels` with every user message (<|user|> .. <|endofmessage|>) and execution block (<|execution|> ..
    <|endofblock|>) set to IGNORE, both ends included."""
    ends = {ids[USER]: ids[END_OF_MESSAGE], ids[BLOCK_TOKENS["execution"]]: ids[END_OF_BLOCK]}
    labels = list(labels)
    i = 0
    while i < len(input_ids):
        end = ends.get(input_ids[i])
        if end is None:
            i += 1
            continue
        while i < len(input_ids) and input_ids[i] != end:
            labels[i] = IGNORE
            i += 1
        if i < len(input_ids):
            labels[i] = IGNORE
            i += 1
    return labels


def encode_reflection(tokenizer, messages: Sequence[dict], max_len: int) -> dict[str, list[int]]:
    """Token ids and masks of one reflection sample.

    Returns:
        input_ids: BOS + rendered messages + EOS.
        labels: input_ids with BOS, user messages and execution blocks set to -100.
        distillation_mask: 1 from the last user message on (the part both passes share), 0 before.
        distillation_labels: the final assistant message's labels (from its <|assistant|> token), -100 elsewhere.

    Raises:
        ValueError: malformed messages, missing special tokens, no user or assistant message, or longer than max_len.
    """
    ids = special_token_ids(tokenizer)
    body = tokenizer(render_reflection(messages), add_special_tokens=False)["input_ids"]
    if len(body) + 2 > max_len:
        raise ValueError(f"the sample has {len(body) + 2} tokens, more than max_len {max_len}")
    input_ids = [tokenizer.bos_token_id, *body, tokenizer.eos_token_id]
    labels = _ignore_spans(input_ids, [IGNORE, *body, tokenizer.eos_token_id], ids)
    users = [i for i, t in enumerate(input_ids) if t == ids[USER]]
    assistants = [i for i, t in enumerate(input_ids) if t == ids[ASSISTANT]]
    if not users or not assistants or assistants[-1] < users[-1]:
        raise ValueError("a reflection sample needs a user message followed by an assistant message")
    last_user, last_assistant = users[-1], assistants[-1]
    distillation_labels = [IGNORE] * last_assistant + labels[last_assistant:]
    return {"input_ids": input_ids, "labels": labels,
            "distillation_mask": [0] * last_user + [1] * (len(input_ids) - last_user),
            "distillation_labels": distillation_labels}


def split_blocks(span: Sequence[int], ids: dict[str, int]) -> list[tuple[str, int, int]]:
    """The blocks of a message body as (type, start, end) half-open offsets into `span`, each from its block token
    through its <|endofblock|>; tokens outside any block are not listed."""
    begin = {ids[token]: kind for kind, token in BLOCK_TOKENS.items()}
    blocks, start, kind = [], None, ""
    for i, token in enumerate(span):
        if token in begin:
            start, kind = i, begin[token]
        elif token == ids[END_OF_BLOCK] and start is not None:
            blocks.append((kind, start, i + 1))
            start = None
    return blocks


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
