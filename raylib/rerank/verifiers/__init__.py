"""Verifiers, one module per kind of evidence: execution (public-tests, clustering), consistency (self-consistency),
models (orm, pairwise), judge (an LLM judge), rvbs (LLMExecutor's selector).

    from raylib.rerank.verifiers import make_verifier
    verifier = make_verifier("public-tests", VerifierSettings())      # a raylib.rerank.base.Verifier
    verifier.score([Candidates(problem, programs)])

Each kind is imported only in its own branch (a model verifier imports torch; the others must not).
"""

from __future__ import annotations

from raylib.rerank.base import Verifier

__all__ = ["make_verifier"]


def make_verifier(name: str, settings, sandbox: dict | None = None) -> Verifier:
    """Build verifier `name` (one of raylib.rerank.settings.VERIFIER_NAMES) from its section of `settings` (a
    VerifierSettings); `sandbox`: extra sandbox.SandboxConfig fields for the execution verifiers."""
    if name in ("public-tests", "clustering"):
        from raylib.rerank.verifiers.execution import BehaviourClusters, PublicTests

        if name == "public-tests":
            return PublicTests(settings.public_tests, sandbox)
        return BehaviourClusters(settings.clustering, sandbox)
    if name == "self-consistency":
        from raylib.rerank.verifiers.consistency import SelfConsistency

        return SelfConsistency()
    if name == "orm":
        from raylib.rerank.verifiers.models import RewardModel

        return RewardModel(settings.reward_model)
    if name == "pairwise":
        from raylib.rerank.verifiers.models import PairwisePreference

        return PairwisePreference(settings.pairwise)
    if name in ("judge", "judge-pairwise"):
        from raylib.rerank.verifiers.judge import LLMJudge

        mode = "pairwise" if name == "judge-pairwise" else "pointwise"
        return LLMJudge(settings.judge.model_copy(update={"mode": mode}), name=name)
    if name == "rvbs":
        from raylib.rerank.verifiers.rvbs import RVBS

        return RVBS(settings.rvbs)
    raise ValueError(f"unknown verifier {name!r}")
