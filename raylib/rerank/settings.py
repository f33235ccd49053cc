"""How each verifier is configured: one pydantic section per verifier, and the chain of names a run asks for.

    from raylib.rerank.settings import VerifierSettings, parse_chain
    settings = VerifierSettings(reward_model={"model": "runs/orm/model"})
    parse_chain("public-tests,orm")          # ["public-tests", "orm"]; ValueError names an unknown verifier

Verifiers (a run lists one or more, comma-separated: each is scored and reported alone, and when there are several
the chain is reported too: candidates ranked by the first verifier, ties broken by the next, ...):

| name             | what it scores                                                           | needs          |
|------------------|--------------------------------------------------------------------------|----------------|
| public-tests     | fraction of the problem's visible tests passed (docstring examples, ...) | the sandbox    |
| clustering       | size of the candidate's behaviour cluster (same outputs on the inputs)   | the sandbox    |
| self-consistency | how many candidates share its normalised code text                       | nothing        |
| orm              | an outcome / scalar reward model (sequence classifier, 1 or 2 labels)    | --model        |
| pairwise         | Copeland score of a pairwise preference classifier (CodeFavor)           | --model        |
| judge            | an LLM judge's score (pointwise)                                         | an engine      |
| judge-pairwise   | Copeland score of an LLM judge's pairwise verdicts (both orders)         | an engine      |
| rvbs             | the RVBS selector's P(correct) of the candidate's answer group           | --selector and |
|                  | (LLMExecutor), over the previous verifier's scores                       | a verifier before it |
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from raylib.rerank.verifiers.judge import JudgeSettings

__all__ = ["CONSUMES_PRIOR", "NEEDS_MODEL", "VERIFIER_NAMES", "ClusteringSettings", "ModelVerifierSettings",
           "PairwiseSettings", "PublicTestsSettings", "RVBSSettings", "VerifierSettings", "check_settings",
           "parse_chain", "ranking_chain"]

VERIFIER_NAMES = ("public-tests", "clustering", "self-consistency", "orm", "pairwise", "judge", "judge-pairwise",
                  "rvbs")
NEEDS_MODEL = ("orm", "pairwise")  # a checkpoint (--model) is required
CONSUMES_PRIOR = ("rvbs",)  # builds on the verifier listed before it


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PublicTestsSettings(_Section):
    time_limit_s: float = Field(5.0, gt=0, le=600, description="Wall/CPU limit per candidate run on its visible "
                                "tests, seconds.")
    memory_mb: int = Field(1024, ge=16, description="Memory limit per candidate, MiB.")
    workers_per_actor: int = Field(2, ge=1, le=256, description="Sandbox workers (parallel programs) per actor; the "
                                   "actor reserves this many CPUs.")


class ClusteringSettings(PublicTestsSettings):
    inputs: str | None = Field(None, description="JSONL of inputs to run candidates on, e.g. written by a model: "
                               "{\"task_id\", \"inputs\": [call expression (Python) or stdin text (stdio)]}; None: "
                               "the problem's visible tests' inputs.")


class ModelVerifierSettings(_Section):
    model: str | None = Field(None, description="Checkpoint directory: a Hugging Face sequence classifier "
                              "(what jobs/train_rm.py / jobs/train_pref.py write, full or adapter).")
    batch_size: int = Field(16, ge=1, description="Sequences per forward pass.")
    max_length: int = Field(1024, ge=8, description="Longest input in tokens; past it the longer of task and "
                            "program is cut (pairwise: both programs are shortened alike).")
    actors: int = Field(1, ge=1, description="Model actors (replicas) in the Ray Data pool.")
    gpus_per_actor: float | None = Field(None, ge=0, description="GPUs per actor; None: 1 when the cluster has GPUs, "
                                         "else 0 (CPU).")
    cpus_per_actor: float = Field(1.0, gt=0, description="CPUs per actor (torch threads follow it on CPU).")


class PairwiseSettings(ModelVerifierSettings):
    max_comparisons: int | None = Field(64, ge=2, description="Most comparisons per problem (each pair is asked in "
                                        "both orders: 2 comparisons); None: every pair.")
    seed: int = Field(0, description="Which pairs are compared when the cap leaves some out.")


class RVBSSettings(_Section):
    selector: str | None = Field(None, description="Selector written by jobs/train_selector.py (its output "
                                 "directory or selector.joblib).")


class VerifierSettings(_Section):
    public_tests: PublicTestsSettings = Field(default_factory=PublicTestsSettings,
                                              description="The public-tests verifier: limits and sandbox workers.")
    clustering: ClusteringSettings = Field(default_factory=ClusteringSettings,
                                           description="The clustering verifier: limits, workers, its inputs.")
    reward_model: ModelVerifierSettings = Field(default_factory=ModelVerifierSettings,
                                                description="The orm verifier: checkpoint, batches, actors.")
    pairwise: PairwiseSettings = Field(default_factory=PairwiseSettings,
                                       description="The pairwise verifier: checkpoint, comparisons per problem.")
    judge: JudgeSettings = Field(default_factory=JudgeSettings,
                                 description="The judge and judge-pairwise verifiers: engine, prompts' sampling.")
    rvbs: RVBSSettings = Field(default_factory=RVBSSettings, description="The rvbs verifier: its selector.")


def parse_chain(text: str | list[str]) -> list[str]:
    """The verifier names of `--verifier a,b`, checked: known, not repeated, and rvbs after another verifier."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise ValueError(f"no verifier named; expected one or more of {VERIFIER_NAMES}, comma-separated")
    unknown = [n for n in names if n not in VERIFIER_NAMES]
    if unknown:
        raise ValueError(f"unknown verifier(s) {unknown}; expected one or more of {VERIFIER_NAMES}")
    if len(set(names)) != len(names):
        raise ValueError(f"a verifier is named twice in {names}")
    for i, name in enumerate(names):
        if name in CONSUMES_PRIOR and (i == 0 or names[i - 1] in CONSUMES_PRIOR):
            raise ValueError(f"{name} ranks groups by the scores of the verifier before it: name one first "
                             f"(e.g. orm,{name})")
    return names


