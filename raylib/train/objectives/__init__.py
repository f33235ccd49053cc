"""Training objectives, one module each: how a micro-batch is collated, its loss, and the validation metrics.

    from raylib.train.objectives import OBJECTIVES
    objective = OBJECTIVES["bradley_terry"](tokenizer, dtype, distillation=None)    # in each Ray Train worker
    loss, tokens = objective.loss(engine, examples, step=step, total_steps=total, rng=rng)  # tokens: not padding
    rows = objective.validation_outputs(engine, examples)     # plain values per batch, gathered over the ranks
    metrics = objective.validation_metrics(rows)              # {"val_pairwise_accuracy": ..., "val_margin": ...}

    lm             causal_lm.CausalLM            SFT: next-token cross entropy on the labelled tokens; val_loss
    reflection     reflection.Reflection         lm + ReflectionCoder self-distillation (dynamic block masking)
    bradley_terry  bradley_terry.BradleyTerry    pairwise reward: -log sigmoid(chosen - rejected); accuracy, margin
    orm            orm.OutcomeReward             outcome reward: BCE on pass/fail; accuracy, ROC AUC
    pairwise       pairwise.PairwisePreference   A-or-B preference: cross entropy over 2 classes; accuracy

Each class says the model head it trains in `task` ("causal_lm", "reward", "preference"; `raylib.train.adapters`).
The losses and metrics are plain functions over tensors or lists in their modules (torch imported inside).
"""

from __future__ import annotations

import random
from typing import Any, ClassVar, Protocol

from raylib.train.objectives.bradley_terry import BradleyTerry
from raylib.train.objectives.causal_lm import CausalLM
from raylib.train.objectives.orm import OutcomeReward
from raylib.train.objectives.pairwise import PairwisePreference
from raylib.train.objectives.reflection import Reflection

__all__ = ["OBJECTIVES", "Objective"]


class Objective(Protocol):
    """What `raylib.train.loop.train_func` asks of an objective. Built as `cls(tokenizer, dtype, distillation)`:
    `dtype` the training precision's torch dtype (packed rows' masks), `distillation` the reflection objective's
    `DistillationSettings` (None for the others)."""

    task: ClassVar[str]

    def collate(self, examples: list[dict]) -> dict:
        """The micro-batch as padded tensors."""

    def loss(self, model, examples: list[dict], *, step: int = 0, total_steps: int = 1,
             rng: random.Random | None = None) -> tuple[Any, int]:
        """(loss tensor, tokens that are not padding) of one micro-batch at optimizer step `step` of `total_steps`."""

    def validation_outputs(self, model, examples: list[dict]) -> list:
        """Plain values (picklable rows) of one validation batch, under torch.no_grad."""

    def validation_metrics(self, rows: list) -> dict[str, float]:
        """The `val_*` metrics of every rank's rows together."""


OBJECTIVES: dict[str, type] = {"lm": CausalLM, "reflection": Reflection, "bradley_terry": BradleyTerry,
                               "orm": OutcomeReward, "pairwise": PairwisePreference}
