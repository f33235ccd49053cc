"""Self-consistency, as FTTT's baseline does it: a candidate's score is how many candidates share its normalised
code (comments, docstrings and layout ignored; raylib.rerank.selection.normalise_code). Needs no model and no run.

    from raylib.rerank.verifiers.consistency import SelfConsistency
    SelfConsistency().score([Candidates(problem, ["x = 1  # one", "x = 1", "x = 2"])])   # values 2, 2, 1
"""

from __future__ import annotations

from typing import Sequence

from raylib.rerank.base import Candidates, Score
from raylib.rerank.selection import majority_scores, normalise_code

__all__ = ["SelfConsistency"]


class SelfConsistency:
    name = "self-consistency"

    def score(self, batch: Sequence[Candidates]) -> list[list[Score]]:
        out = []
        for item in batch:
            keys = [normalise_code(program) for program in item.programs]
            groups = {key: n for n, key in enumerate(dict.fromkeys(keys))}  # group index, in first-seen order
            out.append([Score(float(votes), {"group": groups[key]})
                        for key, votes in zip(keys, majority_scores(keys))])
        return out

    def close(self) -> None:
        pass
