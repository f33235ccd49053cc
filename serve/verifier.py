"""The verifier app: sandbox verdicts and verifier scores over HTTP.

    serve run serve.verifier:build_app                                           # public-tests, clustering, ...
    serve run serve.verifier:build_app verifiers.reward_model.model=runs/orm/model  # ... and orm
    curl -s 127.0.0.1:8000/verify/score -H 'content-type: application/json' -d '{"problem": {"dataset":
         "humaneval", "task_id": "HumanEval/53"}, "candidates": ["    return x + y\\n"], "verifier": "public-tests"}'

Routes (under the app's route prefix, /verify; bodies in `raylib.rerank.online`):
- POST /execute: sandbox requests (the sandbox service's ExecRequest, as its POST /run_batch takes them), or a
  problem and programs run against the problem's tests; answers {"results": [ExecResult, ...]}, per-test verdicts.
- POST /score: a problem and candidates to one score per candidate from each verifier of a chain.

The execution verifiers (public-tests, clustering) and the sandbox run in this deployment's replicas (each holds its
own sandbox pools); self-consistency, the LLM judge and rvbs too. Each model verifier (orm, pairwise; present when its
checkpoint is configured) is a deployment of its own, `Scorer-<name>`, whose replicas batch the candidates of
concurrent requests into one forward pass with `@serve.batch`.
"""

# No `from __future__ import annotations`: Serve passes a typed builder its args as the pydantic model only when
# the annotation is the class itself, not a string.
import asyncio
import concurrent.futures
import threading
import time

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from ray import serve

from raylib.data.problems import Problem
from raylib.evaluate.requests import build_request
from raylib.rerank.base import Candidates, Score
from raylib.rerank.online import (
    CandidateScore,
    ExecuteRequest,
    ProblemCatalog,
    ScoreRequest,
    ScoreResponse,
    candidate_program,
)
from raylib.rerank.settings import CONSUMES_PRIOR, NEEDS_MODEL, VerifierSettings, check_settings, parse_chain
from sandbox.server import BatchResponse
from serve import http_errors

api = FastAPI(title="codeloop verifier", version="1", description=__doc__)
body_limit = http_errors(api)


class Batching(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Batch concurrent requests' candidates into one forward pass.")
    max_batch_size: int = Field(16, ge=1, le=1024, description="Most requests (problems) per batch.")
    wait_ms: float = Field(0.0, ge=0, le=1000, description="How long a batch waits to fill, milliseconds. 0: it "
                           "takes what is queued (requests queue while the previous batch runs, so batches still "
                           "form under load, and a lone request is not delayed).")


class VerifierArgs(BaseModel):
    """`serve run serve.verifier:build_app key=value` / the app's `args` in configs/serve.yaml."""

    model_config = ConfigDict(extra="forbid")

    verifiers: VerifierSettings = Field(default_factory=VerifierSettings, description="Each verifier's settings (a "
                                        "model verifier is served when its checkpoint is set).")
    sandbox: dict = Field(default_factory=dict, description="Extra sandbox.SandboxConfig fields (e.g. backend).")
    datasets: dict[str, str] = Field(default_factory=dict, description="Problem files of datasets that are not "
                                     "shipped, by dataset name (e.g. {stdio: problems.jsonl}).")
    batching: Batching = Field(default_factory=Batching, description="@serve.batch of the model verifiers.")
    max_body_mb: float = Field(32.0, gt=0, description="Largest request body, MiB (413 past it).")

    def model_verifiers(self) -> list[str]:
        """The model verifiers this app serves: those whose checkpoint is configured."""
        models = {"orm": self.verifiers.reward_model.model, "pairwise": self.verifiers.pairwise.model}
        return [name for name in NEEDS_MODEL if models[name]]


@serve.deployment(max_ongoing_requests=64, max_queued_requests=256, ray_actor_options={"num_cpus": 1})
class Scorer:
    """One model verifier; `score` takes one problem's candidates, and replicas batch concurrent ones."""

    def __init__(self, name: str, settings: dict, batching: dict):
        from raylib.rerank.verifiers import make_verifier

        self.verifier = make_verifier(name, VerifierSettings.model_validate(settings))
        # every forward pass on one thread: torch's OpenMP threads belong to the thread that calls it, so passes from
        # rotating pool threads would each start (and keep) a team of their own
        self.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="scorer")
        config = Batching.model_validate(batching)
        self.batched = config.enabled
        self.score_batch.set_max_batch_size(config.max_batch_size)
        self.score_batch.set_batch_wait_timeout_s(config.wait_ms / 1000)

    async def score(self, item: Candidates) -> list[Score]:
        if self.batched:
            return await self.score_batch(item)
        [scores] = await self._score([item])
        return scores

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)
    async def score_batch(self, items: list[Candidates]) -> list[list[Score]]:
        return await self._score(items)

    async def _score(self, items: list[Candidates]) -> list[list[Score]]:
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.verifier.score, items)


