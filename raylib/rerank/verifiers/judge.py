"""An LLM as the judge of candidate programs, over any generation engine (vLLM, transformers, an OpenAI-compatible
endpoint): pointwise (a correctness rating per program) or pairwise (CodeFavor's generative judge: which of two
programs is better, every pair asked in both orders, Copeland scores).

    from raylib.rerank.base import Candidates
    from raylib.rerank.verifiers.judge import JudgeSettings, LLMJudge
    judge = LLMJudge(JudgeSettings(mode="pairwise", max_comparisons=12,
                                   engine={"backend": "openai", "model": "my-judge",
                                           "openai": {"base_url": "http://127.0.0.1:8000/v1"}}))
    scores = judge.score([Candidates(problem, programs)])   # [[Score, ...]]: one per program, in order
    judge.close()

Pointwise: one request per program (`pointwise_messages`); the answer ends with a line "Score: N", N from 1 (surely
wrong) to 10 (surely correct), read by `parse_score`. value = (N - 1) / 9 in [0, 1]; details {"rating": N,
"parsed": true}, or value None and {"parsed": false, "answer": the answer's last 300 characters, "error"?} when no
rating can be read or the request failed.

Pairwise: the pairs of `raylib.rerank.selection.round_robin_pairs` (at most `max_comparisons` requests per problem,
both orders counted), each asked twice, once with either program as Code A (`pairwise_messages`); the answer ends
with "Answer: A" or "Answer: B", read by `parse_preference`. A vote goes to the program named; an unreadable verdict or
a failed request is a tie (half a vote each), so a judge that always names the same position leaves every pair tied.
A pair is won by the program with more than one of its two votes, else tied. value = the candidate's Copeland score,
wins - losses over its pairs (`raylib.rerank.selection.copeland_scores`); details {"wins", "losses", "ties" (pairs),
"comparisons" (requests it was in: 2 per pair), "unreadable" (of those, verdicts unreadable or failed)}.

Every request of a batch goes to the engine in ONE `generate` call (the engine batches them). Plain Python here: the
engine's heavy imports happen in `make_engine`, when an LLMJudge is built.
"""

from __future__ import annotations

import re
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from raylib.generate.engines.base import EngineConfig, GenerationRequest, GenerationResult, SamplingParams
from raylib.rerank.base import RETRY, Candidates, Score
from raylib.rerank.selection import copeland_scores, copeland_tallies, round_robin_pairs

__all__ = ["RATING_SCALE", "JudgeSettings", "LLMJudge", "pairwise_messages", "parse_preference", "parse_score",
           "pointwise_messages"]

RATING_SCALE = (1, 10)  # pointwise ratings: 1 = surely wrong, 10 = surely correct
ANSWER_EXCERPT_CHARS = 300  # how much of an unreadable answer a Score keeps (its end: where the verdict should be)

CRITERION = ("The better program is directly runnable, correct on every valid input (edge cases included) and "
             "free of bugs for the task.")

POINTWISE_TEMPLATE = """\
You review a candidate solution to a programming task. Judge only whether it is correct: directly runnable, correct \
on every valid input (edge cases included) and free of bugs. Style and speed do not matter.

## Task
{task}

## Candidate program
```{language}
{program}
```

First reason briefly about whether the program is correct. Then finish with one last line of exactly this form:
Score: N
where N is a whole number from 1 (surely wrong) to 10 (surely correct)."""

PAIRWISE_TEMPLATE = """\
You compare two candidate solutions, Code A and Code B, to a programming task, and decide which one better meets \
the criterion.

## Task
{task}

## Code A
```{language}
{code_a}
```

## Code B
```{language}
{code_b}
```

## Criterion
{criterion}

First give brief feedback on how well each program meets the criterion. Then finish with one last line of exactly \
one of these two forms, naming the better program (choose one even when they look equally good or bad):
Answer: A
Answer: B"""


class JudgeSettings(BaseModel):
    """An LLM judge: which engine, which mode, and how it samples."""

    model_config = ConfigDict(extra="forbid")

    engine: EngineConfig = Field(default_factory=EngineConfig, description="The judge model's engine (default: vllm "
                                 "with the embedded SmolLM2; backend openai for a served or hosted judge).")
    mode: Literal["pointwise", "pairwise"] = Field("pointwise", description="pointwise: a 1-10 correctness rating "
                                                   "per program; pairwise: Copeland score of A/B verdicts over pairs "
                                                   "of programs, each pair asked in both orders.")
    max_comparisons: int | None = Field(64, ge=2, description="Pairwise: most requests per problem (each pair is "
                                        "asked in both orders: 2 requests); None: every pair.")
    max_tokens: int = Field(512, ge=1, description="Most tokens of a judge's answer (its reasoning and verdict).")
    temperature: float = Field(0.0, ge=0, le=10, description="Sampling temperature of the judge; 0 is greedy.")
    seed: int = Field(0, description="Base seed of the judge's sampling (per request: derived from the problem, the "
                      "candidates and the order) and of which pairs are compared when max_comparisons leaves some "
                      "out.")
    actors: int = Field(1, ge=1, description="Judge actors (engine replicas) when run on Ray (read by the verifier "
                        "stage, not by LLMJudge).")
    gpus_per_actor: float | None = Field(None, ge=0, description="GPUs per judge actor on Ray; None: the engine's "
                                         "tensor_parallel_size when the cluster has GPUs, else 0 (CPU or HTTP).")
    cpus_per_actor: float = Field(1.0, gt=0, description="CPUs per judge actor on Ray.")


