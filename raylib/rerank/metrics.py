"""How well a verifier reranks: top-1, rank@k (CodePRM), best-of-k curves and a per-verifier summary. Pure.

    from raylib.rerank.metrics import best_of_k_curve, rank_at_k, summarize_rerank, top1
    top1([0.9, 0.9, 0.1], [True, False, True])             # 0.5: the two tied at the top, one passes
    rank_at_k(scores, passed, k=5)                          # any of the top 5 passes (ties: expected over ties)
    rank_at_k(scores, passed, k=1, n=10, seeds=range(25))   # CodePRM's rank@1|10: mean over 25 subsamples of 10
    best_of_k_curve(scores, passed, ks=(1, 2, 4, 8))        # {k: {"top1": ..., "pass@k": ...}}
    summarize_rerank({task_id: {verifier: (scores, passed)}}, problems)   # per verifier, by difficulty / tag

`scores` are one problem's candidate scores (higher is better, None = unknown, below every number) and `passed`
whether each candidate passes the hidden tests. Ties are never broken by position: a metric takes the expectation
over a uniformly random order of the tied candidates, computed exactly.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Iterable, Sequence

from raylib.evaluate.metrics import by_difficulty_and_tag, pass_at_k
from raylib.rerank.selection import top_indices

__all__ = ["RANK_KS", "approximate_perms", "best_of_k_curve", "rank_at_k", "summarize_rerank", "top1"]

RANK_KS = (1, 5, 10, 20, 50, 100, 200, 500, 1000)


def _check(scores: Sequence, passed: Sequence) -> None:
    if len(scores) != len(passed):
        raise ValueError(f"{len(scores)} scores for {len(passed)} pass labels")
    if not scores:
        raise ValueError("no candidates")


def _tie_classes(scores: Sequence[float | None], passed: Sequence[bool]) -> list[tuple[int, int]]:
    """(size, passing) of each set of candidates with equal scores, best first; None is the lowest class."""
    classes: dict[tuple[bool, float], list[int]] = defaultdict(lambda: [0, 0])
    for score, ok in zip(scores, passed):
        entry = classes[(score is not None, score if score is not None else 0.0)]
        entry[0] += 1
        entry[1] += bool(ok)
    return [tuple(classes[key]) for key in sorted(classes, reverse=True)]


def top1(scores: Sequence[float | None], passed: Sequence[bool]) -> float:
    """Whether the top-scored candidate passes; with ties at the top, the fraction of the tied candidates that pass
    (a random pick among them). All scores None: the fraction of all candidates that pass (pass@1)."""
    _check(scores, passed)
    tied = top_indices(scores)
    return sum(bool(passed[i]) for i in tied) / len(tied)


def _any_in_top_k(classes: list[tuple[int, int]], k: int) -> float:
    """P(at least one of the k best passes) when ties are ordered uniformly at random: every class above the
    boundary is taken whole; from the class the k-th falls in, r of its s candidates are drawn at random."""
    taken = 0
    for size, passing in classes:
        if taken + size <= k:
            if passing:
                return 1.0
            taken += size
            if taken == k:
                return 0.0
        else:
            return pass_at_k(size, passing, k - taken)
    return 0.0


def approximate_perms(n: int | None, max_n: int, max_perms: int = 100, min_perms: int = 25) -> int:
    """How many subsamples CodeRM averages (coderm/eval/metrics.py `approximate_perms`): fewer as n nears all
    candidates, int(100 * (1 - n / max_n) + 1) clamped to [25, 100]."""
    n = max_n if n is None else n
    return min(max(int(max_perms * (1 - n / max_n) + 1), min_perms), max_perms)


def rank_at_k(scores: Sequence[float | None], passed: Sequence[bool], k: int, n: int | None = None,
              seeds: Iterable[int] | None = None) -> float:
    """CodePRM's rank@k (CodeRM coderm/eval/metrics.py `get_reward_acc`): success when any of the k best-scored
    candidates passes; with `n`, averaged over random subsamples of n candidates.

    Args:
        k: how many of the best are looked at (more than there are: all of them).
        n: subsample size; None: all candidates, no sampling.
        seeds: one subsample (`random.Random(seed).sample`) per seed; None: range(approximate_perms(n, len)) as
            CodeRM. Ignored when n is None.

    CodeRM sorts each subsample by score with a stable sort, so ties fall in the random order of the subsample; here
    each subsample's value is the exact expectation over that random order (same mean, no extra noise), and the
    subsamples are seeded per call, so the result is deterministic.
    """
    _check(scores, passed)
    if k < 1:
        raise ValueError(f"rank@k needs k >= 1, got {k}")
    if n is None:
        return _any_in_top_k(_tie_classes(scores, passed), k)
    if not 0 < n <= len(scores):
        raise ValueError(f"rank@k needs 0 < n <= {len(scores)} candidates, got n={n}")
    seeds = list(range(approximate_perms(n, len(scores))) if seeds is None else seeds)
    if not seeds:
        raise ValueError("rank@k with n needs at least one seed")
    total = 0.0
    for seed in seeds:
        picked = random.Random(seed).sample(range(len(scores)), n)
        total += _any_in_top_k(_tie_classes([scores[i] for i in picked], [passed[i] for i in picked]), k)
    return total / len(seeds)


def best_of_k_curve(scores: Sequence[float | None], passed: Sequence[bool], ks: Iterable[int]) -> dict[int, dict]:
    """For each k: `top1`, the expected top-1 of the verifier among k candidates drawn at random without replacement
    (what reranking k samples would give), and `pass@k` (an oracle picking among the same k).

    Exact: with the candidates in classes of equal score (best first), H the number above a class and s its size,
    the class holds the subset's top when the subset has none of the H and not all of its k from the other
    N - H - s: P = (C(N - H, k) - C(N - H - s, k)) / C(N, k). Given that, the tied members drawn are a uniform
    subset of the class, so the expected fraction of them that pass is the class's pass rate. ks above N are left
    out.
    """
    _check(scores, passed)
    total, correct = len(scores), sum(bool(p) for p in passed)
    classes = _tie_classes(scores, passed)
    curve = {}
    for k in sorted(set(ks)):
        if k < 1:
            raise ValueError(f"best-of-k needs k >= 1, got {k}")
        if k > total:
            continue
        expected, above = 0.0, 0
        for size, passing in classes:
            rest = total - above
            holds_top = math.comb(rest, k) - math.comb(rest - size, k)
            expected += holds_top * passing / size
            above += size
        curve[k] = {"top1": expected / math.comb(total, k), "pass@k": pass_at_k(total, correct, k)}
    return curve


def _verifier_summary(entries: dict[str, tuple[Sequence, Sequence]]) -> dict:
    """Means over the problems in `entries` ({task_id: (scores, passed)})."""
    tasks = len(entries)
    n_min = min(len(scores) for scores, _ in entries.values())
    summary: dict = {
        "tasks": tasks,
        "candidates": sum(len(scores) for scores, _ in entries.values()),
        "top1": sum(top1(s, p) for s, p in entries.values()) / tasks,
        "pass@1": sum(pass_at_k(len(p), sum(map(bool, p)), 1) for _, p in entries.values()) / tasks,
        "pass@n": sum(any(p) for _, p in entries.values()) / tasks,
    }
    for k in RANK_KS:
        if k <= n_min:
            summary[f"rank@{k}"] = sum(rank_at_k(s, p, k) for s, p in entries.values()) / tasks
    summary["all_unknown"] = sum(all(v is None for v in scores) for scores, _ in entries.values())
    return summary


def summarize_rerank(per_problem: dict[str, dict[str, tuple[Sequence[float | None], Sequence[bool]]]],
                     problems: dict | None = None) -> dict:
    """Per-verifier reranking summary.

    Args:
        per_problem: {task_id: {verifier: (scores, passed)}}, one score and one label per candidate.
        problems: {task_id: Problem}, for `by_difficulty` / `by_tag` groups (as `raylib.evaluate.metrics.summarize`).

    Returns:
        {verifier: {"tasks", "candidates", "top1", "pass@1" (a random candidate), "pass@n" (any candidate passes:
        the ceiling), "rank@k" for k in 1, 5, 10, 20, ... up to the fewest candidates a task has (ties: expected),
        "all_unknown" (tasks whose scores are all None), and "by_difficulty" / "by_tag": {group: the same keys}}}.
        Rates are fractions in [0, 1] averaged over tasks.
    """
    by_verifier: dict[str, dict[str, tuple]] = defaultdict(dict)
    for task_id, verifiers in per_problem.items():
        for verifier, (scores, passed) in verifiers.items():
            _check(scores, passed)
            by_verifier[verifier][task_id] = (scores, passed)
    result = {}
    for verifier, entries in sorted(by_verifier.items()):
        summary = _verifier_summary(entries)
        if problems:
            summary.update(by_difficulty_and_tag(entries, problems, _verifier_summary))
        result[verifier] = summary
    return result
