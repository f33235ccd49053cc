"""What every verifier is: one small Protocol over a batch of problems, each with its candidate programs.

    from raylib.rerank.base import Candidates, Score, Verifier
    scores = verifier.score([Candidates(problem, ["def f(): ...", "def f(): ..."])])   # [[Score, Score]]
    scores[0][1].value, scores[0][1].details       # None: unknown (e.g. the problem shows no tests)

A verifier scores each candidate of a problem (higher is better). It sees a problem's candidates together, since
some scores are relative (behaviour clusters, self-consistency, Copeland rounds, RVBS groups), and a batch of
problems at once, so a model can fill its forward batches. A candidate is a whole program (a sample's completion is
assembled onto its prompt before it gets here). In a chain, a verifier that builds on the one before it (RVBS) finds
that verifier's scores in `Candidates.prior`. Pure: no Ray, no torch.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, Sequence

from raylib.data.problems import Problem

__all__ = ["RETRY", "Candidates", "Score", "Verifier"]

# A details key: True on a score the infrastructure could not produce (a sandbox failure, an endpoint error): it is
# stored as unknown and produced again by the next run over the same output.
RETRY = "retry"


@dataclasses.dataclass(frozen=True)
class Score:
    """One candidate's score: `value` (higher is better; None when the verifier cannot tell, e.g. no visible tests)
    and `details` (plain JSON data saying how it was reached: tests passed, cluster size, wins, ...)."""

    value: float | None
    details: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Candidates:
    """One problem and its candidate programs (whole programs, in sample order); `prior`: the previous verifier's
    scores of the same candidates when the verifier runs in a chain, else None."""

    problem: Problem
    programs: list[str]
    prior: list[Score] | None = None


class Verifier(Protocol):
    """Scores candidates. Heavy state (a model, a sandbox pool) is built in `__init__`, once per actor."""

    name: str  # the name it is asked for by (`--verifier NAME`) and reported under

    def score(self, batch: Sequence[Candidates]) -> list[list[Score]]:
        """One list of scores per problem, one score per candidate, in order."""
        ...

    def close(self) -> None:
        ...
