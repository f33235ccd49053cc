"""The scoring stages on Ray Data: problems (each with its candidates) stream through one actor pool per verifier.

    from raylib.rerank.stage import scoring_stages
    dataset = ray.data.from_items([{"task_id": ..., "programs": json.dumps([...])}, ...])
    for batch in scoring_stages(dataset, ["public-tests", "orm"], settings, problems).iter_batches(...):
        batch["scores:orm"]        # per problem: JSON [[value, details], ...], one per candidate

Each actor (`ScoreCandidates`) builds its verifier once (a sandbox pool, a model on its GPU) and scores batches of
problems. A verifier that builds on the previous one (rvbs) reads that one's column. Ray Data restarts an actor
that dies and re-runs its batch.
"""

from __future__ import annotations

import json

from raylib.data.problems import Problem
from raylib.rerank.base import Candidates, Score

__all__ = ["ScoreCandidates", "decode_scores", "score_column", "scoring_stages"]


def score_column(name: str) -> str:
    return f"scores:{name}"


def decode_scores(text: str) -> list[Score]:
    return [Score(value, details) for value, details in json.loads(text)]


class ScoreCandidates:
    """Ray Data stage. Input columns: task_id, programs (JSON list of whole programs) and, for a verifier that builds
    on the previous one, that one's `scores:<name>` column. Output: the input plus `scores:<name>` (JSON list of
    [value, details], one per candidate)."""

    def __init__(self, name: str, settings: dict, problems: dict[str, dict], prior: str | None, sandbox: dict):
        from raylib.rerank.settings import VerifierSettings
        from raylib.rerank.verifiers import make_verifier

        self.name, self.prior = name, prior
        self.problems = {task_id: Problem.model_validate(p) for task_id, p in problems.items()}
        self.verifier = make_verifier(name, VerifierSettings.model_validate(settings), sandbox)

    def __call__(self, batch: dict) -> dict:
        items = [Candidates(self.problems[str(task_id)], json.loads(programs),
                            decode_scores(batch[score_column(self.prior)][i]) if self.prior else None)
                 for i, (task_id, programs) in enumerate(zip(batch["task_id"], batch["programs"]))]
        scores = self.verifier.score(items)
        return {**batch, score_column(self.name): [json.dumps([[s.value, s.details] for s in row]) for row in scores]}


def _resources(name: str, settings, gpus_in_cluster: bool) -> dict:
    """What one actor of verifier `name` reserves: sandbox workers' CPUs, or a model's CPUs/GPU."""
    if name in ("public-tests", "clustering"):
        section = settings.public_tests if name == "public-tests" else settings.clustering
        return {"num_cpus": section.workers_per_actor, "size": None}
    if name in ("orm", "pairwise", "judge", "judge-pairwise"):
        section = {"orm": settings.reward_model, "pairwise": settings.pairwise}.get(name, settings.judge)
        local = section is not settings.judge or settings.judge.engine.backend != "openai"  # an HTTP judge: no GPU
        gpus = section.gpus_per_actor if section.gpus_per_actor is not None else int(local and gpus_in_cluster)
        return {"num_cpus": section.cpus_per_actor, "num_gpus": gpus, "size": section.actors}
    return {"num_cpus": 0.25, "size": 1}  # self-consistency, rvbs: plain Python


def scoring_stages(dataset, names: list[str], settings, problems: dict[str, Problem], problems_per_batch: int,
                   sandbox: dict | None = None):
    """`dataset` (columns task_id, programs) mapped through one actor pool per verifier, in the order named."""
    import ray

    from raylib.cluster import cluster_resources, quiet_data_context
    from raylib.rerank.settings import CONSUMES_PRIOR

    quiet_data_context()
    resources = cluster_resources()
    payload = {t: p.model_dump(mode="json") for t, p in problems.items()}
    wants = [_resources(name, settings, resources.get("GPU", 0) > 0) for name in names]
    # fixed pools (models, plain Python) first; the sandbox pools share the CPUs left, each growing from one actor
    fixed = sum(w["num_cpus"] * w["size"] for w in wants if w["size"])
    sandboxes = sum(1 for w in wants if not w["size"])
    for i, (name, want) in enumerate(zip(names, wants)):
        want = dict(want)
        size = want.pop("size")
        if size:
            compute = ray.data.ActorPoolStrategy(size=size)
        else:
            most = max(1, int((resources.get("CPU", 1) - fixed) / sandboxes // want["num_cpus"]))
            compute = ray.data.ActorPoolStrategy(min_size=1, max_size=most)
        dataset = dataset.map_batches(
            ScoreCandidates, batch_size=problems_per_batch, compute=compute, **want,
            fn_constructor_kwargs={"name": name, "settings": settings.model_dump(mode="json"), "problems": payload,
                                   "prior": names[i - 1] if name in CONSUMES_PRIOR else None,
                                   "sandbox": sandbox or {}})
    return dataset
