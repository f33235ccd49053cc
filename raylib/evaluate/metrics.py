"""pass@k and evaluation summaries: plain functions over plain data (no Ray, no numpy needed).

    from raylib.evaluate.metrics import pass_at_k, summarize
    pass_at_k(n=10, c=3, k=1)   # 0.3
    summary = summarize(rows, problems)   # rows: results.jsonl rows; summary["pass@1"], summary["by_difficulty"], ...
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Iterable

from sandbox.schema import INFRA_STATUS

__all__ = ["STANDARD_KS", "by_difficulty_and_tag", "pass_at_k", "pass_at_ks", "summarize"]

STANDARD_KS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
TEST_CODE_MODE = "test-code"
TEST_CODE_NOTE = ("{} samples were judged in test-code mode (the tests ran in the program's own process: no reference "
                  "solution to record them with, tests that reach the program other than through plain-data calls, or "
                  "C++/JavaScript tests); a program written against the harness can forge a pass there")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), the chance that k of the n samples drawn
    without replacement include at least one of the c correct ones. Exact (integer binomials, one rounding)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_at_ks(counts: dict[str, tuple[int, int]], ks: Iterable[int] | None = None) -> dict[int, float]:
    """Mean pass@k over tasks, for every k <= the smallest per-task n (or the given ks that fit).

    Args:
        counts: {task_id: (n samples, c correct)}.
    """
    if not counts:
        return {}
    n_min = min(n for n, _ in counts.values())
    ks = list(range(1, n_min + 1)) if ks is None else [k for k in ks if 1 <= k <= n_min]
    if not ks:
        return {}
    top = max(ks)
    totals = [0.0] * (top + 1)
    for n, c in counts.values():
        # every k at once: C(n-c, k) / C(n, k) = prod_{i<k} (n-c-i) / (n-i), one factor more per k (O(n), not O(n^2))
        miss = 1.0
        for k in range(1, top + 1):
            miss *= max(n - c - k + 1, 0) / (n - k + 1)
            totals[k] += 1.0 - miss
    return {k: totals[k] / len(counts) for k in ks}


def _group(counts: dict[str, tuple[int, int]]) -> dict:
    scores = pass_at_ks(counts)
    return {"tasks": len(counts), "samples": sum(n for n, _ in counts.values()),
            **{f"pass@{k}": v for k, v in scores.items() if k in STANDARD_KS or k == max(scores)}}


def summarize(rows: Iterable[dict], problems: dict | None = None) -> dict:
    """Summary of evaluated samples.

    Args:
        rows: results rows with at least `task_id`, `passed`, `status`. Rows with status "sandbox-error"
            (the infrastructure failed; nothing is known about the program) are counted apart and left out of pass@k.
        problems: {task_id: Problem}, for per-difficulty / per-tag breakdowns and the count of tasks without samples.

    Returns:
        `pass@k` for every k from 1 to the smallest number of samples any evaluated task has, `pass_at_k` (the same
        as a list for plotting), counts by status, `judged_by` (samples per judging mode: replay, outside,
        test-code; `judging_note` when any were judged in the forgeable test-code mode), `by_difficulty` / `by_tag`
        groups (standard ks), task/sample counts.
    """
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    statuses: Counter = Counter()
    judged_by: Counter = Counter()
    infra = 0
    for row in rows:
        statuses[row["status"]] += 1
        judged_by[row.get("judged_by") or "not run"] += 1
        if row["status"] == INFRA_STATUS:
            infra += 1
            continue
        entry = counts[row["task_id"]]
        entry[0] += 1
        entry[1] += bool(row["passed"])
    per_task = {t: (n, c) for t, (n, c) in counts.items()}
    scores = pass_at_ks(per_task)
    summary: dict = {f"pass@{k}": v for k, v in scores.items()}
    summary.update(
        tasks=len(per_task), samples=sum(n for n, _ in per_task.values()),
        samples_per_task={"min": min((n for n, _ in per_task.values()), default=0),
                          "max": max((n for n, _ in per_task.values()), default=0)},
        passed=sum(c for _, c in per_task.values()), statuses=dict(sorted(statuses.items())), infra_errors=infra,
        pass_at_k=[{"k": k, "pass": v} for k, v in scores.items()],
        tasks_solved=sum(1 for _, c in per_task.values() if c > 0),
        judged_by=dict(sorted(judged_by.items())),
    )
    if judged_by.get(TEST_CODE_MODE):
        summary["judging_note"] = TEST_CODE_NOTE.format(judged_by[TEST_CODE_MODE])
    if problems:
        summary["tasks_without_samples"] = sum(1 for t in problems if t not in per_task)
        summary.update(by_difficulty_and_tag(per_task, problems, _group))
    return summary


def by_difficulty_and_tag(per_task: dict[str, object], problems: dict, summarize_group) -> dict:
    """{"by_difficulty": {difficulty: summarize_group({task_id: entry})}, "by_tag": {tag: ...}}, each key only when
    some problem has a difficulty / tags; `per_task` {task_id: entry}, groups in sorted order."""
    groups: dict[str, dict[str, dict]] = {"by_difficulty": defaultdict(dict), "by_tag": defaultdict(dict)}
    for task_id, entry in per_task.items():
        problem = problems.get(task_id)
        if problem is None:
            continue
        if problem.difficulty:
            groups["by_difficulty"][str(problem.difficulty)][task_id] = entry
        for tag in problem.tags:
            groups["by_tag"][tag][task_id] = entry
    return {name: {key: summarize_group(entries) for key, entries in sorted(found.items())}
            for name, found in groups.items() if found}