# ------------------------------------------------------------------------------------------------- prompts


def pointwise_messages(problem_prompt: str, program: str, language: str = "python") -> list[dict]:
    """The chat messages asking for a 1-10 correctness rating of `program` (a whole program) for the task."""
    text = POINTWISE_TEMPLATE.format(task=problem_prompt.strip(), language=language, program=program.rstrip())
    return [{"role": "user", "content": text}]


def pairwise_messages(problem_prompt: str, code_a: str, code_b: str, language: str = "python") -> list[dict]:
    """The chat messages asking which of two programs better solves the task (CodeFavor's generative judge)."""
    text = PAIRWISE_TEMPLATE.format(task=problem_prompt.strip(), language=language, code_a=code_a.rstrip(),
                                    code_b=code_b.rstrip(), criterion=CRITERION)
    return [{"role": "user", "content": text}]


# ------------------------------------------------------------------------------------------------- parsing

_MARKUP = r"[\s*_`\"'(\[]*"  # markdown emphasis, quotes and brackets around a verdict
_RATING = re.compile(r"\bscore\b[\s*_`]*[:=][\s*_`]*(\d+(?:\.\d+)?)(?:\s*(?:/|out\s+of)\s*(\d+))?", re.IGNORECASE)
_RANGE_AFTER = re.compile(r"\s*(?:-|–|to\b)\s*\d")
_BARE_RATING = re.compile(r"[\s*_`]*(\d+(?:\.\d+)?)(?:\s*/\s*10)?[\s*_`.]*")


def parse_score(text: str) -> float | None:
    """The judge's rating on RATING_SCALE (1-10), or None when the answer gives none.

    Read from the LAST "Score: N" in the answer (case-insensitive; markdown such as "**Score:** 8" and "Score: 8/10"
    or "8 out of 10" allowed; decimals kept), or from an answer that is only a number ("9", "**7**"). None when there
    is neither, when the last rating is out of 1-10, on another scale ("Score: 85/100") or a range ("Score: 7-8").
    """
    matches = list(_RATING.finditer(text))
    if matches:
        last = matches[-1]
        if last.group(2) is not None and last.group(2) != "10":
            return None
        if _RANGE_AFTER.match(text, last.end()):
            return None
        number = float(last.group(1))
    else:
        bare = _BARE_RATING.fullmatch(text.strip())
        if bare is None:
            return None
        number = float(bare.group(1))
    low, high = RATING_SCALE
    return number if low <= number <= high else None


_LETTER = r"(?i:\[?code[\s_-]?)?([AB])(?![A-Za-z0-9])"  # "A", "Code B", "[CODE_A]", "code_b": the letter uppercase
_VERDICT = re.compile(r"\b(?:answer|verdict)\b[\s*_`]*[:=]([^\n]*)", re.IGNORECASE)
_ANSWER_IS = re.compile(r"\b(?i:answer|verdict|choice)\s+is\b:?(" + _MARKUP + _LETTER + r"[^\n]*)")
_VERDICT_LETTER = re.compile(_MARKUP + _LETTER)
_SECOND_LETTER = re.compile(r"[\s*_`\"')\]]*(?:\b(?i:or|and|vs)\b\.?|[/,&|])" + _MARKUP + _LETTER)
_BARE_LETTER = re.compile(r"[\W_]*" + _LETTER + r"[\W_]*")
_BETTER = re.compile(r"(?i:code)[\s_-]?([AB])(?![A-Za-z0-9])[\]*_`\"']*\s+(?i:is|seems|looks)\s+"
                     r"((?:\w+\s+){0,2}?)(?i:better|superior|preferable|more\s+correct)")
_CHOSEN = re.compile(r"\b(?i:prefer|choose|pick|select|recommend)\w*\s+" + _MARKUP + r"(?i:code)[\s_-]?([AB])"
                     r"(?![A-Za-z0-9])")
_NEGATION = re.compile(r"\bnot\b|n't\b|\bno\b", re.IGNORECASE)


def _verdict(rest: str) -> str | None:
    """The letter that the text after "Answer:" starts with, None when there is none or it is "A or B"."""
    first = _VERDICT_LETTER.match(rest)
    if first is None or _SECOND_LETTER.match(rest, first.end()):
        return None
    return first.group(1)


