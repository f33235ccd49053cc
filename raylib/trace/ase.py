"""ASE (LLMExecutor's accuracy of single-step execution), its breakdowns, the whole-program prefix match, and the
choices among N predictions (plain, majority, reward model, RVBS). Pure functions over items and answer texts.

    from raylib.trace.ase import judge_outputs, ase_metrics, prefix_match, choices
    judged = judge_outputs(items, {item_id: [text, ...]})     # per item: parsed answers, correct flags, errors
    ase_metrics(items, {item_id: correct_of_the_chosen})     # {"ase", "items", "correct", "by_kind", ...}
    prefix_match(items, correct)                              # {"traces", "mean", "at_least_50", ...}

ASE = items whose predicted values dict and next statement both match the trace exactly / all items (a prediction
that does not parse is wrong). By kind: sequential accuracy counts completions with it, as LLMExecutor does
((true sequential + true completion) / (sequential + completion)); branch; exception (apart: LLMExecutor scores
those as wrong). Prefix match, per complete trace whose every step is an item: consecutive correct steps from the
first over the trace's length (teacher-forced: each step is predicted from the true state), with the rates of traces
at >= 50%, >= 80% and 100%.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from raylib.trace.answers import Answer, AnswerError, gold_answer, parse_answer

__all__ = ["ase_metrics", "choices", "judge_outputs", "prefix_match"]


def judge_outputs(items: list[dict], outputs: dict[str, list[str]]) -> dict[str, dict]:
    """{item_id: {"answers": [Answer | None], "correct": [bool], "errors": [str]}} for the items that have outputs."""
    judged = {}
    for item in items:
        texts = outputs.get(item["item_id"])
        if texts is None:
            continue
        gold = gold_answer(item)
        answers, correct, errors = [], [], []
        for text in texts:
            try:
                answer = parse_answer(text)
            except AnswerError as exc:
                answers.append(None)
                correct.append(False)
                errors.append(str(exc))
                continue
            answers.append(answer)
            correct.append(answer == gold)
            errors.append("")
        judged[item["item_id"]] = {"answers": answers, "correct": correct, "errors": errors}
    return judged


def ase_metrics(items: list[dict], correct: dict[str, bool]) -> dict:
    """ASE and its breakdowns over the items in `correct` ({item_id: whether the chosen prediction is right})."""
    kinds: Counter = Counter()
    right: Counter = Counter()
    scored = [item for item in items if item["item_id"] in correct]
    for item in scored:
        kinds[item["kind"]] += 1
        right[item["kind"]] += bool(correct[item["item_id"]])
    total = sum(kinds.values())

    def rate(*names: str) -> float | None:
        n = sum(kinds[k] for k in names)
        return sum(right[k] for k in names) / n if n else None

    return {"ase": sum(right.values()) / total if total else None, "items": total, "correct": sum(right.values()),
            "accuracy_sequential": rate("sequential", "completion"), "accuracy_branch": rate("branch"),
            "accuracy_exception": rate("exception"),
            "by_kind": {k: {"items": kinds[k], "correct": right[k]} for k in sorted(kinds)},
            "prefix_match": prefix_match(scored, correct)}


def prefix_match(items: list[dict], correct: dict[str, bool]) -> dict:
    steps: dict[str, dict[int, bool]] = defaultdict(dict)
    lengths: dict[str, int] = {}
    for item in items:
        if item["trace_complete"] and item["item_id"] in correct:
            steps[item["trace_id"]][item["step"]] = bool(correct[item["item_id"]])
            lengths[item["trace_id"]] = item["trace_steps"]
    fractions = []
    for trace_id, flags in steps.items():
        if len(flags) != lengths[trace_id]:
            continue  # a step is missing (its value was cut): no whole-program score for this trace
        run = 0
        while run < lengths[trace_id] and flags[run]:
            run += 1
        fractions.append(run / lengths[trace_id])
    n = len(fractions)
    return {"traces": n, "mean": sum(fractions) / n if n else None,
            "at_least_50": sum(f >= 0.5 for f in fractions) / n if n else None,
            "at_least_80": sum(f >= 0.8 for f in fractions) / n if n else None,
            "complete": sum(f >= 1.0 for f in fractions) / n if n else None}


def choices(answers: list[Answer | None], scores: list[float] | None = None, selector=None) -> dict[str, int]:
    """Which of N predictions each rule picks: first (plain sampling), majority (the largest group of identical
    answers; unparsable ones form one group, LLMExecutor's rule), reward (the highest score), rvbs (the group the
    selector gives the highest P(correct), over the groups' reward-score features; its first member)."""
    keys = [a.key if a is not None else "None" for a in answers]
    sizes = Counter(keys)
    picked = {"first": 0, "majority": keys.index(max(sizes, key=lambda k: (sizes[k], -keys.index(k))))}
    if scores is not None:
        picked["reward"] = max(range(len(scores)), key=lambda i: (scores[i], -i))
        if selector is not None:
            from raylib.rerank.selection import group_features
            from raylib.rerank.selector import select_group

            groups, rows, _ = group_features(keys, scores)
            picked["rvbs"] = keys.index(groups[select_group(selector, rows)])
    return picked
