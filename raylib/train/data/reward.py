"""Reward and preference models' pure pieces: losses, metrics, and CodeFavor's both-orders examples.

    from raylib.train.data.reward import bradley_terry_loss, orm_loss, pairwise_accuracy, preference_examples, roc_auc
    loss = bradley_terry_loss(chosen_scores, rejected_scores)    # tensors (batch,): -log sigmoid(chosen - rejected)
    loss = orm_loss(scores, labels)                              # outcome reward model: pass/fail, BCE on logits
    pairwise_accuracy([2.0, 0.1], [1.0, 0.3])                     # 0.5: the share of pairs ranked right (ties: half)
    roc_auc([0.9, 0.2, 0.6], [1, 0, 0])                           # 1.0: P(score of a pass > score of a fail)
    preference_examples(pairs)                                    # each pair twice: chosen as A, then as B
    read_pair_file("pairs.jsonl", tokenizer, max_len=512)         # token ids; DataError names file, line, field

Files (what jobs/build_datasets.py writes; extra fields are ignored):
    pairs.jsonl  {"prompt": str, "chosen": str, "rejected": str, "task_id"?: str}   Bradley-Terry and preference
    orm.jsonl    {"prompt": str, "program": str, "label": 0|1, "task_id"?: str}     outcome reward model

The losses take tensors (torch imported inside); metrics, example builders and readers are plain Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from raylib.files import DataError, read_records

__all__ = ["PREFERENCE_LABELS", "bradley_terry_loss", "orm_loss", "pairwise_accuracy", "preference_examples",
           "preference_prompt", "read_orm_file", "read_pair_file", "read_preference_file", "roc_auc"]

PREFERENCE_LABELS = ("A", "B")  # class 0: code A is better; class 1: code B is better

PREFERENCE_TEMPLATE = ("Which code better solves the task? Answer A or B.\n\n## Task\n{instruction}\n\n"
                       "## Code A\n```\n{code_a}\n```\n\n## Code B\n```\n{code_b}\n```\n")


def bradley_terry_loss(chosen_scores, rejected_scores):
    """Bradley-Terry pairwise loss: mean of -log sigmoid(chosen - rejected); log 2 when the scores are equal."""
    import torch.nn.functional as F

    return -F.logsigmoid(chosen_scores - rejected_scores).mean()


def orm_loss(scores, labels):
    """Outcome reward model loss: binary cross-entropy of the score (a logit) against passed (1) / failed (0)."""
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(scores, labels.to(scores.dtype))


def pairwise_accuracy(chosen_scores: Sequence[float], rejected_scores: Sequence[float]) -> float:
    """The share of pairs whose chosen answer scores higher than the rejected one; a tie counts half."""
    if len(chosen_scores) != len(rejected_scores) or not chosen_scores:
        raise ValueError("pairwise_accuracy needs two equally long, non-empty score lists")
    right = sum(1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen_scores, rejected_scores))
    return right / len(chosen_scores)


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


def preference_prompt(instruction: str, code_a: str, code_b: str) -> str:
    """The text a CodeFavor-style pairwise classifier reads: the task, then code A and code B."""
    return PREFERENCE_TEMPLATE.format(instruction=instruction.strip(), code_a=code_a.rstrip(), code_b=code_b.rstrip())


def preference_examples(pairs: Sequence[dict]) -> list[dict]:
    """Classification examples from chosen/rejected pairs ({"prompt", "chosen", "rejected"}, as
    jobs/build_datasets.py writes pairs.jsonl), each pair in both orders so the model cannot learn a position:
    {"text": ..., "label": 0} with the chosen code as A, then {"text": ..., "label": 1} with it as B."""
    examples = []
    for i, pair in enumerate(pairs):
        missing = [f for f in ("prompt", "chosen", "rejected") if not isinstance(pair.get(f), str)]
        if missing:
            raise ValueError(f"pair {i}: missing or non-string {missing}")
        examples.append({"text": preference_prompt(pair["prompt"], pair["chosen"], pair["rejected"]), "label": 0})
        examples.append({"text": preference_prompt(pair["prompt"], pair["rejected"], pair["chosen"]), "label": 1})
    return examples


def _fields(path, line: int, row: dict, spec: dict) -> None:
    """Raise a DataError naming the first field of `spec` ({name: type}) that `row` lacks or has mistyped."""
    for name, kind in spec.items():
        if name not in row:
            raise DataError(path, line, f"missing field {name!r} (expected {sorted(spec)}, got {sorted(row)[:10]})")
        if not isinstance(row[name], kind) or isinstance(row[name], bool) and kind is not bool:
            raise DataError(path, line, f"field {name!r} must be {kind.__name__}, got {type(row[name]).__name__}")


def _encode(tokenizer, path, line: int, first: str, second: str, max_len: int, what: str) -> list[int]:
    ids = list(tokenizer(first, second, truncation=False)["input_ids"])
    if len(ids) > max_len:
        raise DataError(path, line, f"{what} has {len(ids)} tokens, more than max_length {max_len}")
    return ids


def _nonempty(path, records: list) -> list:
    if not records:
        raise DataError(path, 0, "no examples in the file")
    return records


def read_pair_file(path: str | Path, tokenizer, max_len: int) -> list[dict]:
    """Reward-model pairs as {"chosen_ids", "rejected_ids", "group"}: the prompt and each program as a text pair."""
    examples = []
    for line, row in read_records(path):
        _fields(path, line, row, {"prompt": str, "chosen": str, "rejected": str})
        examples.append({"chosen_ids": _encode(tokenizer, path, line, row["prompt"], row["chosen"], max_len, "prompt + chosen"),
                         "rejected_ids": _encode(tokenizer, path, line, row["prompt"], row["rejected"], max_len, "prompt + rejected"),
                         "group": str(row.get("task_id", line))})
    return _nonempty(path, examples)


def read_orm_file(path: str | Path, tokenizer, max_len: int) -> list[dict]:
    """Outcome-reward examples as {"input_ids", "label" (1 passed, 0 failed), "group"}."""
    examples = []
    for line, row in read_records(path):
        _fields(path, line, row, {"prompt": str, "program": str, "label": int})
        if row["label"] not in (0, 1):
            raise DataError(path, line, f"field 'label' must be 0 or 1, got {row['label']!r}")
        examples.append({"input_ids": _encode(tokenizer, path, line, row["prompt"], row["program"], max_len, "prompt + program"),
                         "label": row["label"], "group": str(row.get("task_id", line))})
    return _nonempty(path, examples)


def read_preference_file(path: str | Path, tokenizer, max_len: int) -> list[dict]:
    """CodeFavor classification examples from pairs, both orders of each pair (`preference_examples`), as
    {"input_ids", "label" (0: code A is better, 1: code B), "group"}; both orders share their pair's group."""
    examples = []
    for line, row in read_records(path):
        _fields(path, line, row, {"prompt": str, "chosen": str, "rejected": str})
        for example in preference_examples([row]):
            examples.append({"input_ids": _encode(tokenizer, path, line, example["text"], None, max_len, "the pair's text"),
                             "label": example["label"], "group": str(row.get("task_id", line))})
    return _nonempty(path, examples)
