"""The rerank app: POST /rerank ranks a problem's candidates (given, or sampled by the generator app) with the verifier
app's verifiers, through deployment handles; /docs shows the bodies of all three apps.

    serve run configs/serve.yaml              # generator (/v1), verifier (/verify) and this app (/) on 127.0.0.1:8000
    curl -s 127.0.0.1:8000/rerank -H 'content-type: application/json' -d '{"problem": {"dataset": "humaneval",
         "task_id": "HumanEval/53"}, "candidates": ["    return x - y\\n", "    return x + y\\n"],
         "verifier": "public-tests"}'
    # {"best": {"index": 1, "code": "...", "score": 1.0}, "ranked": [...], "timings_ms": {...}, ...}

Without "candidates" the generator samples "n" of them (temperature, max_tokens, seed). The ranking is
`raylib.rerank.online.ranking`: by the chain's first verifier, ties broken by the next, then by candidate order.
"""

# No `from __future__ import annotations`: Serve passes a typed builder its args as the pydantic model only when
# the annotation is the class itself, not a string.
import asyncio
import time

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from ray import serve

from raylib.rerank.online import Best, ProblemCatalog, RerankRequest, RerankResponse, candidate_program, ranking
from serve import http_errors

api = FastAPI(title="codeloop", version="1", description=__doc__)
body_limit = http_errors(api)
# What the deployment uses is defined above it: Serve serializes the class (with the globals it names) when it is
# decorated, so a helper defined below would be missing in the replicas.


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)


def _openapi_of_all() -> dict:
    """This app's OpenAPI schema with the generator's (/v1) and the verifier's (/verify) merged in, so /docs shows
    every route of configs/serve.yaml."""
    from fastapi.openapi.utils import get_openapi

    from serve import generator, verifier

    if api.openapi_schema is None:
        spec = get_openapi(title="codeloop", version="1", description=__doc__, routes=api.routes)
        for prefix, other in (("/v1", generator.api), ("/verify", verifier.api)):
            part = other.openapi()
            spec["paths"].update({prefix + path: item for path, item in part["paths"].items()})
            spec.setdefault("components", {}).setdefault("schemas", {}).update(
                part.get("components", {}).get("schemas", {}))
        api.openapi_schema = spec
    return api.openapi_schema


api.openapi = _openapi_of_all


class RerankArgs(BaseModel):
    """`serve run serve.rerank:build_app key=value` / the app's `args` in configs/serve.yaml."""

    model_config = ConfigDict(extra="forbid")

    generator_app: str = Field("generator", description="The generator app's name (in the same Serve instance).")
    verifier_app: str = Field("verifier", description="The verifier app's name (in the same Serve instance).")
    datasets: dict[str, str] = Field(default_factory=dict, description="Problem files of datasets that are not "
                                     "shipped, by dataset name.")
    max_body_mb: float = Field(32.0, gt=0, description="Largest request body, MiB (413 past it).")


@serve.deployment(max_ongoing_requests=64, max_queued_requests=256, ray_actor_options={"num_cpus": 0.1})
@serve.ingress(api)
class Reranker:
    def __init__(self, args: dict):
        self.args = RerankArgs.model_validate(args)
        body_limit.set_mib(self.args.max_body_mb)
        self.catalog = ProblemCatalog(self.args.datasets)

    def _handle(self, app: str, deployment: str):
        # looked up per call (cheap, cached by Serve): the other apps may be deployed after this one
        return serve.get_deployment_handle(deployment, app_name=app)

    @api.post("/rerank", response_model=RerankResponse)
    async def rerank(self, body: RerankRequest) -> RerankResponse:
        started = time.perf_counter()
        problem = await asyncio.to_thread(self.catalog.get, body.problem)
        timings, errors = {}, []
        if body.candidates:
            programs = [candidate_program(problem, c) for c in body.candidates]
        else:
            generator = self._handle(self.args.generator_app, "Generator")
            sampling = {"temperature": body.temperature, "max_tokens": body.max_tokens, "seed": body.seed}
            programs, errors = await generator.sample.remote(problem, body.n, sampling)
            timings["generate"] = _ms(started)
            if not programs:
                raise HTTPException(502, f"the generator made no program: {errors[:3]}")
        scored = time.perf_counter()
        verifier = self._handle(self.args.verifier_app, "Verifier")
        scores, per_verifier = await verifier.score_chain.remote(problem, programs, body.verifier)
        timings.update(score=_ms(scored), **{f"score:{k}": v for k, v in per_verifier.items()})
        ranked = ranking(list(scores), scores, programs, body.top_k)
        top = ranked[0]
        timings["total"] = _ms(started)
        return RerankResponse(task_id=problem.task_id, best=Best(index=top.index, code=top.code, score=top.score),
                              ranked=ranked, verifiers=list(scores), generated=0 if body.candidates else len(programs),
                              generation_errors=errors, timings_ms=timings)


def build_app(args: RerankArgs) -> serve.Application:
    """The rerank app; it finds the generator and verifier apps by name when a request needs them."""
    return Reranker.bind(args.model_dump(mode="json"))
