"""The pairwise preference objective (CodeFavor): task + code A + code B -> which is better, cross entropy over the
two classes; accuracy.

    from raylib.train.objectives.pairwise import PairwisePreference
    objective = PairwisePreference(tokenizer)                 # examples {"input_ids", "label": 0 A better, 1 B}
    loss, tokens = objective.loss(engine, examples)
    objective.validation_metrics([(0, 0), (1, 0)])            # {"val_accuracy": 0.5}: (predicted, label) rows

Examples come from `raylib.train.data.reward.read_preference_file` (each pair in both orders); the model is a
two-class sequence classifier. torch is imported inside the functions.
"""

from __future__ import annotations

from raylib.train.batching import collate_classification, sequence_logits

__all__ = ["PairwisePreference"]


class PairwisePreference:
    """A two-class classifier of which code is better, A (class 0) or B (class 1)."""

    task = "preference"

    def __init__(self, tokenizer, dtype=None, distillation=None):
        self.pad_id = tokenizer.pad_token_id

    def collate(self, examples: list[dict]) -> dict:
        return collate_classification(examples, self.pad_id)

    def loss(self, model, examples: list[dict], *, step: int = 0, total_steps: int = 1, rng=None):
        import torch.nn.functional as F

        batch = self.collate(examples)
        logits = sequence_logits(model, batch)
        return F.cross_entropy(logits, batch["labels"]), int(batch["attention_mask"].sum())

    def validation_outputs(self, model, examples: list[dict]) -> list:
        """[(predicted class, label)] per example."""
        batch = self.collate(examples)
        logits = sequence_logits(model, batch)
        return list(zip(logits.argmax(-1).tolist(), batch["labels"].tolist()))

    def validation_metrics(self, rows: list) -> dict[str, float]:
        return {"val_accuracy": sum(p == y for p, y in rows) / len(rows)}
