"""OpTune (raylib.scale.optune) on the tiny model: hooks, the learned optimizer's first update, and that training it
lowers the reference solutions' NLL on a small learnable task."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

FEEDBACK = "Your answer is incorrect."


def _model(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, AutoTokenizer.from_pretrained(tiny_model)


def _task(i: int) -> tuple[list[dict], str, str]:
    """(chat, a wrong answer, the right one): the rule is always `return a + b`."""
    return ([{"role": "user", "content": f"Write add_{i}(a, b)."}], f"def add_{i}(a, b):\n    return a - b\n",
            f"def add_{i}(a, b):\n    return a + b\n")


def test_the_chosen_layers_are_the_last_layers_query_and_value_projections(tiny_model):
    from raylib.scale.optune import OpTuneSettings, target_layers

    model, _ = _model(tiny_model)
    layers = target_layers(model, OpTuneSettings(last_layers=1))
    last = model.config.num_hidden_layers - 1
    assert sorted(layers) == [f"model.layers.{last}.self_attn.q_proj", f"model.layers.{last}.self_attn.v_proj"]
    with pytest.raises(ValueError, match="no linear layers named"):
        target_layers(model, OpTuneSettings(projections=["c_attn"]))


def test_the_first_update_is_exactly_zero_so_generation_equals_the_base_models(tiny_model):
    import torch

    from raylib.scale.optune import (
        LearnedOptimizer,
        OpTuneSettings,
        encode_failure,
        failure_update,
        target_layers,
        with_update,
    )

    model, tokenizer = _model(tiny_model)
    layers = target_layers(model, OpTuneSettings())
    optimizer = LearnedOptimizer(layers, OpTuneSettings()).eval()
    chat, wrong, _ = _task(0)
    ids, labels = encode_failure(tokenizer, chat, wrong, FEEDBACK)
    update, nll = failure_update(model, layers, optimizer, torch.tensor([ids]), torch.tensor([labels]))
    assert nll > 0
    assert set(update) == set(layers) and all(float(d.detach().abs().max()) == 0.0 for d in update.values())
    text = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    prompt = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    base = model.generate(prompt, max_new_tokens=10, do_sample=False)
    with with_update(layers, update):
        assert torch.equal(model.generate(prompt, max_new_tokens=10, do_sample=False), base)
    base_logits = model(prompt).logits
    with with_update(layers, {name: torch.full_like(d, 0.05) for name, d in update.items()}):
        assert not torch.allclose(model(prompt).logits, base_logits)  # a non-zero update reaches the layers
    assert torch.equal(model(prompt).logits, base_logits)  # and is gone after the block


def test_training_the_learned_optimizer_lowers_the_reference_nll(tiny_model):
    import torch

    from raylib.scale.optune import (
        LearnedOptimizer,
        OpTuneSettings,
        encode_failure,
        encode_reference,
        reference_loss,
        target_layers,
    )

    model, tokenizer = _model(tiny_model)
    settings = OpTuneSettings(step_size=1e-2)
    layers = target_layers(model, settings)
    learned = LearnedOptimizer(layers, settings)

    def example(i):
        chat, wrong, right = _task(i)
        return encode_failure(tokenizer, chat, wrong, FEEDBACK), encode_reference(tokenizer, chat, right)

    train, held_out = [example(i) for i in range(6)], [example(9)]

    def mean_loss(rows):
        learned.eval()
        return sum(float(reference_loss(model, layers, learned, f, r).detach()) for f, r in rows) / len(rows)

    before = mean_loss(held_out)
    adam = torch.optim.Adam(learned.parameters(), lr=3e-3)
    torch.manual_seed(0)
    for _ in range(8):
        learned.train()
        for failure, reference in train:
            reference_loss(model, layers, learned, failure, reference).backward()
            adam.step()
            adam.zero_grad()
    assert all(p.grad is None for p in model.parameters())  # the model itself never learns
    after = mean_loss(held_out)
    assert after < before - 0.05, (before, after)
