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

__all__ = ["RULES", "ase_metrics", "choices", "judge_outputs", "prefix_match", "report_markdown", "reward_pairs",
           "selector_rows", "summarize"]


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


RULES = ("first", "majority", "reward", "rvbs")
_RULE_NAMES = {"first": "plain sampling (first prediction)", "majority": "majority vote",
               "reward": "reward model's best", "rvbs": "RVBS"}


def summarize(items: list[dict], judged: dict[str, dict], picks: dict[str, dict[str, int]]) -> dict:
    """ase_summary.json: per rule, ASE and its breakdowns over the judged items, from the prediction the rule picked
    (`picks[item_id][rule]`); `ase` is plain sampling's; `mean_over_samples` the expected ASE of one sample."""
    rules = [r for r in RULES if all(r in picks[i] for i in judged)] if judged else ["first"]
    by_rule = {rule: ase_metrics(items, {i: judged[i]["correct"][picks[i][rule]] for i in judged}) for rule in rules}
    samples = [c for j in judged.values() for c in j["correct"]]
    parsed = [a is not None for j in judged.values() for a in j["answers"]]
    n = max((len(j["correct"]) for j in judged.values()), default=0)
    return {"ase": by_rule["first"]["ase"], "items": len(judged), "n": n,
            "mean_over_samples": sum(samples) / len(samples) if samples else None,
            "parse_failure_rate": 1 - sum(parsed) / len(parsed) if parsed else None,
            "rules": by_rule}


def report_markdown(summary: dict, title: str) -> str:
    def pct(value) -> str:
        return "-" if value is None else f"{100 * value:.1f}"

    lines = [f"# {title}", "",
             f"{summary['items']} items, {summary['n']} prediction(s) each; "
             f"{pct(summary['parse_failure_rate'])}% of predictions do not parse; one sample is right "
             f"{pct(summary['mean_over_samples'])}% of the time.", "",
             "| choice | ASE | sequential | branch | exception | prefix mean | >=50% | >=80% | 100% |",
             "|---|---|---|---|---|---|---|---|---|"]
    for rule, m in summary["rules"].items():
        p = m["prefix_match"]
        lines.append(f"| {_RULE_NAMES[rule]} | {pct(m['ase'])} | {pct(m['accuracy_sequential'])} | "
                     f"{pct(m['accuracy_branch'])} | {pct(m['accuracy_exception'])} | {pct(p['mean'])} | "
                     f"{pct(p['at_least_50'])} | {pct(p['at_least_80'])} | {pct(p['complete'])} |")
    traces = next(iter(summary["rules"].values()))["prefix_match"]["traces"]
    lines += ["", f"Percentages. Prefix match over {traces} complete traces whose every step is an item "
              "(teacher-forced: each step predicted from the true state)."]
    return "\n".join(lines) + "\n"


def reward_pairs(items: list[dict], outputs: dict[str, list[str]], judged: dict[str, dict], per_item: int = 4,
                 seed: int = 0) -> list[dict]:
    """Bradley-Terry pairs for the reward model (jobs/train_rm.py): per item, a right prediction (the trace's own
    answer when no sample is right) against a wrong one, up to `per_item` pairs, each wrong text once. The prompt is
    the item's short context (raylib.trace.items.reward_prompt), which jobs/ase.py scores with too."""
    import random

    from raylib.trace.items import reward_prompt

    rng = random.Random(seed)
    pairs = []
    for item in items:
        j = judged.get(item["item_id"])
        if j is None:
            continue
        texts = outputs[item["item_id"]]
        right = sorted({t for t, ok in zip(texts, j["correct"]) if ok}) or [item["output"]]
        wrong = sorted({t for t, ok in zip(texts, j["correct"]) if not ok})
        rng.shuffle(wrong)
        for k, rejected in enumerate(wrong[:per_item]):
            pairs.append({"prompt": reward_prompt(item), "chosen": right[k % len(right)], "rejected": rejected,
                          "task_id": item["program_id"]})
    return pairs


def selector_rows(judged: dict[str, dict], scores: dict[str, list[float]]) -> list[dict]:
    """jobs/train_selector.py's per-candidate rows: the item is the task, the parsed answer the group."""
    rows = []
    for item_id, j in judged.items():
        for answer, ok, score in zip(j["answers"], j["correct"], scores[item_id]):
            rows.append({"task_id": item_id, "answer": answer.key if answer is not None else "None", "score": score,
                         "passed": bool(ok)})
    return rows
