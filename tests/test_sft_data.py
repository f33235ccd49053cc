"""raylib.train.data.sft: assistant-only labels (chat and prompt/completion), file errors with line numbers,
length-grouped batches and packing, on the session's tiny tokenizer (ChatML template); expected spans written out by
hand."""

from __future__ import annotations

import json

import pytest

from raylib.files import DataError
from raylib.train.data import IGNORE
from raylib.train.data.sft import (
    encode_chat,
    encode_prompt_completion,
    length_grouped_batches,
    pack_examples,
    read_sft_file,
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def trained_text(tokenizer, example) -> str:
    return tokenizer.decode([t for t, label in zip(example["input_ids"], example["labels"]) if label != IGNORE],
                            skip_special_tokens=False)


def test_chat_loss_covers_each_assistant_turn_with_its_end_of_turn(tokenizer):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Add?"},
                {"role": "assistant", "content": "def add(a, b): return a + b"},
                {"role": "user", "content": "Subtract?"},
                {"role": "assistant", "content": "def sub(a, b): return a - b"}]
    example = encode_chat(tokenizer, messages, max_len=512)
    assert trained_text(tokenizer, example) == ("def add(a, b): return a + b<|im_end|>\n"
                                                "def sub(a, b): return a - b<|im_end|>\n")
    whole = tokenizer.decode(example["input_ids"], skip_special_tokens=False)
    assert whole.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nAdd?<|im_end|>\n"
                            "<|im_start|>assistant\n")
    assert all(label in (IGNORE, t) for t, label in zip(example["input_ids"], example["labels"]))
    with pytest.raises(ValueError, match="no assistant message"):
        encode_chat(tokenizer, messages[:2], max_len=512)
    with pytest.raises(ValueError, match="more than max_len 10"):
        encode_chat(tokenizer, messages, max_len=10)


def test_prompt_completion_loss_covers_the_completion_and_eos(tokenizer):
    example = encode_prompt_completion(tokenizer, "def add(a, b):\n", "    return a + b\n", max_len=512)
    assert trained_text(tokenizer, example) == "    return a + b\n" + tokenizer.eos_token
    assert example["input_ids"][-1] == tokenizer.eos_token_id
    with pytest.raises(ValueError, match="non-empty string"):
        encode_prompt_completion(tokenizer, "x", "", max_len=512)


def test_sft_files_are_read_in_every_format_and_bad_lines_name_file_and_line(tokenizer, tmp_path):
    from raylib.train.data.reflection import add_reflection_tokens

    add_reflection_tokens(tokenizer)
    rows = [{"prompt": "def f():\n", "completion": "    return 1\n"},
            {"messages": [{"role": "user", "content": "f?"}, {"role": "assistant", "content": "def f(): return 1"}]},
            {"messages": [{"role": "user", "content": [{"type": "text", "content": "f?"}]},
                          {"role": "assistant", "content": [{"type": "code", "content": "def f(): return 1"}]}]}]
    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    examples = read_sft_file(path, tokenizer, max_len=256)
    ends = ("    return 1\n" + tokenizer.eos_token, "def f(): return 1<|im_end|>\n", tokenizer.eos_token)
    assert [trained_text(tokenizer, e).endswith(end) for e, end in zip(examples, ends)] == [True] * 3
    bad = {"a missing field": ({"prompt": "x"}, "expected 'messages' or 'prompt' \\+ 'completion'"),
           "a malformed chat": ({"messages": [{"role": "robot", "content": "x"}]}, "messages must be a non-empty list"),
           "a sequence over the limit": ({"prompt": "x " * 300, "completion": "y"}, "more than max_len 256")}
    for what, (row, message) in bad.items():
        path.write_text(json.dumps(rows[0]) + "\n" + json.dumps(row) + "\n")
        with pytest.raises(DataError, match=message) as err:
            read_sft_file(path, tokenizer, max_len=256)
        assert (err.value.path, err.value.line) == (str(path), 2), what
    path.write_text("")
    with pytest.raises(DataError, match="no examples"):
        read_sft_file(path, tokenizer, max_len=256)


def test_length_grouped_batches_cover_every_index_once_with_similar_lengths():
    lengths = [5, 100, 7, 98, 6, 99, 8, 97]
    batches = length_grouped_batches(lengths, batch_size=2, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(8))
    assert all(abs(lengths[b[0]] - lengths[b[-1]]) <= 3 for b in batches)  # short with short, long with long
    assert batches == length_grouped_batches(lengths, batch_size=2, seed=3)
    assert length_grouped_batches(lengths, batch_size=3, seed=0)[-1] != []
    assert sum(map(len, length_grouped_batches(lengths, 3))) == 8


def test_packing_fills_rows_restarts_positions_and_predicts_nothing_across_examples():
    a = {"input_ids": [1, 2, 3, 4, 5, 6], "labels": [IGNORE, IGNORE, 3, 4, 5, 6]}
    b = {"input_ids": [7, 8, 9], "labels": [7, 8, 9]}
    c = {"input_ids": [10, 11, 12, 13], "labels": [IGNORE, 11, 12, 13]}
    rows = pack_examples([b, a, c], max_len=10)
    # first fit, longest first: a (6) then c (4) fill row 1; b (3) opens row 2
    assert [r["seq_lens"] for r in rows] == [[6, 4], [3]]
    assert rows[0]["input_ids"] == [1, 2, 3, 4, 5, 6, 10, 11, 12, 13]
    assert rows[0]["position_ids"] == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3]
    assert rows[0]["labels"] == [IGNORE, IGNORE, 3, 4, 5, 6, IGNORE, 11, 12, 13]
    assert rows[1]["labels"] == [IGNORE, 8, 9]  # token 0 is never a target
    with pytest.raises(ValueError, match="more than max_len 5"):
        pack_examples([a], max_len=5)
