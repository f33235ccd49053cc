"""RVBS (LLMExecutor's reward-verified selection): candidates with the same answer form a group; a selector
(jobs/train_selector.py: a random forest or LightGBM over the groups' features of another verifier's scores) gives
each group P(correct); every candidate scores its group's probability, so the pick is the likeliest group.

    from raylib.rerank.verifiers.rvbs import RVBS
    RVBS(RVBSSettings(selector="runs/selector")).score([Candidates(problem, programs, prior=orm_scores)])

A candidate's answer is its program normalised as self-consistency compares it (raylib.rerank.selection).
An unknown prior score counts as the lowest known one of its problem; a problem whose prior scores are all unknown
gets unknown scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from raylib.rerank.base import Candidates, Score
from raylib.rerank.selection import normalise_code
from raylib.rerank.selector import load_selector, selector_scores

__all__ = ["RVBS", "selector_file"]


def selector_file(path: str | Path) -> Path:
    """The selector file itself, given it or the directory jobs/train_selector.py wrote it into."""
    path = Path(path)
    return path / "selector.joblib" if path.is_dir() else path


class RVBS:
    name = "rvbs"

    def __init__(self, settings):
        self.model, self.meta = load_selector(selector_file(settings.selector))

    def score(self, batch: Sequence[Candidates]) -> list[list[Score]]:
        out = []
        for item in batch:
            if item.prior is None:
                raise ValueError("rvbs needs the scores of the verifier before it in the chain")
            known = [s.value for s in item.prior if s.value is not None]
            if not known:
                out.append([Score(None, {"reason": "the previous verifier's scores are all unknown"})
                            for _ in item.programs])
                continue
            base = [s.value if s.value is not None else min(known) for s in item.prior]
            keys = [normalise_code(program) for program in item.programs]
            groups = {key: n for n, key in enumerate(dict.fromkeys(keys))}
            probabilities = selector_scores(self.model, keys, base)
            out.append([Score(p, {"group": groups[key], "base": b}) for p, key, b in zip(probabilities, keys, base)])
        return out

    def close(self) -> None:
        pass
