"""Reward and preference models' examples: the files they read and CodeFavor's both-orders examples.

    from raylib.train.data.reward import preference_examples, read_orm_file, read_pair_file, read_preference_file
    preference_examples(pairs)                                    # each pair twice: chosen as A, then as B
    read_pair_file("pairs.jsonl", tokenizer, max_len=512)         # token ids; DataError names file, line, field
    read_orm_file("orm.jsonl", tokenizer, max_len=512)            # {"input_ids", "label", "group"}
    read_preference_file("pairs.jsonl", tokenizer, max_len=512)   # both orders of each pair, labels 0 (A) / 1 (B)

Files (what jobs/build_datasets.py and jobs/synth_prefs.py write; extra fields are ignored):
    pairs.jsonl  {"prompt": str, "chosen": str, "rejected": str, "task_id"?: str}   Bradley-Terry and preference
                 or the synthetic pair schema (raylib.synth.pairs): "instruction" in place of "prompt", and a
                 "criteria" that is read with it (the task text becomes `task_text(instruction, criteria)`)
    orm.jsonl    {"prompt": str, "program": str, "label": 0|1, "task_id"?: str}     outcome reward model

Their losses and metrics live with their objectives (`raylib.train.objectives`: bradley_terry, orm, pairwise).
Plain Python: no torch, no Ray.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from raylib.files import DataError, read_records

__all__ = ["PREFERENCE_LABELS", "pair_task", "preference_examples", "preference_prompt", "read_orm_file",
           "read_pair_file", "read_preference_file", "task_text"]

PREFERENCE_LABELS = ("A", "B")  # class 0: code A is better; class 1: code B is better

PREFERENCE_TEMPLATE = ("Which code better solves the task? Answer A or B.\n\n## Task\n{instruction}\n\n"
                       "{criteria}## Code A\n```\n{code_a}\n```\n\n## Code B\n```\n{code_b}\n```\n")


def preference_prompt(instruction: str, code_a: str, code_b: str, criteria: str = "") -> str:
    """The text a CodeFavor-style pairwise classifier reads: the task, the criteria (a "## Criteria" section, only
    when given), then code A and code B."""
    section = f"## Criteria\n{criteria.strip()}\n\n" if criteria.strip() else ""
    return PREFERENCE_TEMPLATE.format(instruction=instruction.strip(), criteria=section, code_a=code_a.rstrip(),
                                      code_b=code_b.rstrip())


def task_text(instruction: str, criteria: str = "") -> str:
    """The task a scalar reward model reads beside a program: the instruction, then "Criteria: ..." when given."""
    return f"{instruction.strip()}\n\nCriteria: {criteria.strip()}" if criteria.strip() else instruction


def pair_task(path, line: int, row: dict) -> tuple[str, str]:
    """(instruction, criteria) of a pairs.jsonl row: its "prompt" or "instruction", and its "criteria" or ""."""
    key = "prompt" if "prompt" in row else "instruction"
    if not isinstance(row.get(key), str):
        raise DataError(path, line, f"field 'prompt' (or 'instruction') is missing or not a string (got "
                        f"{sorted(row)[:10]})")
    criteria = row.get("criteria", "")
    if not isinstance(criteria, str):
        raise DataError(path, line, f"field 'criteria' must be str, got {type(criteria).__name__}")
    return row[key], criteria


def preference_examples(pairs: Sequence[dict]) -> list[dict]:
    """Classification examples from chosen/rejected pairs ({"prompt", "chosen", "rejected"}, as
    jobs/build_datasets.py writes pairs.jsonl), each pair in both orders so the model cannot learn a position:
    {"text": ..., "label": 0} with the chosen code as A, then {"text": ..., "label": 1} with it as B."""
    examples = []
    for i, pair in enumerate(pairs):
        task = pair.get("prompt", pair.get("instruction"))
        missing = [f for f in ("chosen", "rejected") if not isinstance(pair.get(f), str)]
        missing += [] if isinstance(task, str) else ["prompt"]
        if missing:
            raise ValueError(f"pair {i}: missing or non-string {missing}")
        criteria = pair.get("criteria") or ""
        examples.append({"text": preference_prompt(task, pair["chosen"], pair["rejected"], criteria), "label": 0})
        examples.append({"text": preference_prompt(task, pair["rejected"], pair["chosen"], criteria), "label": 1})
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
    """Reward-model pairs as {"chosen_ids", "rejected_ids", "group"}: the task (`task_text` of the prompt or
    instruction and the criteria) and each program as a text pair."""
    examples = []
    for line, row in read_records(path):
        task = task_text(*pair_task(path, line, row))
        _fields(path, line, row, {"chosen": str, "rejected": str})
        chosen, rejected = (_encode(tokenizer, path, line, task, row[side], max_len, f"prompt + {side}")
                            for side in ("chosen", "rejected"))
        examples.append({"chosen_ids": chosen, "rejected_ids": rejected, "group": str(row.get("task_id", line))})
    return _nonempty(path, examples)


def read_orm_file(path: str | Path, tokenizer, max_len: int) -> list[dict]:
    """Outcome-reward examples as {"input_ids", "label" (1 passed, 0 failed), "group"}."""
    examples = []
    for line, row in read_records(path):
        _fields(path, line, row, {"prompt": str, "program": str, "label": int})
        if row["label"] not in (0, 1):
            raise DataError(path, line, f"field 'label' must be 0 or 1, got {row['label']!r}")
        ids = _encode(tokenizer, path, line, row["prompt"], row["program"], max_len, "prompt + program")
        examples.append({"input_ids": ids, "label": row["label"], "group": str(row.get("task_id", line))})
    return _nonempty(path, examples)


def read_preference_file(path: str | Path, tokenizer, max_len: int) -> list[dict]:
    """CodeFavor classification examples from pairs, both orders of each pair (`preference_examples`), as
    {"input_ids", "label" (0: code A is better, 1: code B), "group"}; both orders share their pair's group."""
    examples = []
    for line, row in read_records(path):
        pair_task(path, line, row)
        _fields(path, line, row, {"chosen": str, "rejected": str})
        for example in preference_examples([row]):
            ids = _encode(tokenizer, path, line, example["text"], None, max_len, "the pair's text")
            examples.append({"input_ids": ids, "label": example["label"], "group": str(row.get("task_id", line))})
    return _nonempty(path, examples)
