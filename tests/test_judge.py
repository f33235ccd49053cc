"""The LLM judge (raylib.rerank.verifiers.judge): its answer parsers on real-looking and tricky answers, and the whole
verifier, pointwise and pairwise, against a real OpenAI-compatible HTTP server on 127.0.0.1 that judges by rule."""

from __future__ import annotations

import pytest

from raylib.data.problems import Problem
from raylib.generate.engines.base import EngineConfig, OpenAISettings
from raylib.rerank.base import Candidates
from raylib.rerank.verifiers.judge import (
    JudgeSettings,
    LLMJudge,
    pairwise_messages,
    parse_preference,
    parse_score,
    pointwise_messages,
)
from sandbox.schema import AssertionTests
from tests.judge_server import FAILING, MUDDLED, RIGHT, WRONG, JudgeServer

# ------------------------------------------------------------------------------------------------- parsers


@pytest.mark.parametrize("answer, rating", [
    ("The function adds its arguments and handles negatives.\nScore: 9", 9.0),
    ("It misses the empty list.\n\n**Score:** 3", 3.0),
    ("**Score: 7/10**", 7.0),
    ("Final score = 6 out of 10.", 6.0),
    ("Score: 6.5", 6.5),
    ("At first glance Score: 3, but the loop is right after all.\nScore: 8", 8.0),  # the last rating wins
    ("9", 9.0),
    ("**10**", 10.0),
])
def test_parse_score_reads_the_last_rating(answer, rating):
    assert parse_score(answer) == rating


@pytest.mark.parametrize("answer", [
    "The code looks correct.",             # no rating at all
    "I will end with Score: N.",           # the format echoed, no number
    "Score: 7-8",                          # a range
    "Score: 85/100",                       # another scale
    "Score: 0", "Score: 11",               # off the 1-10 scale
    "subscore: 4",                         # not the word score
    "",
])
def test_parse_score_gives_none_without_a_clear_rating(answer):
    assert parse_score(answer) is None


@pytest.mark.parametrize("answer, verdict", [
    ("Code A forgets the empty list; Code B handles it.\nAnswer: B", "B"),
    ("**Answer:** **Code A**", "A"),
    ("Final answer: [CODE_B]", "B"),
    ("Verdict: B.", "B"),
    ("Both work, but B is shorter.\n\n**B**", "B"),                        # a last line that is only a letter
    ("(A)", "A"),
    ("I'll reply 'Answer: A' or 'Answer: B'.\nA has an off-by-one.\nAnswer: B", "B"),  # the last verdict wins
    ("Answer: A\n\nWait, A crashes on []. Answer: B", "B"),
    ("The answer is A.", "A"),
    ("[RESULT]\n[CODE_B] is better than [CODE_A] on the mentioned criteria.", "B"),  # CodeFavor's own format
    ("Code A is not better than Code B. Code B is slightly better.", "B"),  # a negated sentence does not count
    ("Both are plausible; I prefer Code A.", "A"),
    ("Answer: B (Code B is better than Code A)", "B"),
])
def test_parse_preference_reads_the_verdict(answer, verdict):
    assert parse_preference(answer) == verdict


@pytest.mark.parametrize("answer", [
    "Answer: A or B",                                # both named: undecided
    "Verdict: A/B",
    "Answer: neither, both are wrong",               # an explicit verdict with no letter
    "Answer: B\nHmm, on reflection: Answer: A or B",  # the last verdict is undecided
    "a is better than b",                            # lower-case letters are words, not verdicts
    "Code A is not better.",
    "Both programs are equally good.",
    "",
])
def test_parse_preference_gives_none_when_undecided(answer):
    assert parse_preference(answer) is None


def test_prompts_show_the_task_the_programs_and_the_answer_format():
    [pointwise] = pointwise_messages("Add two numbers.\n", "def add(a, b):\n    return a + b\n")
    assert pointwise["role"] == "user"
    assert "## Task\nAdd two numbers.\n" in pointwise["content"]
    assert "```python\ndef add(a, b):\n    return a + b\n```" in pointwise["content"]
    assert pointwise["content"].endswith("Score: N\nwhere N is a whole number from 1 (surely wrong) to 10 (surely "
                                         "correct).")
    [pairwise] = pairwise_messages("Add.", "x = 1", "y = 2", language="javascript")
    text = pairwise["content"]
    assert text.index("## Code A\n```javascript\nx = 1\n```") < text.index("## Code B\n```javascript\ny = 2\n```")
    assert text.endswith("Answer: A\nAnswer: B")


# ------------------------------------------------------------------------------------------------- a judge server

def make_judge(url: str, **settings) -> LLMJudge:
    engine = EngineConfig(backend="openai", model="judge-test",
                          openai=OpenAISettings(base_url=url, retries=0, concurrency=4))
    return LLMJudge(JudgeSettings(engine=engine, **settings))


def problem(task_id: str = "add/0") -> Problem:
    return Problem(task_id=task_id, prompt='def add(a, b):\n    """Return a plus b."""\n',
                   tests=AssertionTests(assertions=["assert add(1, 2) == 3"]))


def values(scores):
    return [s.value for s in scores]


# ------------------------------------------------------------------------------------------------- pointwise


