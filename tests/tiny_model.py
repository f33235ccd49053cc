"""A tiny causal LM built in seconds, for tests that need a real model (no hub, no download).

    from tests.tiny_model import build_tiny_llama
    path = build_tiny_llama(tmp_dir)        # Llama architecture, 2 layers, BPE tokenizer trained on stdlib sources

The tokenizer is a byte-level BPE trained by `tokenizers` on a few standard-library modules; it has a ChatML chat
template (like SmolLM2's) so both prompt styles work. Weights are random (seeded): outputs are gibberish but
deterministic, which is what reproducibility, stop-sequence and plumbing tests need.
"""

from __future__ import annotations

import inspect
from pathlib import Path

CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
                 "'<|im_end|>' + '\n' }}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def build_tiny_llama(path: str | Path, vocab_size: int = 1024, seed: int = 0) -> Path:
    """Write a tiny Llama model + tokenizer as a Hugging Face safetensors directory at `path`; returns it."""
    import argparse
    import collections
    import json
    import textwrap

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = Path(path)
    corpus = [inspect.getsource(m) for m in (argparse, collections, json, textwrap)]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=64, max_position_embeddings=1024,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # larger logits than the default init: sampling at temperature 1 then differs per seed
        model.lm_head.weight.mul_(4.0)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path
