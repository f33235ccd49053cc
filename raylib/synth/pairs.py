"""The one preference-pair schema that every synthetic-data method writes, and CodePrefBench rows made from pairs.

    from raylib.synth.pairs import make_pair, bench_rows
    pair = make_pair(task_id="HumanEval/0", instruction=..., criteria=..., chosen=..., rejected=...,
                     objective="correctness", provenance={"method": "execution", ...})
    rows = bench_rows([pair, ...], seed=0)      # {"task_id", "instruction", "choices", "gt_choice", "objective", ...}

A pair (one line of pairs.jsonl):
    pair_id      stable id: a hash of the method, task and both programs
    task_id      the problem or commit it came from
    instruction  what the code must do (jobs/train_pref.py and jobs/train_rm.py read it as the task)
    criteria     what "better" means for this pair (read with the instruction; see raylib.train.data.reward)
    chosen       the better program;  rejected: the worse one
    objective    correctness | efficiency | security | human-preference | improvement (an LLM-judged improvement)
    feedback     why chosen is better ("" when the method gives no reason)
    provenance   how it was made: method, prompt version, model, source ids, verdicts or measured runtimes
"""

from __future__ import annotations

import hashlib

__all__ = ["OBJECTIVES", "OBJECTIVE_CRITERIA", "bench_rows", "make_pair"]

OBJECTIVES = ("correctness", "efficiency", "security", "human-preference", "improvement")

# What "better" means per CodePrefBench objective (the criteria a judge reads when a bench row gives none).
OBJECTIVE_CRITERIA = {
    "correctness": "The better code runs as written and gives the right result for every valid input of the "
                   "instruction, without bugs.",
    "efficiency": "The better code takes less execution time (first) and less memory (second) while doing what the "
                  "instruction asks.",
    "security": "The better code resists security attacks and follows common secure-coding practice.",
    "human-preference": "The better code is the one a human developer would generally prefer for the instruction.",
}


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def make_pair(*, task_id: str, instruction: str, criteria: str, chosen: str, rejected: str, objective: str,
              provenance: dict, feedback: str = "") -> dict:
    """A pair in the schema above; `provenance` must name its "method"."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r} is not one of {OBJECTIVES}")
    if "method" not in provenance:
        raise ValueError("provenance must name the method that made the pair")
    pair_id = _digest(provenance["method"], task_id, chosen, rejected)
    return {"pair_id": pair_id, "task_id": task_id, "instruction": instruction, "criteria": criteria,
            "chosen": chosen, "rejected": rejected, "objective": objective, "feedback": feedback,
            "provenance": provenance}


def bench_rows(pairs: list[dict], seed: int = 0) -> list[dict]:
    """CodePrefBench rows (what jobs/pref_bench.py reads) from pairs: task_id (the pair id), instruction, choices
    (the two programs), gt_choice (where the chosen one is: 0 or 1, drawn per pair from a hash of `seed` and the
    pair id, so about half are each), objective and criteria."""
    rows = []
    for pair in pairs:
        right = int(_digest(str(seed), pair["pair_id"]), 16) % 2
        choices = [pair["rejected"], pair["rejected"]]
        choices[right] = pair["chosen"]
        rows.append({"task_id": pair["pair_id"], "instruction": pair["instruction"], "choices": choices,
                     "gt_choice": right, "objective": pair["objective"], "criteria": pair["criteria"],
                     "source_task_id": pair["task_id"]})
    return rows
