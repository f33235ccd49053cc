"""Online verification and reranking: the bodies of POST /verify/execute, /verify/score and /rerank, and the pure
steps between them and the verifiers (finding the problem, making programs of candidates, ranking). No Ray here:
`serve/verifier.py` and `serve/rerank.py` host these on Ray Serve.

    from raylib.rerank.online import ProblemCatalog, RerankRequest, candidate_program, ranking
    catalog = ProblemCatalog()
    body = RerankRequest(problem={"dataset": "humaneval", "task_id": "HumanEval/0"}, candidates=["    return 1\\n"])
    problem = catalog.get(body.problem)                      # ProblemNotFound (a LookupError) names what is missing
    programs = [candidate_program(problem, c) for c in body.candidates]
    ranked = ranking(["public-tests"], {"public-tests": scores}, programs)   # best first

A problem is named (`{"dataset", "task_id"}`: the shipped datasets, or others whose files the server was given) or
inline (prompt, entry point, tests and/or public tests; with neither, the examples its docstring shows). A candidate
is a whole program, or a completion of the prompt (appended to it, as the openai harness does) when the problem has a
code prompt and the candidate does not define the entry point itself.
"""

from __future__ import annotations

import re
import threading
from typing import Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from raylib.data.problems import DATASETS, Problem, load_problems
from raylib.rerank.base import Score
from raylib.rerank.selection import chain_order
from raylib.rerank.settings import parse_chain, ranking_chain
from sandbox.schema import MAX_CODE_BYTES, ExecRequest, Tests

__all__ = [
    "ExecuteRequest", "InlineProblem", "ProblemCatalog", "ProblemInvalid", "ProblemNotFound", "ProblemRef", "Ranked",
    "RerankRequest", "RerankResponse", "ScoreRequest", "ScoreResponse", "candidate_program", "ranking",
]

MAX_CANDIDATES = 256


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProblemRef(_Body):
    """A problem of a dataset the server knows."""

    dataset: str = Field(..., description=f"One of {DATASETS} (the shipped ones need no file: humaneval, humaneval+, "
                         "mbpp, mbpp+; others only where the server was given their files).")
    task_id: str = Field(..., min_length=1, description="The task, e.g. 'HumanEval/0'.")


class InlineProblem(_Body):
    """A problem given in the request."""

    task_id: str = Field("inline", min_length=1, description="A name for it (in logs and answers).")
    prompt: str = Field("", description="What the model is shown: a code prefix (a function signature and docstring) "
                        "or a statement.")
    entry_point: str = Field("", description="The function under test (function-style tests).")
    language: str = Field("python", description="python, cpp or javascript.")
    tests: Tests | None = Field(None, description="The tests, in the sandbox's schema (the verifiers never see them: "
                                "they are what /verify/execute runs).")
    public_tests: Tests | None = Field(None, description="The tests the prompt shows (what public-tests runs); "
                                       "None: the examples of the prompt's docstring.")
    reference_solution: str | None = Field(None, max_length=MAX_CODE_BYTES, description="A whole program known to "
                                           "pass: with it Python tests are judged outside the program's process.")

    def to_problem(self) -> Problem:
        """The Problem; ValueError when it has no tests at all (none given, none in the docstring)."""
        from raylib.rerank.public_tests import prompt_tests

        tests = self.tests or self.public_tests
        if tests is None and self.language == "python":
            tests = prompt_tests(self.prompt, self.entry_point, reference_solution=self.reference_solution)
        if tests is None:
            raise ValueError("the inline problem has no tests: give tests or public_tests (or a Python prompt whose "
                             "docstring shows examples of entry_point)")
        code_prompt = bool(self.entry_point) and tests.kind != "stdio"
        return Problem(task_id=self.task_id, prompt=self.prompt, completion_prefix=self.prompt if code_prompt else "",
                       language=self.language, entry_point=self.entry_point, tests=tests,
                       public_tests=self.public_tests, reference_solution=self.reference_solution, source="inline")


ProblemSpec = Union[ProblemRef, InlineProblem]


class ProblemNotFound(LookupError):
    """An unknown dataset, or a task the dataset does not have (the message names it)."""


class ProblemInvalid(ValueError):
    """An inline problem that cannot be one (no tests at all, a field the Problem rejects); the message says why."""


class ProblemCatalog:
    """The problems a server can name: each dataset is loaded on first use (thread-safe) and kept."""

    def __init__(self, paths: dict[str, str] | None = None):
        self.paths = dict(paths or {})
        self._loaded: dict[str, dict[str, Problem]] = {}
        self._lock = threading.Lock()

    def dataset(self, name: str) -> dict[str, Problem]:
        from raylib.data.problems import SHIPPED_FILES

        known = sorted({"humaneval", *SHIPPED_FILES, *self.paths})
        if name not in DATASETS or name not in known:
            raise ProblemNotFound(f"unknown dataset {name!r}; this server knows {known}")
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = load_problems(name, self.paths.get(name))
            return self._loaded[name]

    def get(self, spec: ProblemSpec) -> Problem:
        """The problem `spec` names or holds. Raises ProblemNotFound, or ProblemInvalid for an inline one that cannot
        be a problem."""
        if isinstance(spec, InlineProblem):
            try:
                return spec.to_problem()
            except ValueError as exc:
                raise ProblemInvalid(str(exc)) from None
        problems = self.dataset(spec.dataset)
        if spec.task_id not in problems:
            raise ProblemNotFound(f"task {spec.task_id!r} is not in dataset {spec.dataset!r} "
                                  f"({len(problems)} tasks, e.g. {next(iter(problems))!r})")
        return problems[spec.task_id]


