"""Search spaces over a training job's config keys (raylib.tune.space): checked against the job's own config before
any trial starts, turned into Tune's param_space and back into the job's key=value arguments."""

from __future__ import annotations

import pytest

from jobs.sft import SFTConfig
from raylib.config import load_config
from raylib.tune.space import Dimension, parse_space, trial_overrides, tune_param_space

BASE = ["--data.train", "runs/data/sft.jsonl"]


def test_a_space_over_the_job_s_keys_parses_and_loads_at_every_value():
    space = {"train.optim.lr": {"loguniform": [1e-4, 1e-2]}, "train.peft.r": {"grid": [4, 8]},
             "train.peft.method": {"choice": ["lora", "ia3"]}, "train.optim.grad_accum": {"randint": [1, 4]}}
    dimensions = parse_space(space, SFTConfig, BASE)
    assert dimensions == [Dimension("train.optim.lr", "loguniform", (1e-4, 1e-2)),
                          Dimension("train.peft.r", "grid", (4, 8)),
                          Dimension("train.peft.method", "choice", ("lora", "ia3")),
                          Dimension("train.optim.grad_accum", "randint", (1, 4))]
    cfg = load_config(SFTConfig, [*BASE, *trial_overrides({"train.optim.lr": 0.003, "train.peft.method": "ia3"})])
    assert cfg.train.optim.lr == 0.003 and cfg.train.peft.method == "ia3"


def test_a_key_the_job_lacks_fails_naming_it_and_the_closest_one():
    with pytest.raises(ValueError) as err:
        parse_space({"train.optim.learning_rate": {"grid": [0.1]}}, SFTConfig, BASE)
    assert "'train.optim.learning_rate'" in str(err.value) and "lr" in str(err.value)


def test_a_value_the_field_refuses_fails_naming_key_and_value():
    with pytest.raises(ValueError, match=r"'train.peft.method' = 'dora'"):
        parse_space({"train.peft.method": {"choice": ["lora", "dora"]}}, SFTConfig, BASE)
    with pytest.raises(ValueError, match=r"'train.optim.lr' = -1"):
        parse_space({"train.optim.lr": {"uniform": [-1, 1]}}, SFTConfig, BASE)


@pytest.mark.parametrize("form, message", [
    ({"random": [1, 2]}, "expected one of"),
    ({"grid": []}, "needs a non-empty list"),
    ({"uniform": [2, 1]}, "low < high"),
    ({"loguniform": [0, 1]}, "low > 0"),
    ([1, 2], "expected one of"),
])
def test_malformed_samplers_are_refused(form, message):
    with pytest.raises(ValueError, match=message):
        parse_space({"train.optim.lr": form}, SFTConfig, BASE)


def test_the_tune_param_space_has_one_searcher_per_key():
    from ray import tune

    space = tune_param_space([Dimension("train.peft.r", "grid", (4, 8)),
                              Dimension("train.optim.lr", "loguniform", (1e-4, 1e-2))])
    assert space["train.peft.r"] == tune.grid_search([4, 8])
    assert 1e-4 <= space["train.optim.lr"].sample() <= 1e-2


def test_a_range_written_as_yaml_reads_1e_4_as_a_string_and_it_is_taken_as_the_number():
    import yaml

    space = yaml.safe_load("train.optim.lr: {loguniform: [1e-4, 3e-3]}")
    assert space["train.optim.lr"]["loguniform"] == ["1e-4", "3e-3"]  # YAML 1.1: no dot, no float
    [dimension] = parse_space(space, SFTConfig, base_args=BASE)
    assert dimension.values == (1e-4, 3e-3)