def ranking_chain(names: list[str]) -> list[str]:
    """The verifiers a chain ranks by, in order: one that builds on the previous one (rvbs) takes its place."""
    chain: list[str] = []
    for name in names:
        if name in CONSUMES_PRIOR:
            chain[-1] = name
        else:
            chain.append(name)
    return chain


def check_settings(names: list[str], settings: VerifierSettings) -> None:
    """ValueError when a named verifier lacks what it needs (a model, a selector) or its checkpoint is not a
    sequence classifier of the right shape (read from its config files, no weights)."""
    if "orm" in names and not settings.reward_model.model:
        raise ValueError("verifier orm needs a reward model checkpoint: --model DIR (or reward_model.model=DIR)")
    if "pairwise" in names and not settings.pairwise.model:
        raise ValueError("verifier pairwise needs a preference model checkpoint: --model DIR (or pairwise.model=DIR)")
    if "rvbs" in names:
        from raylib.rerank.verifiers.rvbs import selector_file

        if not settings.rvbs.selector:
            raise ValueError("verifier rvbs needs a selector: --selector DIR (written by jobs/train_selector.py)")
        if not selector_file(settings.rvbs.selector).is_file():
            raise ValueError(f"verifier rvbs: no selector at {selector_file(settings.rvbs.selector)} (train one "
                             "with jobs/train_selector.py)")
    from raylib.rerank.verifiers.models import check_classifier

    checkpoints = (("orm", settings.reward_model.model, (1, 2)), ("pairwise", settings.pairwise.model, (2,)))
    for name, path, labels in checkpoints:
        if name in names:
            try:
                check_classifier(path, labels)
            except (FileNotFoundError, ValueError) as err:  # pydantic turns only ValueErrors into config errors
                raise ValueError(f"verifier {name}: {err}") from None

