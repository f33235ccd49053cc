"""The outcome reward objective (CodePRM's ORM): a scalar score of (task, program) trained on passed/failed;
accuracy and ROC AUC.

    from raylib.train.objectives.orm import orm_loss, OutcomeReward, roc_auc
    loss = orm_loss(scores, labels)                           # tensors (batch,): BCE of the score (a logit) vs 1/0
    roc_auc([0.9, 0.2, 0.6], [1, 0, 0])                       # 1.0: P(score of a pass > score of a fail)
    objective = OutcomeReward(tokenizer)                      # examples {"input_ids", "label": 1 passed, 0 failed}
    loss, tokens = objective.loss(engine, examples)
    objective.validation_metrics([(0.9, 1), (0.6, 0)])        # {"val_accuracy": 0.5, "val_auc": 1.0}

Examples come from `raylib.train.data.reward.read_orm_file`; the model is a one-output sequence classifier. torch
is imported inside the functions.
"""

from __future__ import annotations

from typing import Sequence

from raylib.train.batching import collate_classification, sequence_logits

__all__ = ["OutcomeReward", "orm_loss", "roc_auc"]


def orm_loss(scores, labels):
    """Outcome reward model loss: binary cross-entropy of the score (a logit) against passed (1) / failed (0)."""
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(scores, labels.to(scores.dtype))


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random negative (ties
    count half), by ranks (Mann-Whitney U) in O(n log n). Raises ValueError unless both classes are present."""
    positives = sum(1 for label in labels if label)
    negatives = len(labels) - positives
    if len(scores) != len(labels) or not positives or not negatives:
        raise ValueError("roc_auc needs scores and labels of equal length with both classes present")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum, i = 0.0, 0
    while i < len(order):  # tied scores share the average of their ranks
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        average_rank = (i + j) / 2 + 1
        rank_sum += average_rank * sum(1 for k in order[i:j + 1] if labels[k])
        i = j + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


class OutcomeReward:
    """A reward model's score as the logit of "this program passes"."""

    task = "reward"

    def __init__(self, tokenizer, dtype=None, distillation=None):
        self.pad_id = tokenizer.pad_token_id

    def collate(self, examples: list[dict]) -> dict:
        return collate_classification(examples, self.pad_id)

    def loss(self, model, examples: list[dict], *, step: int = 0, total_steps: int = 1, rng=None):
        batch = self.collate(examples)
        logits = sequence_logits(model, batch)
        return orm_loss(logits.squeeze(-1), batch["labels"]), int(batch["attention_mask"].sum())

    def validation_outputs(self, model, examples: list[dict]) -> list:
        """[(score, label)] per example."""
        batch = self.collate(examples)
        logits = sequence_logits(model, batch)
        return list(zip(logits.squeeze(-1).tolist(), batch["labels"].tolist()))

    def validation_metrics(self, rows: list) -> dict[str, float]:
        """Accuracy of "score > 0 means passed"; ROC AUC when both labels occur."""
        scores, labels = [s for s, _ in rows], [y for _, y in rows]
        metrics = {"val_accuracy": sum((s > 0) == bool(y) for s, y in rows) / len(rows)}
        if 0 < sum(labels) < len(labels):
            metrics["val_auc"] = roc_auc(scores, labels)
        return metrics
