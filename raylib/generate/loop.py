"""The resumable generation loop, shared by every job that generates.

"""

from __future__ import annotations

import json
from collections import Counter

from raylib.data.problems import Problem
from raylib.data.samples import Sample
from raylib.generate.prompts import sample_program


def generated_samples(lines, problems: dict[str, Problem], n: int) -> list[Sample]:
    """The samples to evaluate from sample-file rows (JSON text): those of `problems` with sample_id < n (a run
    with a smaller --limit or n leaves the others in the file, unused), keyed by their own sample_id."""
    samples = []
    for line in lines:
        row = json.loads(line)
        problem = problems.get(row["task_id"])
        if problem is not None and row["sample_id"] < n:
            samples.append(Sample(row["task_id"], row["sample_id"], sample_program(problem, row), 0, row.get("error") or ""))
    return samples


def generation_summary(lines: list[str], seconds: float | None = None) -> dict:
    """Counts over sample rows (JSON text): samples, errors, finish reasons, prompt/output tokens (and output
    tokens per second of generation when `seconds` is given)."""
    rows = [json.loads(line) for line in lines]
    output_tokens = sum(int(r.get("output_tokens") or 0) for r in rows)
    summary = {
        "samples": len(rows), "errors": sum(1 for r in rows if r.get("error")),
        "retryable_errors": sum(1 for r in rows if r.get("retryable")),
        "finish_reasons": dict(sorted(Counter(r.get("finish_reason", "") for r in rows).items())),
        "prompt_tokens": sum(int(r.get("prompt_tokens") or 0) for r in rows), "output_tokens": output_tokens,
        "mean_output_tokens": round(output_tokens / len(rows), 1) if rows else 0.0,
    }
    if seconds:
        summary["output_tokens_per_s"] = round(output_tokens / seconds, 1)
    first_errors = [f"{r['task_id']}#{r['sample_id']}: {r['error'][:300]}" for r in rows if r.get("error")][:10]
    if first_errors:
        summary["first_errors"] = first_errors
    return summary


def pending_requests(problems: dict[str, Problem], n: int, done: set[tuple[str, int]]) -> list[dict]:
    """Requests for every sample id in 0..n-1 of every problem that `done` lacks: one per contiguous run of missing
    ids, {task_id, first_sample_id, count}, in problem order."""
    requests = []
    for task_id in problems:
        first = None
        for sample_id in range(n + 1):
            missing = sample_id < n and (task_id, sample_id) not in done
            if missing and first is None:
                first = sample_id
            elif not missing and first is not None:
                requests.append({"task_id": task_id, "first_sample_id": first, "count": sample_id - first})
                first = None
    return requests
