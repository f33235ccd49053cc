"""The training stack's pure pieces and its up-front checks (no Ray Train fit here): batch plans, packed masks,
validation splits, the objectives' validation metrics, the loop config, the DeepSpeed config, the LR schedule,
settings that cannot work together, and bad input to the three jobs, each refused with exit status 2 and a message
naming what is wrong before any worker starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from raylib.config import ConfigError, load_config
from raylib.train.batching import collate_causal, rank_batches, read_splits, split_validation, steps_per_epoch
from raylib.train.runner import check_batches
from raylib.train.settings import DistillationSettings, LoopConfig, TrainSettings, deepspeed_config
from tests.train_data import write_pairs, write_sft

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------------ batch plans


def test_every_rank_gets_the_same_number_of_whole_steps():
    lengths = [(i * 7) % 23 + 1 for i in range(103)]
    plans = [rank_batches(lengths, 4, world_size=3, rank=r, grad_accum=2, epoch=0, seed=1) for r in range(3)]
    steps = steps_per_epoch(103, 4, 3, 2)
    assert steps == 4  # 103 // (4 * 3 * 2)
    assert [len(p) for p in plans] == [steps * 2] * 3
    seen = [i for plan in plans for batch in plan for i in batch]
    assert len(seen) == len(set(seen)) == steps * 2 * 3 * 4  # disjoint across ranks, no short batch
    assert plans[0] == rank_batches(lengths, 4, 3, 0, 2, 0, 1)  # the same plan on a restarted worker
    assert plans[0] != rank_batches(lengths, 4, 3, 0, 2, 1, 1)  # reshuffled next epoch


def test_length_grouping_puts_similar_lengths_together():
    lengths = [1, 100] * 40
    plan = rank_batches(lengths, 4, 1, 0, 1, 0, 0)
    assert all(len({lengths[i] for i in batch}) == 1 for batch in plan)
    mixed = rank_batches(lengths, 4, 1, 0, 1, 0, 0, group_by_length=False)
    assert any(len({lengths[i] for i in batch}) == 2 for batch in mixed)


def test_packed_rows_give_each_example_its_own_logits(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM

    from raylib.train.data.sft import pack_examples

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    examples = [{"input_ids": [5, 9, 33, 7, 81, 4, 2], "labels": [5, 9, 33, 7, 81, 4, 2]},
                {"input_ids": [12, 40, 6, 19, 3], "labels": [12, 40, 6, 19, 3]}]
    rows = pack_examples(examples, max_len=16)
    assert len(rows) == 1 and rows[0]["seq_lens"] == [7, 5]
    batch = collate_causal(rows + [{"input_ids": [8, 8], "labels": [8, 8], "position_ids": [0, 1], "seq_lens": [2]}],
                           pad_id=0)
    assert batch["attention_mask"].shape == (2, 1, 12, 12)
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       position_ids=batch["position_ids"]).logits
        alone = [model(input_ids=torch.tensor([e["input_ids"]])).logits[0] for e in examples]
    assert torch.allclose(packed[0, :7], alone[0], atol=1e-4)
    assert torch.allclose(packed[0, 7:], alone[1], atol=1e-4)
    assert torch.isfinite(packed).all()  # padding rows attend to themselves: no NaN
    assert batch["labels"][0, 7].item() == -100  # nothing predicted across the boundary


def test_validation_split_holds_out_whole_groups():
    examples = [{"group": f"task/{i // 3}", "n": i} for i in range(30)]
    train, validation = split_validation(examples, 0.2, seed=3)
    assert len(validation) == 6 and len(train) == 24  # 2 of 10 groups, 3 examples each
    assert not {e["group"] for e in train} & {e["group"] for e in validation}
    assert split_validation(examples, 0.2, seed=3) == (train, validation)
    assert split_validation(examples, 0.0) == (examples, [])
    # a validation file, when given, is read and nothing is held out of train; without one, the split above
    files = {"train.jsonl": examples, "val.jsonl": [{"group": "other", "n": -1}]}
    assert read_splits(files.get, "train.jsonl", "val.jsonl", 0.2, seed=3) == (examples, files["val.jsonl"])
    assert read_splits(files.get, "train.jsonl", None, 0.2, seed=3) == (train, validation)


# --------------------------------------------------------------------------------------------------- objectives


def test_objectives_validation_metrics_by_hand():
    from raylib.train.objectives import OBJECTIVES

    tokenizer = type("Tokenizer", (), {"pad_token_id": 0})()
    metrics = {name: OBJECTIVES[name](tokenizer).validation_metrics
               for name in ("lm", "bradley_terry", "orm", "pairwise")}
    # lm: per-batch mean losses weighted by the batch's examples: (2 * 3 + 1 * 1) / 4
    assert metrics["lm"]([(2.0, 3), (1.0, 1)]) == {"val_loss": 1.75}
    # pairs ranked right: 1 of 2; margins 1.0 and -0.2
    bt = metrics["bradley_terry"]([(2.0, 1.0), (0.1, 0.3)])
    assert bt["val_pairwise_accuracy"] == 0.5 and bt["val_margin"] == pytest.approx(0.4)
    # orm: a positive score means "passes"; AUC only when both labels occur
    assert metrics["orm"]([(0.9, 1), (0.6, 0), (-1.0, 0)]) == {"val_accuracy": pytest.approx(2 / 3), "val_auc": 1.0}
    assert metrics["orm"]([(0.9, 1), (-0.6, 1)]) == {"val_accuracy": 0.5}
    assert metrics["pairwise"]([(0, 0), (1, 0), (1, 1), (0, 0)]) == {"val_accuracy": 0.75}
    assert {name: cls.task for name, cls in OBJECTIVES.items()} == {"lm": "causal_lm", "reflection": "causal_lm",
                                                                    "bradley_terry": "reward", "orm": "reward",
                                                                    "pairwise": "preference"}


def test_objective_losses_and_token_counts_on_a_tiny_model(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from raylib.train.objectives.causal_lm import CausalLM, num_tokens

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    examples = [{"input_ids": [5, 9, 33, 7], "labels": [-100, 9, 33, 7]}, {"input_ids": [12, 40], "labels": [-100, 40]}]
    objective = CausalLM(tokenizer, torch.float32)
    with torch.no_grad():
        loss, tokens = objective.loss(model, examples)
        by_hand = model(**{k: v for k, v in objective.collate(examples).items() if k != "labels"}).logits
    assert tokens == 6 == num_tokens(examples)  # padding is not counted
    assert num_tokens([{"input_ids": [1, 2, 3, 0], "seq_lens": [2, 1]}]) == 3  # a packed row: its examples' tokens
    # the mean cross entropy over the 4 labelled positions, each predicted from the token before it
    targets = [(0, 0, 9), (0, 1, 33), (0, 2, 7), (1, 0, 40)]
    expected = -sum(torch.log_softmax(by_hand[b, t], -1)[y] for b, t, y in targets) / 4
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


# ----------------------------------------------------------------------------------------- settings and config


def settings(**sections) -> TrainSettings:
    return TrainSettings.model_validate(sections)


def test_loop_config_round_trips_as_plain_data_and_knows_its_task():
    loop = LoopConfig(objective="reflection", model="m", reflection_tokens=True, distillation=DistillationSettings(),
                      settings=settings(optim={"lr": 1e-3}))
    plain = loop.model_dump(mode="json")
    assert json.loads(json.dumps(plain)) == plain  # what Ray Train hands every worker
    assert LoopConfig.model_validate(plain) == loop and loop.task == "causal_lm"
    assert LoopConfig(objective="pairwise", model="m").task == "preference"
    with pytest.raises(ValueError, match="unknown objective 'no_such'"):
        LoopConfig(objective="no_such", model="m")
    with pytest.raises(ValueError, match="only it, takes distillation settings"):
        LoopConfig(objective="lm", model="m", distillation=DistillationSettings())
    with pytest.raises(ValueError, match="needs reflection_tokens"):
        LoopConfig(objective="reflection", model="m", distillation=DistillationSettings())


def test_deepspeed_config_follows_the_settings():
    config = deepspeed_config(settings(deepspeed={"zero_stage": 3, "offload_params": True, "offload_optimizer": True,
                                                  "extra": {"zero_optimization": {"overlap_comm": True}}},
                                       optim={"micro_batch_size": 3, "grad_accum": 5}), world_size=4)
    assert config["train_batch_size"] == 3 * 5 * 4 and config["gradient_accumulation_steps"] == 5
    zero = config["zero_optimization"]
    assert zero["stage"] == 3
    assert zero["offload_param"]["device"] == "cpu" and zero["offload_optimizer"]["device"] == "cpu"
    assert zero["stage3_gather_16bit_weights_on_model_save"] and zero["overlap_comm"]  # extra merged in, not replacing
    plain = deepspeed_config(settings(deepspeed={"zero_stage": 0}), world_size=2)
    assert plain["zero_optimization"] == {"stage": 0} and not plain["bf16"]["enabled"]


def test_learning_rate_schedule_by_hand():
    from raylib.train.loop import lr_lambda

    linear = lr_lambda("linear", warmup_steps=2, total_steps=10)
    assert [linear(s) for s in (0, 1, 2, 6, 10)] == [0.5, 1.0, 1.0, 0.5, 0.0]
    cosine = lr_lambda("cosine", 0, 10)
    assert cosine(0) == 1.0 and cosine(5) == pytest.approx(0.5) and cosine(10) == pytest.approx(0.0)
    assert lr_lambda("constant", 0, 10)(9) == 1.0


@pytest.mark.parametrize("sections, message", [
    ({"deepspeed": {"zero_stage": 2, "offload_params": True}}, "offload_params needs zero_stage 3"),
    ({"deepspeed": {"zero_stage": 0, "offload_optimizer": True}}, "offload_optimizer needs zero_stage 1, 2 or 3"),
    ({"deepspeed": {"zero_stage": 3}, "peft": {"method": "prefix"}},
     "prefix does not work with deepspeed.zero_stage 3"),
    ({"peft": {"method": "prefix", "merge": True}}, "peft.merge needs an adapter with weights"),
    ({"deepspeed": {"precision": "fp16"}}, "fp16 needs GPUs"),
])
def test_settings_that_cannot_work_together_are_refused(sections, message):
    with pytest.raises(ValueError, match=message):
        settings(**sections)


def test_too_little_data_for_one_step_is_refused():
    message = r"7 training examples cannot fill one optimizer step of 8 \(micro_batch_size 4 x workers 2"
    with pytest.raises(ValueError, match=message):
        check_batches(7, settings())
    assert check_batches(16, settings()) == 2


def test_an_adapter_that_does_not_fit_the_model_is_refused_up_front(tiny_model):
    from raylib.train.adapters import check_peft
    from raylib.train.settings import PeftSettings

    with pytest.raises(ValueError, match="train.peft.method=lora cannot wrap llama model"):
        check_peft(tiny_model, "causal_lm", PeftSettings(method="lora", target_modules=["no_such_proj"]))
    check_peft(tiny_model, "causal_lm", PeftSettings(method="ln_tuning"))  # fits: no error


# ------------------------------------------------------------------------------------- bad input to the jobs


def refused(job, args, capsys, output: Path) -> str:
    assert job.main(args) == 2
    assert not (output / "ray").exists()  # nothing started
    return capsys.readouterr().err


def test_sft_names_the_line_with_a_missing_field(tiny_model, tmp_path, capsys):
    import jobs.sft as job

    data = write_sft(tmp_path / "sft.jsonl", n=4)
    lines = data.read_text().splitlines()
    lines[2] = json.dumps({"prompt": "def f():\n"})
    data.write_text("\n".join(lines) + "\n")
    err = refused(job, ["--model", tiny_model, "--data.train", str(data), "--output", str(tmp_path / "o")], capsys,
                  tmp_path / "o")
    assert f"{data}:3: expected 'messages' or 'prompt' + 'completion'" in err


def test_sft_refuses_an_example_longer_than_the_limit(tiny_model, tmp_path, capsys):
    import jobs.sft as job

    data = write_sft(tmp_path / "sft.jsonl", n=16)
    err = refused(job, ["--model", tiny_model, "--data.train", str(data), "--output", str(tmp_path / "o"),
                        "data.max_length=8"], capsys, tmp_path / "o")
    assert f"{data}:1: the example has" in err and "more than max_len 8" in err


def test_an_empty_dataset_is_refused(tiny_model, tmp_path, capsys):
    import jobs.sft as job
    import jobs.train_rm as rm

    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    err = refused(job, ["--model", tiny_model, "--data.train", str(empty), "--output", str(tmp_path / "o")], capsys,
                  tmp_path / "o")
    assert f"{empty}: no examples in the file" in err
    err = refused(rm, ["--model", tiny_model, "--data.train", str(empty), "--output", str(tmp_path / "o")], capsys,
                  tmp_path / "o")
    assert f"{empty}: no examples in the file" in err


def test_reward_pairs_missing_a_field_or_too_long_are_refused(tiny_model, tmp_path, capsys):
    import jobs.train_pref as pref
    import jobs.train_rm as rm

    data = write_pairs(tmp_path / "pairs.jsonl", tasks=4)
    lines = data.read_text().splitlines()
    lines[1] = json.dumps({"prompt": "p", "chosen": "c"})
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    err = refused(rm, ["--model", tiny_model, "--data.train", str(bad), "--output", str(tmp_path / "o")], capsys,
                  tmp_path / "o")
    assert f"{bad}:2: missing field 'rejected'" in err
    err = refused(pref, ["--model", tiny_model, "--data.train", str(data), "--output", str(tmp_path / "o"),
                         "data.max_length=10"], capsys, tmp_path / "o")
    assert f"{data}:1: the pair's text has" in err and "more than max_length 10" in err
    orm = tmp_path / "orm.jsonl"
    orm.write_text(json.dumps({"prompt": "p", "program": "x", "label": 2}) + "\n")
    err = refused(rm, ["--objective", "orm", "--model", tiny_model, "--data.train", str(orm), "--output",
                       str(tmp_path / "o")], capsys, tmp_path / "o")
    assert f"{orm}:1: field 'label' must be 0 or 1, got 2" in err


def test_zero3_with_prefix_tuning_is_refused_before_anything_starts(tmp_path):
    data = write_pairs(tmp_path / "pairs.jsonl", tasks=4)
    proc = subprocess.run([sys.executable, str(REPO / "jobs/train_pref.py"), "--data.train", str(data), "--output",
                           str(tmp_path / "o"), "train.deepspeed.zero_stage=3", "train.peft.method=prefix"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "train" in proc.stderr and "prefix does not work with deepspeed.zero_stage 3" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_sft_job_config_checks(tmp_path):
    from jobs.sft import SFTConfig

    base = ["--data.train", "x.jsonl"]
    with pytest.raises(ConfigError, match="distillation needs one example per row"):
        load_config(SFTConfig, base + ["distillation.weight=1", "data.packing=true"])
    with pytest.raises(ConfigError, match="block_order must list each of"):
        load_config(SFTConfig, base + ["distillation.block_order=[code, text]"])
    with pytest.raises(ConfigError, match="packing with train.peft.method=prefix"):
        load_config(SFTConfig, base + ["data.packing=true", "train.peft.method=prefix"])
    with pytest.raises(ConfigError, match="data: Field required"):
        load_config(SFTConfig, [])
