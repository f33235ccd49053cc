"""ReflectionCoder's sample format and loss masks (raylib.train.data.reflection) and its dynamic block masking and
distillation KL (raylib.train.objectives.reflection), on the session's tiny tokenizer (with the reflection tokens
added); expected spans are written out by hand."""

from __future__ import annotations

import math
import random

import pytest

from raylib.train.data import IGNORE
from raylib.train.data.reflection import REFLECTION_TOKENS, add_reflection_tokens, encode_reflection, render_reflection
from raylib.train.objectives.reflection import distillation_attention_mask, distillation_kl, mask_rate

MESSAGES = [
    {"role": "user", "content": [{"type": "text", "content": "Write add."}]},
    {"role": "assistant", "content": [{"type": "code", "content": "def add(a, b): return a - b"},
                                      {"type": "execution", "content": "AssertionError"},
                                      {"type": "text", "content": "It subtracts."},
                                      {"type": "code", "content": "def add(a, b): return a + b"}]},
    {"role": "user", "content": [{"type": "text", "content": "Now in one go."}]},
    {"role": "assistant", "content": [{"type": "code", "content": "def add(a, b):\n    return a + b"}]},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    assert add_reflection_tokens(tok) == len(REFLECTION_TOKENS)
    assert add_reflection_tokens(tok) == 0  # idempotent
    return tok


def text_of(tokenizer, ids) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False)


def test_samples_render_as_reflectioncoder_does():
    text = render_reflection(MESSAGES[:2])
    assert text == ("<|user|><|text|>Write add.<|endofblock|><|endofmessage|>"
                    "<|assistant|><|code|>def add(a, b): return a - b<|endofblock|>"
                    "<|execution|>AssertionError<|endofblock|>"
                    "<|text|>It subtracts.<|endofblock|><|code|>def add(a, b): return a + b<|endofblock|>"
                    "<|endofmessage|>")
    with pytest.raises(ValueError, match="message 1 block 0"):
        render_reflection([MESSAGES[0], {"role": "assistant", "content": [{"type": "image", "content": "x"}]}])
    with pytest.raises(ValueError, match="message 0: role"):
        render_reflection([{"role": "system", "content": [{"type": "text", "content": "x"}]}])