def candidate_program(problem: Problem, candidate: str) -> str:
    """The whole program a candidate stands for: the candidate itself, or the prompt plus it when the problem has a
    code prompt and the candidate does not define the entry point (a completion, as in HumanEval samples)."""
    if not problem.completion_prefix or not problem.entry_point:
        return candidate
    name = re.escape(problem.entry_point)
    defines = {"python": rf"^\s*(async\s+)?def\s+{name}\s*\(", "javascript": rf"\bfunction\s+{name}\s*\(|"
               rf"\b{name}\s*=\s*(async\s*)?(function\b|\()"}.get(problem.language, rf"\b{name}\s*\([^;{{]*\)\s*\{{")
    return candidate if re.search(defines, candidate, re.MULTILINE) else problem.completion_prefix + candidate


# ------------------------------------------------------------------------------------------------- bodies


def _candidates_field(required: bool):
    return Field(... if required else None, min_length=1, max_length=MAX_CANDIDATES,
                 description="Programs: whole programs, or completions of the problem's prompt.")


class ExecuteRequest(_Body):
    """POST /verify/execute: sandbox requests as POST /run_batch of the sandbox service takes them, or programs run
    against a problem's tests."""

    requests: list[ExecRequest] | None = Field(None, min_length=1, max_length=1024, description="Programs with their "
                                               "tests and limits (the sandbox service's ExecRequest).")
    problem: ProblemSpec | None = Field(None, description="A problem whose (hidden) tests the programs run against.")
    programs: list[str] | None = _candidates_field(False)
    time_limit_s: float = Field(10.0, gt=0, le=120, description="With a problem: wall and CPU limit per execution.")
    memory_mb: int = Field(1024, ge=64, le=16384, description="With a problem: memory limit per program.")

    @model_validator(mode="after")
    def _one_form(self):
        if (self.requests is None) == (self.problem is None):
            raise ValueError("give either requests, or a problem and programs")
        if self.problem is not None and not self.programs:
            raise ValueError("programs: a problem needs the programs to run against its tests")
        return self


def _chain_names(text: str) -> str:
    parse_chain(text)  # ValueError names the unknown verifier
    return text


class ScoreRequest(_Body):
    """POST /verify/score."""

    problem: ProblemSpec = Field(..., description="The problem: {dataset, task_id} or inline.")
    candidates: list[str] = _candidates_field(True)
    verifier: str = Field("public-tests", description="A verifier, or a chain 'a,b' (ranked by a, ties by b).")

    _verifier = field_validator("verifier")(_chain_names)


class CandidateScore(BaseModel):
    value: float | None = Field(..., description="Higher is better; null: the verifier cannot tell.")
    details: dict = Field(default_factory=dict, description="How it was reached (tests passed, cluster size, ...).")


class ScoreResponse(BaseModel):
    task_id: str
    verifiers: list[str] = Field(..., description="The verifiers that scored, in chain order.")
    scores: dict[str, list[CandidateScore]] = Field(..., description="Per verifier, one score per candidate.")
    timings_ms: dict[str, float] = Field(default_factory=dict, description="Milliseconds per verifier.")


class RerankRequest(_Body):
    """POST /rerank."""

    problem: ProblemSpec = Field(..., description="The problem: {dataset, task_id} or inline.")
    candidates: list[str] | None = _candidates_field(False)
    n: int = Field(4, ge=1, le=MAX_CANDIDATES, description="Without candidates: how many the generator samples.")
    temperature: float = Field(0.8, ge=0, le=2, description="Without candidates: sampling temperature.")
    max_tokens: int = Field(512, ge=1, le=8192, description="Without candidates: most new tokens per sample.")
    seed: int | None = Field(0, ge=0, description="Without candidates: sampling seed (null: random).")
    verifier: str = Field("public-tests", description="A verifier, or a chain 'a,b' (ranked by a, ties by b).")
    top_k: int | None = Field(None, ge=1, le=MAX_CANDIDATES, description="How many ranked candidates to return; "
                              "null: all.")

    _verifier = field_validator("verifier")(_chain_names)


class Best(BaseModel):
    index: int = Field(..., description="Its position among the candidates (or the generated samples).")
    code: str = Field(..., description="The whole program.")
    score: float | None = Field(..., description="Its score by the chain's first verifier.")


class Ranked(Best):
    scores: dict[str, float | None] = Field(..., description="Its score by each verifier.")


class RerankResponse(BaseModel):
    task_id: str
    best: Best
    ranked: list[Ranked] = Field(..., description="Best first (ties keep candidate order).")
    verifiers: list[str]
    generated: int = Field(0, description="Candidates the generator sampled (0 when they were given).")
    generation_errors: list[str] = Field(default_factory=list, description="Samples the generator could not make.")
    timings_ms: dict[str, float] = Field(default_factory=dict, description="generate, score, total (milliseconds).")


def ranking(names: list[str], scores: dict[str, list[Score]], programs: list[str],
            top_k: int | None = None) -> list[Ranked]:
    """The candidates best first by the chain (ranked by the first verifier, ties broken by the next; a verifier that
    builds on the previous one takes its place), ties in candidate order; the first `top_k` of them."""
    chain = ranking_chain(names)
    values = {name: [s.value for s in scores[name]] for name in names}
    order = chain_order([values[n] for n in chain])
    ranked = sorted(range(len(programs)), key=lambda i: (order[i] is not None, order[i] or 0.0, -i), reverse=True)
    return [Ranked(index=i, code=programs[i], score=values[chain[0]][i], scores={n: values[n][i] for n in names})
            for i in ranked[:top_k]]