@serve.deployment(max_ongoing_requests=32, max_queued_requests=128, ray_actor_options={"num_cpus": 0.25})
@serve.ingress(api)
class Verifier:
    def __init__(self, args: dict, scorers: dict):
        self.args = VerifierArgs.model_validate(args)
        body_limit.set_mib(self.args.max_body_mb)
        self.catalog = ProblemCatalog(self.args.datasets)
        self.scorers = scorers  # {name: DeploymentHandle of its Scorer}
        self.local: dict = {}  # the verifiers this replica runs itself, built on first use
        self.lock = threading.Lock()

    def _verifier(self, name: str):
        from raylib.rerank.verifiers import make_verifier

        with self.lock:
            if name not in self.local:
                self.local[name] = make_verifier(name, self.args.verifiers, self.args.sandbox)
            return self.local[name]

    def _check(self, names: list[str]) -> None:
        missing = [n for n in names if n in NEEDS_MODEL and n not in self.scorers]
        if missing:
            raise HTTPException(422, f"verifier: {missing} not served here (no checkpoint configured; set "
                                "verifiers.reward_model.model / verifiers.pairwise.model in the app's args)")
        try:
            check_settings([n for n in names if n not in NEEDS_MODEL], self.args.verifiers)
        except ValueError as exc:
            raise HTTPException(422, f"verifier: {exc}") from None

    async def score_chain(self, problem: Problem, programs: list[str], verifier: str
                          ) -> tuple[dict[str, list[Score]], dict[str, float]]:
        """Every verifier of the chain's scores of `programs` (one that builds on the previous one gets its scores),
        and the milliseconds each took. The rerank app calls this through a deployment handle."""
        names = parse_chain(verifier)
        self._check(names)
        scores: dict[str, list[Score]] = {}
        timings: dict[str, float] = {}
        prior = None
        for name in names:
            started = time.perf_counter()
            item = Candidates(problem, programs, prior if name in CONSUMES_PRIOR else None)
            if name in self.scorers:
                prior = await self.scorers[name].score.remote(item)
            else:
                [prior] = await asyncio.to_thread(self._verifier(name).score, [item])
            scores[name] = prior
            timings[name] = round((time.perf_counter() - started) * 1000, 3)
        return scores, timings

    @api.post("/score", response_model=ScoreResponse)
    async def score(self, body: ScoreRequest) -> ScoreResponse:
        problem = self.catalog.get(body.problem)
        programs = [candidate_program(problem, c) for c in body.candidates]
        scores, timings = await self.score_chain(problem, programs, body.verifier)
        return ScoreResponse(task_id=problem.task_id, verifiers=list(scores),
                             scores={n: [CandidateScore(value=s.value, details=s.details) for s in row]
                                     for n, row in scores.items()}, timings_ms=timings)

    @api.post("/execute", response_model=BatchResponse)
    async def execute(self, body: ExecuteRequest) -> BatchResponse:
        requests = body.requests
        if requests is None:
            problem = self.catalog.get(body.problem)
            requests = [build_request(problem, candidate_program(problem, p), body.time_limit_s, body.memory_mb,
                                      request_id=str(i)) for i, p in enumerate(body.programs)]
        box = self._verifier("public-tests")  # its pool, with its retries of sandbox failures
        return BatchResponse(results=await asyncio.to_thread(box.run, requests))


def build_app(args: VerifierArgs) -> serve.Application:
    """The verifier app, with a `Scorer-<name>` deployment per configured model verifier (checked here, before any
    replica starts: a checkpoint that is not a sequence classifier of the right shape is refused)."""
    models = args.model_verifiers()
    check_settings(models, args.verifiers)
    settings = args.verifiers.model_dump(mode="json")
    scorers = {}
    for name in models:
        section = args.verifiers.reward_model if name == "orm" else args.verifiers.pairwise
        # the section's actors and resources as in the batch jobs (the Serve config's deployments may override them)
        gpus = section.gpus_per_actor
        if gpus is None:  # as in the batch jobs: one GPU per model replica where the cluster has GPUs
            from raylib.cluster import cluster_has_gpus

            gpus = 1 if cluster_has_gpus() else 0
        resources = {"num_cpus": section.cpus_per_actor, "num_gpus": gpus}
        scorers[name] = Scorer.options(name=f"Scorer-{name}", num_replicas=section.actors,
                                       ray_actor_options=resources).bind(name, settings, args.batching.model_dump())
    return Verifier.bind(args.model_dump(mode="json"), scorers)
