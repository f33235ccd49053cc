"""Ray Serve applications, one per file, each with a typed builder; `configs/serve.yaml` starts all three:

    serve run configs/serve.yaml                                   # 127.0.0.1:8000
    serve run serve.generator:build_app engine.model=DIR           # one app alone

| file          | route     | what it serves                                                                  |
|---------------|-----------|---------------------------------------------------------------------------------|
| generator.py  | /v1       | OpenAI-compatible models, completions, chat completions over codeloop's engines |
| verifier.py   | /verify   | POST /verify/execute (sandbox verdicts), POST /verify/score (verifier scores)   |
| rerank.py     | /         | POST /rerank (the other two through deployment handles); /docs for all three    |

What every app answers alike (`http_errors`): 413 for a body over its limit, 422 naming the malformed field (or
saying why an inline problem cannot be one), 404 naming an unknown dataset or task, 503 (with Retry-After) when a
deployment is over capacity or a replica it called died, instead of a hang.
"""

from __future__ import annotations

RETRY_AFTER_S = "1"


class BodyLimit:
    """The largest request body of an app, in bytes; its deployment sets it from the app's args when it starts."""

    def __init__(self, mib: float = 8.0):
        self.bytes = int(mib * 1024 * 1024)

    def set_mib(self, mib: float) -> None:
        self.bytes = int(mib * 1024 * 1024)


def http_errors(api) -> BodyLimit:
    """Give FastAPI app `api` the shared answers: 413 past its body limit (returned, to be set by the deployment),
    404 for ProblemNotFound, 422 for ProblemInvalid, 503 for back pressure and dead replicas downstream."""
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from ray.exceptions import RayActorError
    from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

    from raylib.rerank.online import ProblemInvalid, ProblemNotFound
    from sandbox.server import limit_body_size

    body_limit = BodyLimit()
    limit_body_size(api, lambda: body_limit.bytes)

    @api.exception_handler(ProblemNotFound)
    async def not_found(request: Request, exc: ProblemNotFound):
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @api.exception_handler(ProblemInvalid)
    async def invalid_problem(request: Request, exc: ProblemInvalid):
        return JSONResponse({"detail": f"problem: {exc}"}, status_code=422)

    def unavailable(why: str) -> JSONResponse:
        return JSONResponse({"detail": why}, status_code=503, headers={"Retry-After": RETRY_AFTER_S})

    @api.exception_handler(BackPressureError)
    async def over_capacity(request: Request, exc: BackPressureError):
        return unavailable(f"over capacity: {exc.message}; retry later")

    @api.exception_handler(DeploymentUnavailableError)
    async def deployment_down(request: Request, exc: DeploymentUnavailableError):
        return unavailable(f"a deployment is unavailable: {exc.message}; retry later")

    @api.exception_handler(RayActorError)
    async def replica_died(request: Request, exc: RayActorError):
        return unavailable("a replica serving this request died (Serve is replacing it); retry")

    return body_limit
