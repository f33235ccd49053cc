"""Training data from evaluation results (pure functions over results.jsonl rows; no Ray, no torch).

    from raylib.train.data.from_results import orm_examples, preference_pairs, read_results, sft_examples
    rows = read_results("runs/eval/results.jsonl")
    orm = orm_examples(rows, problems)                          # outcome reward model: (prompt, program) -> passed
    orm = balanced_orm_examples(rows, problems, max_per_class=50)   # CodePRM's ORM set: per problem, then overall
    pairs = preference_pairs(rows, problems, max_per_task=8)    # reward / preference models: chosen passes
    sft = sft_examples(rows, problems, max_per_task=4)          # rejection sampling: passing programs only

Each builder keeps one example per distinct program of a task (models sample the same program many times), leaves
out samples whose sandbox failed ("sandbox-error": nothing is known about them) and answers that made no program
("generation-error", empty), and is deterministic for a seed.
Their JSONL rows, field by field:

    orm:   {"task_id", "prompt", "program", "label": 1|0, "status"}   (orm_examples and balanced_orm_examples)
    pairs: {"task_id", "prompt", "chosen", "rejected", "rejected_status"}
    sft:   {"task_id", "prompt", "completion", "messages": [{"role": "user", ...}, {"role": "assistant", ...}]}

`completion` is what follows the problem's completion prefix when the program starts with it (HumanEval-style
prompt + body), else the whole program; `messages` is the same example as a chat, the program in a fenced block.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

from raylib.data.problems import Problem
from raylib.evaluate.requests import GENERATION_ERROR_STATUS
from raylib.files import DataError, read_records
from sandbox.schema import INFRA_STATUS

__all__ = ["balanced_orm_examples", "orm_examples", "preference_pairs", "read_results", "sft_examples"]

_RESULT_FIELDS = ("task_id", "passed", "status", "program")


def read_results(path: str | Path) -> list[dict]:
    """Rows of a results.jsonl written by jobs/evaluate.py; a row lacking a needed field is a DataError (file, line)."""
    rows = []
    for line, row in read_records(path):
        missing = [f for f in _RESULT_FIELDS if f not in row]
        if missing:
            raise DataError(path, line, f"results row lacks {missing}: is this a results.jsonl of jobs/evaluate.py?")
        rows.append(row)
    return rows


def _distinct_by_task(rows: list[dict], problems: dict[str, Problem]) -> dict[str, list[dict]]:
    """{task_id: rows with distinct programs, in file order}, without infrastructure failures, answers that made no
    program (the model gave none: "generation-error", or an empty one) or unknown tasks."""
    by_task: dict[str, list[dict]] = {}
    seen: set[tuple[str, str]] = set()
    for row in rows:
        key = (row["task_id"], row["program"])
        if (row["status"] in (INFRA_STATUS, GENERATION_ERROR_STATUS) or not row["program"].strip()
                or row["task_id"] not in problems or key in seen):
            continue
        seen.add(key)
        by_task.setdefault(row["task_id"], []).append(row)
    return by_task


def orm_examples(rows: list[dict], problems: dict[str, Problem]) -> list[dict]:
    """One example per distinct (task, program): label 1 if it passed every test, else 0."""
    return [{"task_id": task_id, "prompt": problems[task_id].prompt, "program": row["program"],
             "label": int(bool(row["passed"])), "status": row["status"]}
            for task_id, task_rows in _distinct_by_task(rows, problems).items() for row in task_rows]


def balanced_orm_examples(rows: list[dict], problems: dict[str, Problem], max_per_class: int = 50,
                          seed: int = 0) -> list[dict]:
    """CodePRM's ORM training set (CodeRM coderm/eval/scripts/results_to_orm_dataset.py), as `orm_examples` rows.

    Per problem, k = min(passing, failing, `max_per_class`) distinct programs of each class; a problem with programs of
    one class only still gives one of them when it has more than one (as CodeRM does). Then the whole set is balanced:
    as many failing as passing examples, drawn at random, and shuffled. Deterministic for a seed."""
    rng = random.Random(seed)
    examples: dict[int, list[dict]] = {0: [], 1: []}
    for task_id, task_rows in _distinct_by_task(rows, problems).items():
        by_label = {1: [r for r in task_rows if r["passed"]], 0: [r for r in task_rows if not r["passed"]]}
        k = min(len(by_label[1]), len(by_label[0]), max_per_class)
        for label, group in by_label.items():
            rng.shuffle(group)
            take = max(k, 1 if len(group) > 1 else 0)
            examples[label] += [{"task_id": task_id, "prompt": problems[task_id].prompt, "program": row["program"],
                                 "label": label, "status": row["status"]} for row in group[:take]]
    size = min(len(examples[0]), len(examples[1]))
    chosen = rng.sample(examples[1], size) + rng.sample(examples[0], size)
    rng.shuffle(chosen)
    return chosen


def preference_pairs(rows: list[dict], problems: dict[str, Problem], max_per_task: int = 8,
                     seed: int = 0) -> list[dict]:
    """Pass-vs-fail pairs per task: `chosen` passed, `rejected` failed. Tasks where every program passed (or every
    one failed) give none. Up to `max_per_task` pairs per task, drawn without repeats; each passing and each failing
    program is used as evenly as the counts allow."""
    rng = random.Random(seed)
    pairs = []
    for task_id, task_rows in _distinct_by_task(rows, problems).items():
        good = [r for r in task_rows if r["passed"]]
        bad = [r for r in task_rows if not r["passed"]]
        if not good or not bad:
            continue
        rng.shuffle(good)
        rng.shuffle(bad)
        # the (good, bad) grid by diagonals: (g, (g + d) % B) for d = 0, 1, ...: every pair once, programs in turn
        diagonals = ((g, (g + d) % len(bad)) for d in range(len(bad)) for g in range(len(good)))
        for g, b in itertools.islice(diagonals, max_per_task):
            chosen, rejected = good[g], bad[b]
            pairs.append({"task_id": task_id, "prompt": problems[task_id].prompt, "chosen": chosen["program"],
                          "rejected": rejected["program"], "rejected_status": rejected["status"]})
    return pairs


def _completion(problem: Problem, program: str) -> str:
    prefix = problem.completion_prefix
    return program[len(prefix):] if prefix and program.startswith(prefix) else program


def sft_examples(rows: list[dict], problems: dict[str, Problem], max_per_task: int = 4, seed: int = 0) -> list[dict]:
    """Rejection sampling: up to `max_per_task` distinct passing programs per task, as prompt/completion and chat."""
    rng = random.Random(seed)
    examples = []
    for task_id, task_rows in _distinct_by_task(rows, problems).items():
        good = [r for r in task_rows if r["passed"]]
        rng.shuffle(good)
        problem = problems[task_id]
        for row in good[:max_per_task]:
            fence = "python" if problem.language == "python" else problem.language
            examples.append({
                "task_id": task_id, "prompt": problem.prompt, "completion": _completion(problem, row["program"]),
                "messages": [{"role": "user", "content": problem.prompt},
                             {"role": "assistant", "content": f"```{fence}\n{row['program'].rstrip()}\n```"}],
            })
    return examples
