"""The scoring stages on Ray Data: problems (each with its candidates) stream through one actor pool per verifier.

    from raylib.rerank.stage import scoring_stages
    dataset = ray.data.from_items([{"task_id": ..., "programs": json.dumps([...])}, ...])
    for batch in scoring_stages(dataset, ["public-tests", "orm"], settings, problems).iter_batches(...):
        batch["scores:orm"]        # per problem: JSON [[value, details], ...], one per candidate

Each actor (`ScoreCandidates`) builds its verifier once (a sandbox pool, a model on its GPU) and scores batches of
problems. A verifier that builds on the previous one (rvbs) reads that one's column. Ray Data restarts an actor
that dies and re-runs its batch. `plan_pools` sizes the pools so that every one can start on the cluster at once.
"""

from __future__ import annotations

import json

from raylib.data.problems import Problem
from raylib.rerank.base import Candidates, Score

__all__ = ["ScoreCandidates", "decode_scores", "encode_scores", "plan_pools", "score_column", "scoring_stages"]


def score_column(name: str) -> str:
    return f"scores:{name}"


def encode_scores(scores: list[Score]) -> str:
    """A problem's scores as a scoring stage's column holds them: JSON [[value, details], ...]."""
    return json.dumps([[s.value, s.details] for s in scores])


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
        return {**batch, score_column(self.name): [encode_scores(row) for row in scores]}


def _pool(name: str, settings, gpus_in_cluster: bool) -> dict:
    """What verifier `name`'s actor pool asks for: per actor CPUs and GPUs, and its size (None: sandbox actors, as
    many as the CPUs left allow)."""
    if name in ("public-tests", "clustering"):
        section = settings.public_tests if name == "public-tests" else settings.clustering
        return {"num_cpus": float(section.workers_per_actor), "num_gpus": 0, "size": None}
    if name in ("orm", "pairwise"):
        section = settings.reward_model if name == "orm" else settings.pairwise
        gpus = section.gpus_per_actor if section.gpus_per_actor is not None else int(gpus_in_cluster)
        return {"num_cpus": section.cpus_per_actor, "num_gpus": gpus, "size": section.actors}
    if name in ("judge", "judge-pairwise"):
        judge = settings.judge
        local = judge.engine.backend != "openai"  # an HTTP judge needs no GPU here
        default = judge.engine.tensor_parallel_size if local and gpus_in_cluster else 0
        gpus = judge.gpus_per_actor if judge.gpus_per_actor is not None else default
        return {"num_cpus": judge.cpus_per_actor, "num_gpus": gpus, "size": judge.actors}
    return {"num_cpus": 0.25, "num_gpus": 0, "size": 1}  # self-consistency, rvbs: plain Python


def plan_pools(names: list[str], settings, cpus: float, gpus: float) -> list[dict]:
    """Each verifier's pool on a cluster of `cpus` and `gpus`, so that every pool's first actor fits at once (else
    Ray Data would wait forever for one): fixed pools (models, judges, plain Python) take what they ask; the sandbox
    pools share the CPUs left, each growing up to what its share holds (a share below one actor's workers: one actor
    reserving just the share). Returns per verifier {"num_cpus", "num_gpus", "min_size", "max_size"}.

    Raises:
        ValueError: the fixed pools alone need more CPUs or GPUs than the cluster has (names the numbers).
    """
    wants = [_pool(name, settings, gpus > 0) for name in names]
    fixed = [w for w in wants if w["size"]]
    sandboxes = len(wants) - len(fixed)
    fixed_cpus = sum(w["num_cpus"] * w["size"] for w in fixed)
    fixed_gpus = sum(w["num_gpus"] * w["size"] for w in fixed)
    if fixed_gpus > gpus:
        raise ValueError(f"verifiers {names} need {fixed_gpus:g} GPUs at once, the cluster has {gpus:g}: set "
                         "fewer actors or fractional gpus_per_actor")
    left = cpus - fixed_cpus
    if left < 0.25 * sandboxes or (not sandboxes and left < 0):
        raise ValueError(f"verifiers {names} need {fixed_cpus:g} CPUs for their model/judge actors and more for "
                         f"their sandbox actors; the cluster has {cpus:g}: set fewer actors or cpus_per_actor")
    plans = []
    for want in wants:
        if want["size"]:
            plans.append({"num_cpus": want["num_cpus"], "num_gpus": want["num_gpus"], "min_size": want["size"],
                          "max_size": want["size"]})
            continue
        share = left / sandboxes
        if share >= want["num_cpus"]:
            plans.append({"num_cpus": want["num_cpus"], "num_gpus": 0, "min_size": 1,
                          "max_size": int(share // want["num_cpus"])})
        else:
            plans.append({"num_cpus": share, "num_gpus": 0, "min_size": 1, "max_size": 1})
    return plans


def scoring_stages(dataset, names: list[str], settings, problems: dict[str, Problem], problems_per_batch: int,
                   sandbox: dict | None = None, prior_of: dict[str, str] | None = None):
    """`dataset` (columns task_id, programs, and `scores:<name>` of verifiers scored before) mapped through one actor
    pool per verifier of `names`, in that order; `prior_of`: {verifier: the verifier whose scores it builds on}."""
    import ray

    from raylib.cluster import cluster_resources, quiet_data_context

    quiet_data_context()
    resources = cluster_resources()
    payload = {t: p.model_dump(mode="json") for t, p in problems.items()}
    plans = plan_pools(names, settings, resources.get("CPU", 1), resources.get("GPU", 0))
    for name, plan in zip(names, plans):
        compute = ray.data.ActorPoolStrategy(min_size=plan["min_size"], max_size=plan["max_size"])
        dataset = dataset.map_batches(
            ScoreCandidates, batch_size=problems_per_batch, compute=compute, num_cpus=plan["num_cpus"],
            num_gpus=plan["num_gpus"],
            fn_constructor_kwargs={"name": name, "settings": settings.model_dump(mode="json"), "problems": payload,
                                   "prior": (prior_of or {}).get(name), "sandbox": sandbox or {}})
    return dataset