def parse_preference(text: str) -> Literal["A", "B"] | None:
    """Which program the judge prefers, "A" or "B", or None when the answer does not say (counted as a tie).

    Explicit verdicts, the last one winning: a line "Answer: B" (also "Verdict:", "Final answer:", markdown and
    "Code B" / "[CODE_B]" allowed, e.g. "**Answer:** **Code B**"), "the answer is B", and a last line that is only a
    letter ("**B**", "(A)", "Code A."). A verdict line naming no letter ("Answer: neither"), or both ("Answer: A or
    B", "A/B"), makes the answer undecided (None). Without any explicit verdict, the last sentence naming a better
    program decides ("Code A is better than Code B", "[CODE_B] is slightly better", "I prefer Code A"; negated ones
    such as "Code A is not better" are ignored). Only capital A and B count as letters, so the article "a" is never
    read as a verdict.
    """
    explicit = [(m.start(), _verdict(m.group(1))) for m in (*_VERDICT.finditer(text), *_ANSWER_IS.finditer(text))]
    lines = [line for line in text.splitlines() if line.strip()]
    bare = _BARE_LETTER.fullmatch(lines[-1]) if lines else None
    if bare is not None:
        explicit.append((len(text), bare.group(1)))
    if explicit:
        return max(explicit, key=lambda e: e[0])[1]
    phrases = [(m.start(), m.group(1)) for m in _BETTER.finditer(text) if not _NEGATION.search(m.group(2))]
    phrases += [(m.start(), m.group(1)) for m in _CHOSEN.finditer(text)
                if not _NEGATION.search(text[max(0, m.start() - 12):m.start()])]
    return max(phrases, key=lambda e: e[0])[1] if phrases else None


# ------------------------------------------------------------------------------------------------- the verifier


def _answer(result: GenerationResult) -> tuple[str, str, bool]:
    """A result's answer text, its error ("" when it ran; a failed request has no text) and whether the error was
    the endpoint's (worth asking again on the next run)."""
    if result.error or not result.outputs:
        return "", result.error or "no output", result.retryable
    return result.outputs[0].text, "", False


class LLMJudge:
    """The Verifier of an LLM judge (see the module docstring): builds its engine once, in `__init__`."""

    def __init__(self, settings: JudgeSettings, name: str = "judge"):
        from raylib.generate.engines import make_engine

        self.settings, self.name = settings, name
        self.engine = make_engine(settings.engine)

    def score(self, batch: Sequence[Candidates]) -> list[list[Score]]:
        if self.settings.mode == "pointwise":
            return self._pointwise(batch)
        return self._pairwise(batch)

    def close(self) -> None:
        self.engine.close()

    def _params(self) -> SamplingParams:
        s = self.settings
        return SamplingParams(n=1, temperature=s.temperature, max_tokens=s.max_tokens, seed=s.seed)

    def _pointwise(self, batch: Sequence[Candidates]) -> list[list[Score]]:
        params = self._params()
        requests = [GenerationRequest(messages=pointwise_messages(c.problem.prompt, program, c.problem.language),
                                      params=params, key=f"{c.problem.task_id}#{i}")
                    for c in batch for i, program in enumerate(c.programs)]
        answers = iter(self.engine.generate(requests) if requests else [])
        scores = []
        for c in batch:
            row = []
            for _ in c.programs:
                text, error, retry = _answer(next(answers))
                rating = None if error else parse_score(text)
                if rating is None:
                    details = {"parsed": False, "answer": text[-ANSWER_EXCERPT_CHARS:]}
                    details.update({"error": error} if error else {})
                    row.append(Score(None, {**details, RETRY: True} if retry else details))
                else:
                    low, high = RATING_SCALE
                    row.append(Score((rating - low) / (high - low), {"rating": rating, "parsed": True}))
            scores.append(row)
        return scores

    def _pairwise(self, batch: Sequence[Candidates]) -> list[list[Score]]:
        params, s = self._params(), self.settings
        pairs_of = [round_robin_pairs(len(c.programs), s.max_comparisons, s.seed) for c in batch]
        requests = []
        for c, pairs in zip(batch, pairs_of):
            p = c.problem
            for i, j in pairs:
                for a, b in ((i, j), (j, i)):  # both orders: i as Code A, then i as Code B
                    requests.append(GenerationRequest(
                        messages=pairwise_messages(p.prompt, c.programs[a], c.programs[b], p.language),
                        params=params, key=f"{p.task_id}#{a}-{b}"))
        answers = iter(self.engine.generate(requests) if requests else [])
        scores = []
        for c, pairs in zip(batch, pairs_of):
            n = len(c.programs)
            unreadable, outcomes, retry = [0] * n, [], set()
            for i, j in pairs:
                votes = []  # that i is better: when shown as A, then when shown as B
                for i_letter in ("A", "B"):
                    text, error, endpoint_failed = _answer(next(answers))
                    if endpoint_failed:
                        retry.update((i, j))
                    verdict = None if error else parse_preference(text)
                    votes.append(0.5 if verdict is None else float(verdict == i_letter))
                    if verdict is None:
                        unreadable[i] += 1
                        unreadable[j] += 1
                outcomes.append((i, j, *votes))
            values = copeland_scores(n, outcomes)
            tally = [{**t, "unreadable": u} for t, u in zip(copeland_tallies(n, outcomes), unreadable)]
            scores.append([Score(value, {**t, RETRY: True} if k in retry else t)
                           for k, (value, t) in enumerate(zip(values, tally))])
        return scores
