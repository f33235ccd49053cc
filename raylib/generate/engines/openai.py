"""An OpenAI-compatible HTTP endpoint as an engine: vLLM's own server, hosted API judges, synthetic-data generators.

    from raylib.generate.engines import make_engine
    from raylib.generate.engines.base import EngineConfig, OpenAISettings
    engine = make_engine(EngineConfig(backend="openai", model="my-model",
                                      openai=OpenAISettings(base_url="http://127.0.0.1:8000/v1", concurrency=16)))

Each sample is its own HTTP request (n=1, seed + i), `concurrency` at a time (threads over one pooled httpx client).
A connection error, a timeout, 429 or 5xx is retried up to `retries` times with exponential backoff and jitter (a
Retry-After header is honoured); what outlives the retries, a bad key or URL (401/403/404) and a body that is not
JSON are marked `retryable` (the next run asks again); any other error response fails only its own request, with
the server's message. The chat endpoint cannot prefill an answer, so `response_prefix` is not sent (results have
`prefilled=False`; the prompt builder then asks for no closing-fence stop). Token counts come from `usage`.
"""

from __future__ import annotations

import concurrent.futures
import os
import random
import time
from typing import Sequence

from raylib.generate.engines.base import (
    EngineConfig,
    GenerationOutput,
    GenerationRequest,
    GenerationResult,
    failed_result,
)

__all__ = ["OpenAIEngine", "RequestFailed"]

_RETRIED_STATUS = {408, 409, 429, 500, 502, 503, 504}
_SETUP_STATUS = {401, 403, 404}  # not retried now, but retryable: the next run (with the setup fixed) asks again


class RequestFailed(RuntimeError):
    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable  # the endpoint failed (not the request): a later run may succeed


class OpenAIEngine:
    can_prefill = False  # chat endpoints answer from scratch

    def __init__(self, config: EngineConfig):
        import httpx

        self.config, self.settings = config, config.openai
        key = os.environ.get(self.settings.api_key_env, "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        limits = httpx.Limits(max_connections=self.settings.concurrency,
                              max_keepalive_connections=self.settings.concurrency)
        self.client = httpx.Client(base_url=self.settings.base_url.rstrip("/"), headers=headers, limits=limits,
                                   timeout=self.settings.timeout_s)
        self.pool = concurrent.futures.ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="openai")

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        # One HTTP request per sample (n=1, seed + i): servers differ in how they seed (or even honour) n > 1.
        calls = [(r, i) for r in requests for i in range(r.params.n)]
        answers = iter(self.pool.map(lambda call: self._one(*call), calls))
        results = []
        for request in requests:
            parts = [next(answers) for _ in range(request.params.n)]
            failed = next((part for part in parts if part.error), None)
            if failed is not None:  # the request is all or nothing: its samples are asked again together
                results.append(GenerationResult(error=failed.error, retryable=any(part.retryable for part in parts)))
            else:
                results.append(GenerationResult(outputs=[part.outputs[0] for part in parts],
                                                prompt_tokens=parts[0].prompt_tokens))
        return results

    def _one(self, request: GenerationRequest, index: int) -> GenerationResult:
        try:
            return self._parse(self._post(*self._body(request, index)))
        except RequestFailed as exc:
            return GenerationResult(error=str(exc), retryable=exc.retryable)
        except ValueError as exc:
            return GenerationResult(error=f"invalid request: {exc}")
        except Exception as exc:  # noqa: BLE001 - whatever else went wrong fails this request only, and may pass later
            return failed_result(exc, retryable=True)

    def _body(self, request: GenerationRequest, index: int) -> tuple[str, dict]:
        p = request.params
        body = {"model": self.config.model, "n": 1, "temperature": p.temperature, "top_p": p.top_p,
                "max_tokens": p.max_tokens}
        if p.stop:
            body["stop"] = list(p.stop)
        if request.seed is not None:
            body["seed"] = request.seed + index
        if self.settings.api == "chat":
            messages = (request.messages if request.messages is not None
                        else [{"role": "user", "content": request.prompt}])
            if not messages or not all(isinstance(m, dict) and "role" in m and "content" in m for m in messages):
                raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...}")
            return "/chat/completions", {**body, "messages": list(messages)}
        if request.prompt is None:
            raise ValueError("the completions API takes a plain prompt: use prompt.style=completion, "
                             "or openai.api=chat")
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
                    except ValueError:  # a proxy's error page, a wrong base_url: the endpoint, not the request
                        raise RequestFailed(f"{path}: the server answered 200 with a body that is not JSON: "
                                            f"{response.text[:200]!r}", retryable=True)
                problem = f"HTTP {response.status_code}: {response.text[:500]}"
                if response.status_code in _SETUP_STATUS:  # a bad key or URL: fix it and re-run;
                    # not the request's fault
                    raise RequestFailed(f"{path}: {problem} (check the endpoint's base_url "
                                        f"({s.base_url}) and the API key in ${s.api_key_env})", retryable=True)
                if response.status_code not in _RETRIED_STATUS:
                    raise RequestFailed(f"{path}: {problem}")
                retry_after = response.headers.get("retry-after", "")
                if retry_after.replace(".", "", 1).isdigit():
                    delay = min(float(retry_after), 60.0)
            if attempt < s.retries:
                time.sleep(delay)
        raise RequestFailed(f"{path}: gave up after {s.retries + 1} attempts; last: {problem}", retryable=True)

    def _parse(self, data) -> GenerationResult:
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] if self.settings.api == "chat" else choice["text"]
            reason = str(choice.get("finish_reason") or "")
            usage = data.get("usage") or {}
            tokens, prompt_tokens = int(usage.get("completion_tokens") or 0), int(usage.get("prompt_tokens") or 0)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise RequestFailed(f"unexpected response shape ({type(exc).__name__}: {exc}): {str(data)[:300]}")
        return GenerationResult(outputs=[GenerationOutput(text if isinstance(text, str) else "", tokens, reason)],
                                prompt_tokens=prompt_tokens)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
