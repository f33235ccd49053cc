"""An OpenAI-compatible HTTP endpoint as an engine: vLLM's own server, hosted API judges, synthetic-data generators.

    from raylib.engines import EngineConfig, OpenAISettings, make_engine
    engine = make_engine(EngineConfig(backend="openai", model="my-model",
                                      openai=OpenAISettings(base_url="http://127.0.0.1:8000/v1", concurrency=16)))

Requests go out `concurrency` at a time (threads over one pooled httpx client). A connection error, a timeout, 429
or 5xx is retried up to `retries` times with exponential backoff and jitter (a Retry-After header is honoured);
any other error response fails only its own request, with the server's message. The chat endpoint cannot prefill
an answer, so `response_prefix` is not sent (results have `prefilled=False`). Token counts come from `usage`; with
n > 1 the completion tokens are split evenly across the answers (the API reports only their sum).
"""

from __future__ import annotations

import concurrent.futures
import os
import random
import time
from typing import Sequence

from raylib.engines import EngineConfig, GenerationOutput, GenerationRequest, GenerationResult, derive_seed

__all__ = ["OpenAIEngine", "RequestFailed"]

_RETRIED_STATUS = {408, 409, 429, 500, 502, 503, 504}


class RequestFailed(RuntimeError):
    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable  # the endpoint failed (not the request): a later run may succeed


class OpenAIEngine:
    def __init__(self, config: EngineConfig):
        import httpx

        self.config, self.settings = config, config.openai
        key = os.environ.get(self.settings.api_key_env, "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        limits = httpx.Limits(max_connections=self.settings.concurrency, max_keepalive_connections=self.settings.concurrency)
        self.client = httpx.Client(base_url=self.settings.base_url.rstrip("/"), headers=headers, limits=limits,
                                   timeout=self.settings.timeout_s)
        self.pool = concurrent.futures.ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="openai")

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return list(self.pool.map(self._one, requests))

    def _one(self, request: GenerationRequest) -> GenerationResult:
        try:
            return self._parse(request, self._post(*self._body(request)))
        except RequestFailed as exc:
            return GenerationResult(error=str(exc), retryable=exc.retryable)
        except ValueError as exc:
            return GenerationResult(error=f"invalid request: {exc}")

    def _body(self, request: GenerationRequest) -> tuple[str, dict]:
        p = request.params
        body = {"model": self.config.model, "n": p.n, "temperature": p.temperature, "top_p": p.top_p,
                "max_tokens": p.max_tokens}
        if p.stop:
            body["stop"] = list(p.stop)
        seed = derive_seed(p.seed, request.key)
        if seed is not None:
            body["seed"] = seed
        if self.settings.api == "chat":
            messages = request.messages if request.messages is not None else [{"role": "user", "content": request.prompt}]
            if not messages or not all(isinstance(m, dict) and "role" in m and "content" in m for m in messages):
                raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...}")
            return "/chat/completions", {**body, "messages": list(messages)}
        if request.prompt is None:
            raise ValueError("the completions API takes a plain prompt: use prompt.style=completion, or openai.api=chat")
        return "/completions", {**body, "prompt": request.prompt}

    def _post(self, path: str, body: dict) -> dict:
        import httpx

        s = self.settings
        for attempt in range(s.retries + 1):
            delay = s.backoff_s * (2 ** attempt) * (0.5 + random.random())
            try:
                response = self.client.post(path, json=body)
            except httpx.TransportError as exc:  # refused, reset, timed out: worth another try
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError:
                        raise RequestFailed(f"{path}: the server answered 200 with a body that is not JSON: {response.text[:200]!r}")
                problem = f"HTTP {response.status_code}: {response.text[:500]}"
                if response.status_code not in _RETRIED_STATUS:
                    raise RequestFailed(f"{path}: {problem}")
                retry_after = response.headers.get("retry-after", "")
                if retry_after.replace(".", "", 1).isdigit():
                    delay = min(float(retry_after), 60.0)
            if attempt < s.retries:
                time.sleep(delay)
        raise RequestFailed(f"{path}: gave up after {s.retries + 1} attempts; last: {problem}", retryable=True)

    def _parse(self, request: GenerationRequest, data: dict) -> GenerationResult:
        try:
            choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
            texts = [c["message"]["content"] or "" if self.settings.api == "chat" else c["text"] for c in choices]
            reasons = [c.get("finish_reason") or "" for c in choices]
        except (KeyError, TypeError) as exc:
            raise RequestFailed(f"unexpected response shape ({type(exc).__name__}: {exc}): {str(data)[:300]}")
        usage = data.get("usage") or {}
        share = int(usage.get("completion_tokens") or 0) // max(1, len(texts))
        return GenerationResult(outputs=[GenerationOutput(t, share, r) for t, r in zip(texts, reasons)],
                                prompt_tokens=int(usage.get("prompt_tokens") or 0), prefilled=False)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
