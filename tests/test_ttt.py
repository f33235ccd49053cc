"""Test-time training (raylib.scale.ttt) on the tiny model: a real LoRA step per failure, per-problem adapters."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "user", "content": "Write add(a, b)."}]
ANSWER = "def add(a, b):\n    return a - b\n"
FEEDBACK = "Your answer is incorrect."


@pytest.fixture(scope="module")
def trainer(tiny_model):
    from raylib.generate.engines.base import EngineConfig
    from raylib.scale.ttt import TestTimeTrainer, TTTSettings

    return TestTimeTrainer(EngineConfig(backend="hf", model=tiny_model, max_model_len=512), TTTSettings(lr=1e-3))


def _greedy(generate, task_id=None):
    from raylib.generate.engines.base import GenerationRequest, SamplingParams

    request = GenerationRequest(messages=MESSAGES, params=SamplingParams(max_tokens=12), key="k")
    [result] = generate(task_id, [request]) if task_id else generate([request])
    return result.outputs[0].text


def test_one_step_lowers_the_feedback_turns_nll(trainer):
    before = trainer.feedback_nll("p-step", MESSAGES, ANSWER, FEEDBACK)
    loss = trainer.step("p-step", 0, MESSAGES, ANSWER, FEEDBACK)
    after = trainer.feedback_nll("p-step", MESSAGES, ANSWER, FEEDBACK)
    assert loss == pytest.approx(before, rel=0.05)  # the step's own loss (dropout on) is the same quantity
    assert after < before


def test_each_problem_starts_from_the_base_weights_and_keeps_its_own_adapter(trainer, tiny_model):
    from raylib.generate.engines.base import EngineConfig
    from raylib.generate.engines.hf import HFEngine

    for attempt in range(3):
        trainer.step("p-first", attempt, MESSAGES, ANSWER, FEEDBACK)
    trained = trainer.adapter_norm("p-first")
    assert trained > 0
    assert trainer.adapter_norm("p-second") == 0.0  # a fresh adapter: B is zero, the model is the base model
    base = HFEngine(EngineConfig(backend="hf", model=tiny_model, max_model_len=512))
    assert _greedy(trainer.generate, "p-second") == _greedy(base.generate)
    assert trainer.adapter_norm("p-first") == pytest.approx(trained)  # switching back restores the first problem's


def test_replaying_the_recorded_steps_rebuilds_the_same_adapter(trainer):
    steps = [(a, MESSAGES, ANSWER, FEEDBACK, "") for a in range(2)]
    for step in steps:
        trainer.step("p-replay", *step)
    norm, nll = trainer.adapter_norm("p-replay"), trainer.feedback_nll("p-replay", MESSAGES, ANSWER, FEEDBACK)
    trainer.replay("p-replay", steps)
    assert trainer.adapter_norm("p-replay") == pytest.approx(norm, rel=1e-6)
    assert trainer.feedback_nll("p-replay", MESSAGES, ANSWER, FEEDBACK) == pytest.approx(nll, rel=1e-6)


def test_the_feedback_turn_is_what_the_template_adds_after_the_answer(tiny_model):
    from transformers import AutoTokenizer

    from raylib.scale.ttt import feedback_turn_ids

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    context, turn = feedback_turn_ids(tokenizer, MESSAGES, ANSWER, FEEDBACK)
    assert FEEDBACK in tokenizer.decode(turn) and FEEDBACK not in tokenizer.decode(context)
    assert "return a - b" in tokenizer.decode(context)


def test_fttt_plus_splits_the_turn_into_feedback_and_reflection_and_a_step_lowers_their_loss(trainer, tiny_model):
    from transformers import AutoTokenizer

    from raylib.scale.ttt import _feedback_turn, _tokens_before

    reflection = "The function subtracts b instead of adding it."
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    _, text = _feedback_turn(tokenizer, MESSAGES, ANSWER, f"{FEEDBACK} {reflection}")
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    turn = list(encoded["input_ids"])
    split = _tokens_before(encoded["offset_mapping"], text, reflection)
    assert FEEDBACK in tokenizer.decode(turn[:split]) and "subtracts" not in tokenizer.decode(turn[:split])
    assert reflection in tokenizer.decode(turn[split:])
    before = trainer.feedback_nll("p-plus", MESSAGES, ANSWER, FEEDBACK, reflection)
    trainer.step("p-plus", 0, MESSAGES, ANSWER, FEEDBACK, reflection)
    assert trainer.feedback_nll("p-plus", MESSAGES, ANSWER, FEEDBACK, reflection) < before


def test_reflections_come_from_the_base_model_with_every_adapter_off(trainer, tiny_model):
    from raylib.generate.engines.base import GenerationRequest, SamplingParams

    for attempt in range(3):
        trainer.step("p-reflect", attempt, MESSAGES, ANSWER, FEEDBACK)
    request = GenerationRequest(messages=MESSAGES, params=SamplingParams(max_tokens=12), key="p-reflect")
    [adapted] = trainer.generate("p-reflect", [request])
    [reflected] = trainer.reflect([request])
    [fresh] = trainer.generate("p-fresh", [request])
    assert reflected.outputs[0].text == fresh.outputs[0].text  # the base model's answer, not p-reflect's
    assert trainer.adapter_norm("p-reflect") > 0 and adapted.outputs  # p-reflect keeps its adapter


@pytest.mark.parametrize("kind", ["lora", "prefix"])
def test_the_hf_engine_samples_from_a_peft_adapter_directory(tiny_model, tmp_path, kind):
    """PEFT baselines are evaluated from the adapter jobs/sft.py writes, prefix tuning included."""
    import peft
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from raylib.generate.engines.base import EngineConfig, GenerationRequest, SamplingParams
    from raylib.generate.engines.hf import HFEngine

    torch.manual_seed(0)
    config = (peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False)
              if kind == "lora" else peft.PrefixTuningConfig(num_virtual_tokens=4, task_type="CAUSAL_LM"))
    adapter = peft.get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), config)
    adapter.save_pretrained(tmp_path / "adapter")
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(tmp_path / "adapter")
    request = GenerationRequest(messages=MESSAGES, params=SamplingParams(max_tokens=8), key="k")
    engine = HFEngine(EngineConfig(backend="hf", model=str(tmp_path / "adapter")))
    [tuned] = engine.generate([request])
    assert tuned.outputs and not tuned.error and tuned.outputs[0].tokens == 8
    assert isinstance(engine.model, peft.PeftModel)  # the adapter is in the forward pass
    ids = torch.tensor([[1, 2, 3, 4]])
    base = HFEngine(EngineConfig(backend="hf", model=tiny_model)).model
    with torch.no_grad():
        assert not torch.allclose(engine.model(input_ids=ids).logits, base(input_ids=ids).logits)
