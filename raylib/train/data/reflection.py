"""ReflectionCoder's reflection sequences as token ids: the format, its special tokens and the loss masks.

    from raylib.train.data.reflection import add_reflection_tokens, encode_reflection, special_token_ids
    add_reflection_tokens(tokenizer)                     # once; then resize the model's embeddings to len(tokenizer)
    example = encode_reflection(tokenizer, messages, 2048)  # input_ids, labels, distillation_mask, distillation_labels
    ids = special_token_ids(tokenizer)                   # {"<|user|>": id, ...}; ValueError when one is missing

A sample is a list of messages, each `{"role": "user" | "assistant", "content": [{"type": "text" | "code" |
"execution", "content": str}, ...]}`. Rendered as ReflectionCoder does:
`<|user|><|text|>...<|endofblock|><|endofmessage|><|assistant|><|code|>...<|endofblock|><|execution|>...` with BOS
first and EOS last. The usual sample is [user: the task, assistant: the reflection sequence (code -> execution ->
text -> code ...), user: "now write it in one go", assistant: the final code].

Labels (what the loss is taken on): every token but BOS, the user messages and the execution blocks (the sandbox
wrote those, not the model). `distillation_labels` mark the final answer, which self-distillation
(`raylib.train.objectives.reflection`: dynamic block masking, the KL term) trains the student on.

Everything here is a plain function over lists of token ids; no model, no Ray.
"""

from __future__ import annotations

from typing import Sequence

from raylib.train.data import IGNORE

__all__ = ["BLOCK_TYPES", "REFLECTION_TOKENS", "add_reflection_tokens", "encode_reflection", "render_reflection",
           "special_token_ids", "split_blocks"]

USER, ASSISTANT = "<|user|>", "<|assistant|>"
BLOCK_TOKENS = {"text": "<|text|>", "code": "<|code|>", "execution": "<|execution|>"}
END_OF_BLOCK, END_OF_MESSAGE = "<|endofblock|>", "<|endofmessage|>"
REFLECTION_TOKENS = (USER, ASSISTANT, *BLOCK_TOKENS.values(), END_OF_BLOCK, END_OF_MESSAGE)
BLOCK_TYPES = tuple(BLOCK_TOKENS)


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
                raise ValueError(f"message {i} block {j}: expected {{'type': one of {list(BLOCK_TOKENS)}, "
                                 "'content': str}")
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
