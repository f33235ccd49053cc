"""The Bradley-Terry objective: a scalar reward model trained on chosen/rejected pairs; pairwise accuracy and margin.

    from raylib.train.objectives.bradley_terry import BradleyTerry, bradley_terry_loss, pairwise_accuracy
    loss = bradley_terry_loss(chosen_scores, rejected_scores)    # tensors (batch,): -log sigmoid(chosen - rejected)
    pairwise_accuracy([2.0, 0.1], [1.0, 0.3])                     # 0.5: the share of pairs ranked right (ties: half)
    objective = BradleyTerry(tokenizer)                           # examples {"chosen_ids", "rejected_ids"}
    loss, tokens = objective.loss(engine, examples)               # both sides of B pairs in one batch of 2B rows
    objective.validation_metrics([(2.0, 1.0), (0.1, 0.3)])        # {"val_pairwise_accuracy": 0.5, "val_margin": 0.4}

Examples come from `raylib.train.data.reward.read_pair_file`; the model is a one-output sequence classifier whose
logit is the score. torch is imported inside the functions.
"""

from __future__ import annotations

from typing import Sequence

from raylib.train.batching import collate_pairs, sequence_logits

__all__ = ["BradleyTerry", "bradley_terry_loss", "pairwise_accuracy"]


def bradley_terry_loss(chosen_scores, rejected_scores):
    """Bradley-Terry pairwise loss: mean of -log sigmoid(chosen - rejected); log 2 when the scores are equal."""
    import torch.nn.functional as F

    return -F.logsigmoid(chosen_scores - rejected_scores).mean()


def pairwise_accuracy(chosen_scores: Sequence[float], rejected_scores: Sequence[float]) -> float:
    """The share of pairs whose chosen answer scores higher than the rejected one; a tie counts half."""
    if len(chosen_scores) != len(rejected_scores) or not chosen_scores:
        raise ValueError("pairwise_accuracy needs two equally long, non-empty score lists")
    right = sum(1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen_scores, rejected_scores))
    return right / len(chosen_scores)


class BradleyTerry:
    """A reward model's score of the chosen answer pushed above the rejected one's."""

    task = "reward"

    def __init__(self, tokenizer, dtype=None, distillation=None):
        self.pad_id = tokenizer.pad_token_id

    def collate(self, examples: list[dict]) -> dict:
        return collate_pairs(examples, self.pad_id)

    def loss(self, model, examples: list[dict], *, step: int = 0, total_steps: int = 1, rng=None):
        batch = self.collate(examples)
        scores, half = sequence_logits(model, batch).squeeze(-1), len(examples)
        return bradley_terry_loss(scores[:half], scores[half:]), int(batch["attention_mask"].sum())

    def validation_outputs(self, model, examples: list[dict]) -> list:
        """[(chosen score, rejected score)] per pair."""
        scores, half = sequence_logits(model, self.collate(examples)).squeeze(-1), len(examples)
        return list(zip(scores[:half].tolist(), scores[half:].tolist()))

    def validation_metrics(self, rows: list) -> dict[str, float]:
        chosen, rejected = [c for c, _ in rows], [r for _, r in rows]
        return {"val_pairwise_accuracy": pairwise_accuracy(chosen, rejected),
                "val_margin": sum(c - r for c, r in rows) / len(rows)}
