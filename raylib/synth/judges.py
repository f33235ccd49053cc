"""The judges a bench asks which of two programs is better: a pairwise classifier (jobs/train_pref.py's model), a
scalar reward model (jobs/train_rm.py's), or an LLM with CodeFavor's generative prompt through any engine.

    from raylib.synth.judges import BenchJudgeSettings, make_judge, parse_result
    judge = make_judge(BenchJudgeSettings(kind="pair-rm", model="runs/pref/model"))
    judge.decide([{"instruction": ..., "criteria": ..., "code_a": ..., "code_b": ..., "language": "python"}])
        # [{"verdict": "A" | "B" | None, "detail": {...}}, ...], one per question, in order
    parse_result("... [RESULT]\\n[CODE_B] is better than [CODE_A] on the criteria.")    # "B"

pair-rm: the classifier reads raylib.train.data.reward.preference_prompt (task, criteria, code A, code B); its
class-0 logit says "A is better", class-1 "B": the larger decides, equal ones decide nothing (detail: logits). rm:
each program scored beside `task_text(instruction, criteria)`; the higher score wins, equal scores decide nothing
(detail: scores). llm: the prompt of raylib/synth/prompts/codefavor_judge.yaml, the answer read by `parse_result`
(detail: the answer's end; an engine error as "error", with "retry" when the endpoint failed; an answer cut at
max_tokens before its [RESULT] decides nothing, "cut"). Models and engines
are loaded when a judge is built (torch, transformers, vLLM imported there).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from raylib.config import Section
from raylib.generate.engines.base import EngineConfig, engine_model_from

__all__ = ["BenchJudgeSettings", "JUDGES", "make_judge", "parse_result"]

JUDGES = ("pair-rm", "rm", "llm")
ANSWER_EXCERPT_CHARS = 300


class BenchJudgeSettings(Section):
    kind: Literal["pair-rm", "rm", "llm"] = Field("pair-rm", description="pair-rm: a pairwise classifier "
                                                  "(jobs/train_pref.py); rm: a scalar reward model "
                                                  "(jobs/train_rm.py); llm: a generative judge through an engine.")
    model: str = Field(..., description="pair-rm / rm: the model directory; llm: the engine's model ('embedded', a "
                       "directory, or the name an OpenAI-compatible server serves).")
    engine: EngineConfig = Field(default_factory=EngineConfig, description="llm: the engine (backend vllm, hf or "
                                 "openai, its endpoint and concurrency); engine.model is taken from model.")
    prompts: str | None = Field(None, description="llm: a prompt file like raylib/synth/prompts/codefavor_judge.yaml; "
                                "None: that one.")
    batch_size: int = Field(16, ge=1, description="pair-rm / rm: sequences per forward pass.")
    max_length: int = Field(1024, ge=16, description="pair-rm / rm: tokens per input; longer programs are cut.")
    max_tokens: int = Field(512, ge=1, description="llm: longest answer (feedback and result), tokens.")
    temperature: float = Field(0.0, ge=0, le=10, description="llm: sampling temperature (CodeFavor: 0, greedy).")
    seed: int = Field(0, description="llm: base seed of the sampling.")

    @model_validator(mode="before")
    @classmethod
    def _engine_model(cls, data):
        return engine_model_from(data)


def _letter(first: float, second: float) -> str | None:
    return "A" if first > second else "B" if second > first else None


class _PairRM:
    def __init__(self, settings: BenchJudgeSettings):
        from raylib.rerank.settings import ModelVerifierSettings
        from raylib.rerank.verifiers.models import PairwisePreference

        self.model = PairwisePreference(ModelVerifierSettings(model=settings.model, batch_size=settings.batch_size,
                                                              max_length=settings.max_length))

    def decide(self, questions: list[dict]) -> list[dict]:
        inputs = [self.model.encode_preference(q["instruction"], q["code_a"], q["code_b"], q["criteria"])
                  for q in questions]
        return [{"verdict": _letter(row[0], row[1]), "detail": {"logits": [round(v, 6) for v in row]}}
                for row in self.model.logits(inputs)]


class _RM:
    def __init__(self, settings: BenchJudgeSettings):
        from raylib.rerank.settings import ModelVerifierSettings
        from raylib.rerank.verifiers.models import RewardModel

        self.model = RewardModel(ModelVerifierSettings(model=settings.model, batch_size=settings.batch_size,
                                                       max_length=settings.max_length))

    def decide(self, questions: list[dict]) -> list[dict]:
        from raylib.train.data.reward import task_text

        texts = {}
        for q in questions:  # each distinct (task, program) scored once: both orders of a task share them
            task = task_text(q["instruction"], q["criteria"])
            for code in (q["code_a"], q["code_b"]):
                texts.setdefault((task, code), len(texts))
        values = self.model.values(list(texts))
        out = []
        for q in questions:
            task = task_text(q["instruction"], q["criteria"])
            a, b = values[texts[(task, q["code_a"])]], values[texts[(task, q["code_b"])]]
            out.append({"verdict": _letter(a, b), "detail": {"scores": [round(a, 6), round(b, 6)]}})
        return out


class _LLM:
    def __init__(self, settings: BenchJudgeSettings):
        from raylib.generate.engines import make_engine
        from raylib.synth.prompts import load_prompts

        self.settings = settings
        self.prompts = load_prompts("codefavor_judge", settings.prompts)
        self.engine = make_engine(settings.engine.model_copy(update={"model": settings.model}))

    def decide(self, questions: list[dict]) -> list[dict]:
        from raylib.generate.engines.base import GenerationRequest, SamplingParams

        s = self.settings
        params = SamplingParams(n=1, temperature=s.temperature, max_tokens=s.max_tokens, seed=s.seed)
        requests = [GenerationRequest(messages=self.prompts.messages(self.prompts.fill(
            "judge", instruction=q["instruction"].strip(), code_a=q["code_a"].rstrip(), code_b=q["code_b"].rstrip(),
            criteria=q["criteria"].strip(), language=q.get("language", "python"))), params=params,
            key=q.get("key", "")) for q in questions]
        out = []
        for result in self.engine.generate(requests) if requests else []:
            if result.error or not result.outputs:
                detail = {"error": result.error or "no output"}
                out.append({"verdict": None, "detail": {**detail, "retry": True} if result.retryable else detail})
                continue
            output = result.outputs[0]
            detail = {"answer": output.text[-ANSWER_EXCERPT_CHARS:]}
            if output.finish_reason == "length" and not _RESULT.search(output.text):
                # cut off before its [RESULT]: what it said so far is feedback, not a verdict
                out.append({"verdict": None, "detail": {**detail, "cut": True}})
                continue
            out.append({"verdict": parse_result(output.text), "detail": detail})
        return out


def make_judge(settings: BenchJudgeSettings):
    """The judge of `settings.kind`, its model loaded (heavy imports happen here)."""
    return {"pair-rm": _PairRM, "rm": _RM, "llm": _LLM}[settings.kind](settings)


_CODE = re.compile(r"\bCODE[\s_-]*([AB])\b")
_RESULT = re.compile(r"\[RESULT\]|\bRESULT\b|\bResult\b")
_ANSWER_LINE = re.compile(r"^[\s*_#]*(?:final\s+)?(?:answer|verdict)[\s*_]*[:=][\s*_\[]*(?:code[\s_-]?)?([AB])\b"
                          r"[\]*_.\s]*$", re.IGNORECASE | re.MULTILINE)
_COMPARISON = re.compile(r"\b(BETTER|SUPERIOR|PREFERABLE|PREFERRED|WORSE|INFERIOR|OUTPERFORMS?|BEATS?)\b")
_NEGATED = re.compile(r"\b(NOT|NO|NEITHER|NOR|NEVER)\b|N'T\b")
_OTHER = {"A": "B", "B": "A"}


def _comparison_verdict(s: str, m: re.Match) -> tuple[str | None, int]:
    """(letter, confidence) of one comparison word in sentence `s` (upper case): the code named nearest before it is
    the subject ("Compared with A, B is better" -> B); "X is better than Y" / "X outperforms Y" (the other code right
    after it) decides with confidence 2, a subject alone with 1; "worse" / "inferior" name the other one; a negation
    between the subject and the word decides nothing."""
    before = list(_CODE.finditer(s, 0, m.start()))
    after = list(_CODE.finditer(s, m.end()))
    word = m.group(1)
    flips = word in ("WORSE", "INFERIOR")
    if not before or "NEITHER" in s:
        return None, 0
    subject = before[-1]
    if _NEGATED.search(s, subject.end(), m.start()):
        return None, 0
    letter = _OTHER[subject.group(1)] if flips else subject.group(1)
    direct = word.startswith(("OUTPERFORM", "BEAT"))
    than = re.match(r"\s*(?:THAN|TO)\b", s[m.end():]) or direct
    if than and after and after[0].group(1) != subject.group(1):
        return letter, 2
    return letter, 1


def parse_result(text: str) -> str | None:
    """The program an LLM judge's answer prefers, "A" or "B", or None (counted half on a bench).

    As CodeFavor reads its judge: the text after the last "[RESULT]" / "RESULT" / "Result" (the whole answer when it
    has none), sentence by sentence from the last: "[CODE_A] is better than [CODE_B]" (also "Code A", "CODE-A";
    "outperforms"; "worse" / "inferior" read the other way) decides with confidence 2, a sentence naming its subject
    code and "better" with confidence 1; an earlier sentence replaces the choice only with higher confidence.
    Negated comparisons ("is not better", "neither") decide nothing. Without any deciding sentence, the last
    explicit "Answer: A" / "Verdict: [CODE_B]" line decides.
    """
    text = text.replace("\r\n", "\n")
    result = _RESULT.split(text)[-1]
    choice, confidence = None, 0
    for sentence in reversed(re.split(r"(?<!\d)\.(?!\d)|\n", result)):
        upper = sentence.upper()
        for m in _COMPARISON.finditer(upper):
            letter, strength = _comparison_verdict(upper, m)
            if strength > confidence:
                choice, confidence = letter, strength
    if choice is not None:
        return choice
    answers = _ANSWER_LINE.findall(text)
    return answers[-1].upper() if answers else None
