"""The sandbox as an HTTP service.

    python -m sandbox.server --host 127.0.0.1 --port 8080 [--workers 2] [--max-queue 64] [--backend auto]

Endpoints (JSON; schemas in `sandbox.schema`, OpenAPI at /docs):
    GET  /health     isolation level, workers, requests in flight
    POST /run        an ExecRequest  -> an ExecResult
    POST /run_batch  {"requests": [ExecRequest, ...]} -> {"results": [ExecResult, ...]}

Concurrency is bounded: at most `workers + max_queue` programs are admitted at once; past that the service answers
429 with Retry-After instead of queueing without limit. Bodies over `--max-body-mb` get 413, malformed requests
422 with the offending field, and 503 means the sandbox itself is unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import threading

from pydantic import BaseModel, Field

from sandbox.pool import Sandbox, SandboxConfig
from sandbox.schema import ExecRequest, ExecResult

MAX_BATCH = 1024


class BatchRequest(BaseModel):
    requests: list[ExecRequest] = Field(..., min_length=1, max_length=MAX_BATCH, description="Programs to run.")


class BatchResponse(BaseModel):
    results: list[ExecResult]


class Health(BaseModel):
    status: str
    isolation: str
    level: str
    workers: int
    in_flight: int
    capacity: int


class _Admission:
    """Counts admitted programs; refuses past capacity (thread-safe, non-blocking)."""

    def __init__(self, capacity: int):
        self.capacity, self.in_flight = capacity, 0
        self._lock = threading.Lock()

    def try_acquire(self, n: int) -> bool:
        with self._lock:
            if self.in_flight + n > self.capacity:
                return False
            self.in_flight += n
            return True

    def release(self, n: int) -> None:
        with self._lock:
            self.in_flight -= n


def limit_body_size(app, limit) -> None:
    """Answer 413 for request bodies over `limit` bytes (an int, or a function returning it at each request), by
    Content-Length or, without one, while reading."""
    from fastapi import Request
    from fastapi.responses import JSONResponse

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        max_body = limit() if callable(limit) else limit
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body:
            return JSONResponse({"detail": f"request body of {length} bytes exceeds the {max_body}-byte limit"},
                                status_code=413)
        if length is None and request.method == "POST":
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_body:
                    return JSONResponse({"detail": f"request body exceeds the {max_body}-byte limit"}, status_code=413)
            request._body = body  # noqa: SLF001 - hand the already-read body to the endpoint
        return await call_next(request)


def build_app(sandbox: Sandbox, max_queue: int = 64, max_body_mb: float = 32.0):
    """A FastAPI app serving `sandbox` (the caller owns and closes it)."""
    from fastapi import FastAPI, HTTPException

    app = FastAPI(title="codeloop sandbox", version="1", description=__doc__)
    admission = _Admission(sandbox.config.workers + max_queue)
    max_body = int(max_body_mb * 1024 * 1024)

    limit_body_size(app, max_body)

    async def _admitted(n: int, work):
        if not admission.try_acquire(n):
            raise HTTPException(429, f"sandbox is full ({admission.in_flight}/{admission.capacity} programs in "
                                "flight); retry later",
                                headers={"Retry-After": "1"})
        try:
            return await asyncio.to_thread(work)
        except RuntimeError as exc:  # the pool is closed or every worker died
            raise HTTPException(503, f"sandbox unavailable: {exc}") from exc
        finally:
            admission.release(n)

    @app.get("/health", response_model=Health)
    def health() -> Health:
        return Health(status="ok", isolation=sandbox.isolation, level=sandbox.report.level,
                      workers=sandbox.config.workers, in_flight=admission.in_flight, capacity=admission.capacity)

    @app.post("/run", response_model=ExecResult)
    async def run(request: ExecRequest) -> ExecResult:
        return await _admitted(1, lambda: sandbox.run(request))

    @app.post("/run_batch", response_model=BatchResponse)
    async def run_batch(batch: BatchRequest) -> BatchResponse:
        # A batch runs on the pool's workers, so it occupies at most that many slots at a time.
        slots = min(len(batch.requests), sandbox.config.workers)
        results = await _admitted(slots, lambda: sandbox.run_batch(batch.requests))
        return BatchResponse(results=results)

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m sandbox.server",
                                     description="Serve the codeloop sandbox over HTTP.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=None, help="sandbox workers (default: one per CPU)")
    parser.add_argument("--max-queue", type=int, default=64, help="programs admitted beyond the workers before 429")
    parser.add_argument("--max-body-mb", type=float, default=32.0)
    parser.add_argument("--backend", default="auto", choices=["auto", "bwrap", "docker", "unsafe-process"])
    args = parser.parse_args(argv)
    config = {"backend": args.backend}
    if args.workers:
        config["workers"] = args.workers
    with Sandbox(SandboxConfig(**config)) as sandbox:
        print(sandbox.report.describe(), flush=True)
        uvicorn.run(build_app(sandbox, args.max_queue, args.max_body_mb), host=args.host, port=args.port,
                    log_level="info")


if __name__ == "__main__":
    main()
