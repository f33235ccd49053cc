"""The reward objectives' losses and metrics (raylib.train.objectives: bradley_terry, orm, pairwise) and CodeFavor's
both-orders examples (raylib.train.data.reward), checked against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from raylib.train.data.reward import preference_examples, preference_prompt
from raylib.train.objectives.bradley_terry import bradley_terry_loss, pairwise_accuracy
from raylib.train.objectives.orm import orm_loss, roc_auc


def test_bradley_terry_loss_is_minus_log_sigmoid_of_the_margin():
    import torch

    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0])
    # margins 2 and 0: (log(1 + e^-2) + log 2) / 2
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx((math.log(1 + math.exp(-2)) + math.log(2)) / 2)
    scores = torch.tensor([0.5], requires_grad=True)
    bradley_terry_loss(scores, torch.tensor([0.0])).backward()
    assert scores.grad.item() == pytest.approx(-(1 - 1 / (1 + math.exp(-0.5))))  # pushes the chosen score up


def test_orm_loss_is_binary_cross_entropy_on_logits():
    import torch

    loss = orm_loss(torch.tensor([0.0, 2.0]), torch.tensor([1, 0]))
    assert loss.item() == pytest.approx((math.log(2) + math.log(1 + math.exp(2))) / 2)


def test_pairwise_accuracy_counts_ties_half():
    assert pairwise_accuracy([2.0, 0.1, 1.0, 5.0], [1.0, 0.3, 1.0, 4.0]) == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    with pytest.raises(ValueError):
        pairwise_accuracy([], [])


def test_roc_auc_by_ranks_with_ties():
    assert roc_auc([0.9, 0.2, 0.6], [1, 0, 0]) == 1.0
    assert roc_auc([0.1, 0.8], [1, 0]) == 0.0
    # positives 0.5, 0.7; negatives 0.5, 0.2: pairs (0.5>0.5 tie=.5, 0.5>0.2=1, 0.7>0.5=1, 0.7>0.2=1) -> 3.5/4
    assert roc_auc([0.5, 0.7, 0.5, 0.2], [1, 1, 0, 0]) == pytest.approx(3.5 / 4)
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([0.1, 0.2], [1, 1])


def test_preference_examples_show_each_pair_in_both_orders():
    good, bad = "def add(a, b): return a + b", "def add(a, b): return a - b"
    pairs = [{"prompt": "Add two numbers.", "chosen": good, "rejected": bad}]
    first, second = preference_examples(pairs)
    assert first == {"text": preference_prompt("Add two numbers.", good, bad), "label": 0}
    assert second == {"text": preference_prompt("Add two numbers.", bad, good), "label": 1}
    assert first["text"].index("return a + b") < first["text"].index("return a - b")
    assert second["text"].index("return a - b") < second["text"].index("return a + b")
    with pytest.raises(ValueError, match="pair 0: missing or non-string \\['rejected'\\]"):
        preference_examples([{"prompt": "x", "chosen": "y"}])