def test_pointwise_scores_normalise_the_rating_and_mark_unreadable_or_failed_answers(judge_url):
    judge = make_judge(judge_url, mode="pointwise")
    try:
        calls = []
        generate = judge.engine.generate
        judge.engine.generate = lambda requests: calls.append(len(requests)) or generate(requests)
        first, second = judge.score([Candidates(problem("add/0"), [RIGHT, WRONG, MUDDLED]),
                                     Candidates(problem("add/1"), [FAILING, RIGHT])])
    finally:
        judge.close()
    assert calls == [5]  # the whole batch in one generate call
    # rating N on 1..10 -> (N - 1) / 9: 9 -> 8/9, 2 -> 1/9
    assert values(first) == [pytest.approx(8 / 9), pytest.approx(1 / 9), None]
    assert first[0].details == {"rating": 9.0, "parsed": True}
    assert first[2].details == {"parsed": False, "answer": "Hard to say what this does."}
    # the failed request is unreadable; the rest of the batch is scored
    assert second[0].value is None and not second[0].details["parsed"] and "HTTP 400" in second[0].details["error"]
    assert second[1].value == pytest.approx(8 / 9)


# ------------------------------------------------------------------------------------------------- pairwise


def test_pairwise_copeland_by_hand_with_an_undecided_verdict_as_a_tie(judge_url):
    judge = make_judge(judge_url, mode="pairwise", max_comparisons=None)
    try:
        [scores] = judge.score([Candidates(problem(), [WRONG, RIGHT, MUDDLED])])
    finally:
        judge.close()
    # pairs (0,1), (0,2), (1,2), each asked twice (either program as Code A): 6 requests
    # (0,1): RIGHT is preferred in both orders -> 1 beats 0
    # (0,2) and (1,2): MUDDLED makes both answers unreadable -> half a vote each way -> ties
    # Copeland (wins - losses): 0: 0 - 1 = -1; 1: 1 - 0 = 1; 2: 0
    assert len(JudgeServer.asked) == 6
    assert values(scores) == [-1, 1, 0]
    assert scores[0].details == {"wins": 0, "losses": 1, "ties": 1, "comparisons": 4, "unreadable": 2}
    assert scores[1].details == {"wins": 1, "losses": 0, "ties": 1, "comparisons": 4, "unreadable": 2}
    assert scores[2].details == {"wins": 0, "losses": 0, "ties": 2, "comparisons": 4, "unreadable": 4}


def test_pairwise_a_judge_that_always_names_code_a_ties_every_pair(judge_url):
    JudgeServer.biased = True
    judge = make_judge(judge_url, mode="pairwise", max_comparisons=None)
    try:
        [scores] = judge.score([Candidates(problem(), [WRONG, RIGHT, MUDDLED])])
    finally:
        judge.close()
    # each pair: i wins as A (vote 1), loses as B (vote 0): 1 + 0 = one vote of two -> a tie
    assert values(scores) == [0, 0, 0]
    assert all(s.details == {"wins": 0, "losses": 0, "ties": 2, "comparisons": 4, "unreadable": 0} for s in scores)


def test_pairwise_cap_limits_the_requests_per_problem(judge_url):
    judge = make_judge(judge_url, mode="pairwise", max_comparisons=4, seed=3)
    try:
        [capped] = judge.score([Candidates(problem(), [WRONG, RIGHT, WRONG, RIGHT])])
    finally:
        judge.close()
    # 4 candidates have 6 pairs (12 requests); the cap of 4 comparisons leaves 2 pairs, each asked twice
    assert len(JudgeServer.asked) == 4
    assert sum(s.details["comparisons"] for s in capped) == 2 * 4  # each request compares two candidates
    assert sum(values(capped)) == 0  # every win is someone's loss


def test_pairwise_one_failing_request_does_not_break_the_batch(judge_url):
    judge = make_judge(judge_url, mode="pairwise", max_comparisons=None)
    try:
        failing, other = judge.score([Candidates(problem("add/0"), [FAILING, RIGHT]),
                                      Candidates(problem("add/1"), [RIGHT, WRONG])])
    finally:
        judge.close()
    # add/0, pair (0,1): FAILING as Code A -> HTTP 400 -> half a vote; as Code B, RIGHT (Code A) is preferred -> 0.
    # 0.5 + 0 < 1: candidate 1 wins
    assert len(JudgeServer.asked) == 4
    assert values(failing) == [-1, 1]
    assert failing[0].details == {"wins": 0, "losses": 1, "ties": 0, "comparisons": 2, "unreadable": 1}
    assert values(other) == [1, -1]


def test_pairwise_one_candidate_needs_no_request(judge_url):
    judge = make_judge(judge_url, mode="pairwise")
    try:
        assert values(judge.score([Candidates(problem(), [RIGHT])])[0]) == [0]
        assert judge.score([]) == []
    finally:
        judge.close()
    assert JudgeServer.asked == []


def test_settings_default_to_the_embedded_model_on_vllm_and_reject_unknown_fields():
    settings = JudgeSettings()
    assert (settings.engine.backend, settings.engine.model, settings.mode, settings.temperature) == (
        "vllm", "embedded", "pointwise", 0.0)
    with pytest.raises(ValueError):
        JudgeSettings(judge_mode="pairwise")


def test_an_endpoint_that_is_down_leaves_scores_for_the_next_run():
    import socket

    from raylib.rerank.base import RETRY

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for mode in ("pointwise", "pairwise"):
        judge = make_judge(f"http://127.0.0.1:{port}/v1", mode=mode)
        try:
            [scores] = judge.score([Candidates(problem(), [RIGHT, WRONG])])
        finally:
            judge.close()
        assert all(s.details.get(RETRY) for s in scores), (mode, scores)
