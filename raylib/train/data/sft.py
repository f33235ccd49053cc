"""SFT examples as token ids: loss on the assistant part only, length-grouped batches, packing (pure functions).

    from raylib.train.data.sft import length_grouped_batches, pack_examples, read_sft_file
    examples = read_sft_file("runs/data/sft.jsonl", tokenizer, max_len=2048, fmt="auto")    # DataError: file, line
    batches = length_grouped_batches([len(e["input_ids"]) for e in examples], batch_size=8, seed=0)
    rows = pack_examples(examples, max_len=2048)          # several examples per row, positions restarting per example

Formats (one JSON object per line; what jobs/build_datasets.py writes to sft.jsonl fits both):
- chat: `{"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}`, rendered with the tokenizer's
  chat template; the loss covers each assistant turn as the template renders it (its end-of-turn token included).
- prompt/completion: `{"prompt": str, "completion": str}`; the loss covers the completion and EOS.
- reflection: ReflectionCoder samples (`raylib.train.data.reflection`), `{"messages": [{"role", "content": [blocks]}]}`.

An example is `{"input_ids": [...], "labels": [...]}` with -100 (`raylib.train.data.IGNORE`) where the loss is not
taken. No torch, no Ray.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

from raylib.files import DataError, read_records
from raylib.train.data import IGNORE

__all__ = ["encode_chat", "encode_prompt_completion", "length_grouped_batches", "pack_examples", "read_sft_file"]


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_chat(tokenizer, messages: list[dict], max_len: int) -> dict[str, list[int]]:
    """Token ids of a chat through the tokenizer's template, with labels on the assistant turns only.

    Each assistant turn's tokens are found by rendering the conversation up to it (with the generation prompt) and
    through it; a template whose renderings are not prefixes of each other cannot be masked this way (ValueError).
    """
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
            and isinstance(m.get("content"), str) for m in messages):
        raise ValueError("messages must be a non-empty list of {'role': 'system'|'user'|'assistant', 'content': str}")
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError("the chat has no assistant message: nothing to learn")
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat template: use prompt/completion examples")

    def render(upto: int, generation_prompt: bool) -> list[int]:
        return _ids(tokenizer, tokenizer.apply_chat_template(messages[:upto], tokenize=False,
                                                              add_generation_prompt=generation_prompt))

    input_ids = render(len(messages), False)
    labels = [IGNORE] * len(input_ids)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start, end = len(render(i, True)), len(render(i + 1, False))
        if input_ids[:end] != render(i + 1, False) or not start < end:
            raise ValueError("the chat template does not render turns as prefixes of the whole chat; "
                             "use prompt/completion examples")
        labels[start:end] = input_ids[start:end]
    if len(input_ids) > max_len:
        raise ValueError(f"the example has {len(input_ids)} tokens, more than max_len {max_len}")
    return {"input_ids": input_ids, "labels": labels}


def encode_prompt_completion(tokenizer, prompt: str, completion: str, max_len: int) -> dict[str, list[int]]:
    """BOS (if the tokenizer uses one) + prompt + completion + EOS; labels on completion and EOS."""
    if not isinstance(prompt, str) or not isinstance(completion, str) or not completion:
        raise ValueError("prompt must be a string and completion a non-empty string")
    prompt_ids = list(tokenizer(prompt)["input_ids"]) if prompt else []
    completion_ids = _ids(tokenizer, completion) + [tokenizer.eos_token_id]
    input_ids = prompt_ids + completion_ids
    if len(input_ids) > max_len:
        raise ValueError(f"the example has {len(input_ids)} tokens, more than max_len {max_len}")
    return {"input_ids": input_ids, "labels": [IGNORE] * len(prompt_ids) + completion_ids}


def read_sft_file(path: str | Path, tokenizer, max_len: int,
                  fmt: Literal["auto", "chat", "prompt_completion", "reflection"] = "auto") -> list[dict]:
    """Encode every line of an SFT JSONL file. Every problem - a missing field, a malformed chat, an example longer
    than `max_len`, an empty file - is a DataError naming the file and line, raised before any training starts."""
    from raylib.train.data.reflection import encode_reflection

    examples = []
    for line, row in read_records(path):
        kind = fmt
        if kind == "auto":
            messages = row.get("messages")
            if isinstance(messages, list) and messages and isinstance(messages[0], dict) \
                    and isinstance(messages[0].get("content"), list):
                kind = "reflection"
            elif messages is not None:
                kind = "chat"
            elif "prompt" in row and "completion" in row:
                kind = "prompt_completion"
            else:
                raise DataError(path, line, "expected 'messages' or 'prompt' + 'completion', got fields "
                                            f"{sorted(row)[:10]}")
        try:
            if kind == "chat":
                example = encode_chat(tokenizer, row.get("messages"), max_len)
            elif kind == "reflection":
                example = encode_reflection(tokenizer, row.get("messages") or [], max_len)
            else:
                if "prompt" not in row or "completion" not in row:
                    raise ValueError(f"expected 'prompt' and 'completion', got fields {sorted(row)[:10]}")
                example = encode_prompt_completion(tokenizer, row["prompt"], row["completion"], max_len)
        except ValueError as exc:
            raise DataError(path, line, str(exc)) from None
        if all(label == IGNORE for label in example["labels"]):
            raise DataError(path, line, "nothing to learn: every token is masked from the loss")
        examples.append(example)
    if not examples:
        raise DataError(path, 0, "no examples in the file")
    return examples


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int = 0, mega: int = 50) -> list[list[int]]:
    """Batches of example indices with similar lengths (less padding), in a random order: shuffle, cut into
    mega-batches of `mega` batches, sort each by length (longest first), cut into batches, shuffle the batches.
    Every index appears exactly once; the last batch may be short."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch_size * mega
    batches = []
    for i in range(0, len(order), span):
        group = sorted(order[i:i + span], key=lambda j: -lengths[j])
        batches.extend(group[k:k + batch_size] for k in range(0, len(group), batch_size))
    rng.shuffle(batches)
    return batches


def pack_examples(examples: list[dict], max_len: int) -> list[dict]:
    """First-fit-decreasing packing of examples into rows of at most `max_len` tokens.

    Each row: input_ids and labels concatenated, `position_ids` restarting at 0 for each example, and `seq_lens`
    (the examples' lengths, in order), from which the trainer builds a block-diagonal causal mask so examples do not
    attend to each other. Each example's first label becomes -100 (a causal LM never predicts an example's first
    token), so nothing is predicted across a boundary. Raises ValueError for an example longer than max_len.
    """
    rows: list[dict] = []
    for example in sorted(examples, key=lambda e: -len(e["input_ids"])):
        n = len(example["input_ids"])
        if n > max_len:
            raise ValueError(f"an example has {n} tokens, more than max_len {max_len}")
        row = next((r for r in rows if len(r["input_ids"]) + n <= max_len), None)
        if row is None:
            row = {"input_ids": [], "labels": [], "position_ids": [], "seq_lens": []}
            rows.append(row)
        row["input_ids"] += example["input_ids"]
        row["labels"] += [IGNORE] + example["labels"][1:]  # a causal LM never predicts token 0: nor across a boundary
        row["position_ids"] += list(range(n))
        row["seq_lens"].append(n)
    return rows
