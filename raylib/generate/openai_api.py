"""The OpenAI-compatible API over the project's engines: request and response bodies, and the translation to and from
`GenerationRequest`/`GenerationResult`. Pure (pydantic only); `serve/generator.py` hosts it on Ray Serve.

    from raylib.generate.openai_api import CompletionRequest, completion_requests, completion_response
    body = CompletionRequest(model="embedded", prompt="def add(a, b):", n=2, max_tokens=32, seed=1)
    requests = completion_requests(body)                 # one GenerationRequest per prompt
    completion_response(body, requests, engine.generate(requests), model="embedded")   # OpenAI's JSON shape

What is supported: `n`, `temperature`, `top_p`, `max_tokens`, `stop` (a string or a list), `seed`, a list of prompts
(choice i*n + j is prompt i's answer j, as OpenAI numbers them). What is refused with a clear 422 rather than
ignored: `stream=true`, `logprobs`, `echo`, `best_of` other than n, penalties other than 0. Other OpenAI fields
(`user`, `metadata`, ...) are accepted and ignored. With `seed` the answers are reproducible: answer j of a prompt
is seeded with derived(seed) + j, as vLLM seeds the samples of one request.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from raylib.generate.engines.base import GenerationRequest, GenerationResult, SamplingParams

__all__ = [
    "ChatCompletionRequest", "ChatCompletionResponse", "CompletionRequest", "CompletionResponse", "ModelList",
    "chat_requests", "chat_response", "completion_requests", "completion_response", "model_list",
]

MAX_PROMPTS = 64


class _Sampling(BaseModel):
    """The sampling fields both endpoints share."""

    model_config = ConfigDict(extra="ignore")  # OpenAI clients send fields (user, metadata, ...) that change nothing

    model: str = Field(..., min_length=1, description="The served model's name (GET /v1/models lists it).")
    n: int = Field(1, ge=1, le=128, description="Answers per prompt.")
    temperature: float = Field(1.0, ge=0, le=2, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    stop: str | list[str] | None = Field(None, description="Up to 4 stop sequences, not included in the answer.")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="Makes the answers reproducible; None: random.")
    stream: bool = Field(False, description="Not supported: must be false.")
    logprobs: int | bool | None = Field(None, description="Not supported: must be null.")
    presence_penalty: float = Field(0.0, description="Not supported: must be 0.")
    frequency_penalty: float = Field(0.0, description="Not supported: must be 0.")

    @field_validator("stop")
    @classmethod
    def _stops(cls, stop):
        stops = [stop] if isinstance(stop, str) else (stop or [])
        if len(stops) > 4 or any(not s for s in stops):
            raise ValueError("stop takes at most 4 non-empty strings")
        return stops

    @field_validator("stream", "logprobs", "presence_penalty", "frequency_penalty")
    @classmethod
    def _unsupported(cls, value, info):
        if value:
            raise ValueError(f"{info.field_name} is not supported by this server; leave it unset")
        return value

    def params(self, max_tokens: int) -> SamplingParams:
        return SamplingParams(n=self.n, temperature=self.temperature, top_p=self.top_p, max_tokens=max_tokens,
                              stop=list(self.stop or []), seed=self.seed)


class CompletionRequest(_Sampling):
    """POST /v1/completions."""

    prompt: str | list[str] = Field(..., description=f"A prompt, or a list of up to {MAX_PROMPTS}.")
    max_tokens: int = Field(16, ge=1, description="Most new tokens per answer (OpenAI's default: 16).")
    echo: bool = Field(False, description="Not supported: must be false.")
    best_of: int | None = Field(None, description="Not supported beyond n.")

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, prompt):
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not prompts or len(prompts) > MAX_PROMPTS or any(not isinstance(p, str) or not p for p in prompts):
            raise ValueError(f"prompt must be a non-empty string or a list of 1 to {MAX_PROMPTS} of them")
        return prompt

    @field_validator("echo")
    @classmethod
    def _no_echo(cls, echo):
        if echo:
            raise ValueError("echo is not supported by this server; leave it unset")
        return echo

    @model_validator(mode="after")
    def _best_of(self):
        if self.best_of not in (None, self.n):
            raise ValueError("best_of is not supported (it must equal n); rerank with POST /rerank instead")
        return self


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"] = Field(..., description="Who says it.")
    content: str = Field(..., description="What is said (text only).")


class ChatCompletionRequest(_Sampling):
    """POST /v1/chat/completions."""

    messages: list[ChatMessage] = Field(..., min_length=1, max_length=256, description="The conversation so far.")
    max_tokens: int | None = Field(None, ge=1, description="Most new tokens per answer; None: 512.")
    max_completion_tokens: int | None = Field(None, ge=1, description="OpenAI's newer name for max_tokens.")


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: str
    logprobs: None = None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class ChatChoice(BaseModel):
    index: int
    message: ChatMessage
    finish_reason: str


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "codeloop"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class RequestFailed(ValueError):
    """The engine could not answer a request (e.g. a prompt longer than the model's context): the client's fault
    unless `retryable` (the infrastructure's)."""

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


def model_list(name: str, created: int) -> ModelList:
    return ModelList(data=[ModelCard(id=name, created=created)])


def completion_requests(body: CompletionRequest) -> list[GenerationRequest]:
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    return [GenerationRequest(prompt=p, params=body.params(body.max_tokens), key=str(i)) for i, p in enumerate(prompts)]


def chat_requests(body: ChatCompletionRequest) -> list[GenerationRequest]:
    max_tokens = body.max_completion_tokens or body.max_tokens or 512
    return [GenerationRequest(messages=[m.model_dump() for m in body.messages], params=body.params(max_tokens))]


def _checked(results: list[GenerationResult]) -> list[GenerationResult]:
    for i, result in enumerate(results):
        if result.error:
            where = f"prompt {i}: " if len(results) > 1 else ""
            raise RequestFailed(where + result.error, result.retryable)
    return results


def _usage(results: list[GenerationResult]) -> Usage:
    prompt = sum(r.prompt_tokens for r in results)
    completion = sum(o.tokens for r in results for o in r.outputs)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def completion_response(body: CompletionRequest, results: list[GenerationResult], model: str) -> CompletionResponse:
    """OpenAI's completion body for `results` (one per prompt). Raises RequestFailed for a prompt that failed."""
    choices = [CompletionChoice(index=i * body.n + j, text=o.text, finish_reason=o.finish_reason)
               for i, r in enumerate(_checked(results)) for j, o in enumerate(r.outputs)]
    return CompletionResponse(id=f"cmpl-{uuid.uuid4().hex}", created=int(time.time()), model=model, choices=choices,
                              usage=_usage(results))


def chat_response(results: list[GenerationResult], model: str) -> ChatCompletionResponse:
    """OpenAI's chat completion body for the one result of a chat request. Raises RequestFailed when it failed."""
    [result] = _checked(results)
    choices = [ChatChoice(index=j, message=ChatMessage(role="assistant", content=o.text), finish_reason=o.finish_reason)
               for j, o in enumerate(result.outputs)]
    return ChatCompletionResponse(id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=model,
                                  choices=choices, usage=_usage(results))