def test_loss_skips_user_messages_and_execution_blocks(tokenizer):
    example = encode_reflection(tokenizer, MESSAGES, max_len=512)
    ids, labels = example["input_ids"], example["labels"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id and labels[0] == IGNORE
    trained = text_of(tokenizer, [t for t, label in zip(ids, labels) if label != IGNORE])
    assert trained == ("<|assistant|><|code|>def add(a, b): return a - b<|endofblock|>"
                       "<|text|>It subtracts.<|endofblock|><|code|>def add(a, b): return a + b<|endofblock|>"
                       "<|endofmessage|><|assistant|><|code|>def add(a, b):\n    return a + b<|endofblock|>"
                       "<|endofmessage|>" + tokenizer.eos_token)
    assert all(label in (IGNORE, t) for t, label in zip(ids, labels))  # labels are the ids themselves, or ignored
    # distillation: the shared part starts at the last user message; the student learns the final answer only
    last_user = max(i for i, t in enumerate(ids) if t == tokenizer.convert_tokens_to_ids("<|user|>"))
    assert example["distillation_mask"] == [0] * last_user + [1] * (len(ids) - last_user)
    final = [t for t, label in zip(ids, example["distillation_labels"]) if label != IGNORE]
    assert text_of(tokenizer, final) == ("<|assistant|><|code|>def add(a, b):\n    return a + b<|endofblock|>"
                                         "<|endofmessage|>" + tokenizer.eos_token)


def test_bad_samples_are_clear_errors(tokenizer, tiny_model):
    from transformers import AutoTokenizer

    with pytest.raises(ValueError, match="more than max_len 20"):
        encode_reflection(tokenizer, MESSAGES, max_len=20)
    with pytest.raises(ValueError, match="call add_reflection_tokens"):
        encode_reflection(AutoTokenizer.from_pretrained(tiny_model), MESSAGES, max_len=512)
    with pytest.raises(ValueError, match="user message followed by an assistant"):
        encode_reflection(tokenizer, MESSAGES[:1], max_len=512)


def test_mask_rate_grows_with_training_progress():
    assert [mask_rate(step, 4) for step in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert mask_rate(0, 0) == 0.0


def visible_reflection(tokenizer, ids, attention) -> str:
    """What the student sees of the first assistant message (the reflection sequence)."""
    start = ids.index(tokenizer.convert_tokens_to_ids("<|assistant|>")) + 1
    end = start + ids[start:].index(tokenizer.convert_tokens_to_ids("<|endofmessage|>"))
    return text_of(tokenizer, [t for t, a in zip(ids[start:end], attention[start:end]) if a])


def test_block_masking_hides_block_types_in_the_configured_order(tokenizer):
    ids = encode_reflection(tokenizer, MESSAGES, max_len=512)["input_ids"]
    order = ("execution", "text", "code")
    early = distillation_attention_mask(ids, tokenizer, 0.1, "block", order)
    assert visible_reflection(tokenizer, ids, early) == ("<|code|>def add(a, b): return a - b<|endofblock|>"
                                                         "<|text|>It subtracts.<|endofblock|>"
                                                         "<|code|>def add(a, b): return a + b<|endofblock|>")
    middle = distillation_attention_mask(ids, tokenizer, 0.5, "block", order)
    assert visible_reflection(tokenizer, ids, middle) == ("<|code|>def add(a, b): return a - b<|endofblock|>"
                                                          "<|code|>def add(a, b): return a + b<|endofblock|>")
    late = distillation_attention_mask(ids, tokenizer, 0.9, "block", order)
    assert visible_reflection(tokenizer, ids, late) == ""
    # around the reflection sequence: the first instruction and the <|endofmessage|> are hidden, the rest is seen
    start = ids.index(tokenizer.convert_tokens_to_ids("<|assistant|>")) + 1
    end = start + ids[start:].index(tokenizer.convert_tokens_to_ids("<|endofmessage|>"))
    for attention in (early, middle, late):
        assert len(attention) == len(ids) and attention[:start] == [0] * start and attention[end] == 0
        assert attention[end + 1:] == [1] * (len(ids) - end - 1)
    other_order = distillation_attention_mask(ids, tokenizer, 0.1, "block", ("code", "text", "execution"))
    assert visible_reflection(tokenizer, ids, other_order) == ("<|execution|>AssertionError<|endofblock|><|text|>It "
                                                               "subtracts.<|endofblock|>")


def test_block_and_token_strategies_hide_the_share_they_should(tokenizer):
    ids = encode_reflection(tokenizer, MESSAGES, max_len=512)["input_ids"]
    start = ids.index(tokenizer.convert_tokens_to_ids("<|assistant|>")) + 1
    end = start + ids[start:].index(tokenizer.convert_tokens_to_ids("<|endofmessage|>"))
    body = end - start
    sequential = distillation_attention_mask(ids, tokenizer, 0.5, "sequential_block")  # 4 blocks: the first 2
    assert visible_reflection(tokenizer, ids, sequential) == ("<|text|>It subtracts.<|endofblock|>"
                                                              "<|code|>def add(a, b): return a + b<|endofblock|>")
    random_blocks = distillation_attention_mask(ids, tokenizer, 0.75, "random_block", rng=random.Random(1))
    seen = visible_reflection(tokenizer, ids, random_blocks)
    assert seen.count("<|endofblock|>") == 1 and seen.startswith("<|") and seen.endswith("<|endofblock|>")  # blocks
    assert random_blocks == distillation_attention_mask(ids, tokenizer, 0.75, "random_block", rng=random.Random(1))
    for strategy in ("random_token", "sequential_token"):
        attention = distillation_attention_mask(ids, tokenizer, 0.3, strategy, rng=random.Random(2))
        assert attention[start:end].count(0) == math.ceil(body * 0.3)
    sequential_tokens = distillation_attention_mask(ids, tokenizer, 0.3, "sequential_token")
    hidden = math.ceil(body * 0.3)
    assert sequential_tokens[start:end] == [0] * hidden + [1] * (body - hidden)
    assert distillation_attention_mask(ids, tokenizer, 0.0, "all")[start:end] == [0] * body
    with pytest.raises(ValueError, match="unknown mask strategy"):
        distillation_attention_mask(ids, tokenizer, 0.5, "half")
    with pytest.raises(ValueError, match="block_order must order"):
        distillation_attention_mask(ids, tokenizer, 0.5, "block", ("code", "text"))


def test_distillation_kl_matches_the_formula_on_answer_positions_only():
    import torch

    # position 0: teacher p = (1/2, 1/2), student q = (1/4, 3/4): KL(p||q) = 1/2 ln 2 + 1/2 ln(2/3); position 1 ignored
    teacher = torch.tensor([[[0.0, 0.0], [5.0, -5.0]]])
    student = torch.log(torch.tensor([[[0.25, 0.75], [0.5, 0.5]]])).requires_grad_()
    labels = torch.tensor([[1, IGNORE]])
    loss = distillation_kl(teacher, student, labels)
    assert loss.item() == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), abs=1e-6)
    loss.backward()
    assert student.grad[0, 1].abs().sum() == 0  # the ignored position gets no gradient
    assert distillation_kl(teacher, teacher.clone(), labels).item() == pytest.approx(0.0, abs=1e-7)
    assert distillation_kl(teacher, student, torch.full((1, 2), IGNORE)).item() == 0.0
