"""The causal LM objective (SFT): next-token cross entropy on the labelled tokens; validation loss.

    from raylib.train.objectives.causal_lm import CausalLM, mean_loss
    objective = CausalLM(tokenizer, dtype=torch.float32)      # dtype: the additive mask of packed rows
    loss, tokens = objective.loss(engine, examples)            # examples of raylib.train.data.sft (plain or packed)
    rows = objective.validation_outputs(engine, examples)      # [(the batch's mean loss, its examples)]
    objective.validation_metrics([(2.0, 3), (1.0, 1)])         # {"val_loss": 1.75}: weighted by examples

The model computes the loss from `labels` (-100: not taken). torch is imported inside the functions.
"""

from __future__ import annotations

from raylib.train.batching import collate_causal

__all__ = ["CausalLM", "mean_loss", "num_tokens"]


def num_tokens(examples: list[dict]) -> int:
    """Tokens of a micro-batch that are not padding: every example's ids, or a packed row's `seq_lens` (not
    `input_ids != pad`: the pad token is often EOS, which the examples contain)."""
    if "seq_lens" in examples[0]:
        return sum(sum(e["seq_lens"]) for e in examples)
    return sum(len(e["input_ids"]) for e in examples)


def mean_loss(rows: list[tuple[float, int]]) -> float:
    """The mean over examples of per-batch mean losses given as (loss, examples in the batch)."""
    return sum(loss * n for loss, n in rows) / sum(n for _, n in rows)


class CausalLM:
    """SFT on a causal LM: the loss on the labelled tokens (assistant turns, completions)."""

    task = "causal_lm"

    def __init__(self, tokenizer, dtype=None, distillation=None):
        self.pad_id = tokenizer.pad_token_id
        self.dtype = dtype

    def collate(self, examples: list[dict]) -> dict:
        return collate_causal(examples, self.pad_id, self.dtype)

    @staticmethod
    def forward(model, batch: dict):
        """The model's output (loss and logits) on a collated batch, with the packed rows' positions if any."""
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids") if k in batch}
        return model(**inputs, labels=batch["labels"])

    def loss(self, model, examples: list[dict], *, step: int = 0, total_steps: int = 1, rng=None):
        return self.forward(model, self.collate(examples)).loss, num_tokens(examples)

    def validation_outputs(self, model, examples: list[dict]) -> list:
        return [(float(self.forward(model, self.collate(examples)).loss), len(examples))]

    def validation_metrics(self, rows: list) -> dict[str, float]:
        return {"val_loss": mean_loss(rows)}
