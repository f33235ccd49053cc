"""The generator app: an OpenAI-compatible API over codeloop's engines (vLLM by default, on the embedded model).

    serve run serve.generator:build_app                              # the embedded model on CPU vLLM
    serve run serve.generator:build_app engine.model=DIR engine.backend=hf
    curl -s 127.0.0.1:8000/v1/completions -H 'content-type: application/json' \\
         -d '{"model": "embedded", "prompt": "def add(a, b):", "max_tokens": 32, "n": 2, "seed": 1}'

Routes (under the app's route prefix, /v1): GET /models, POST /completions, POST /chat/completions (bodies in
`raylib.generate.openai_api`). The rerank app calls `sample` through a deployment handle. An engine serves many
requests at once: vLLM runs the requests of concurrent calls in one continuous batch.

`build_llm_app` serves the same model with `ray.serve.llm` instead (`build_openai_app`: vLLM's own OpenAI server,
with streaming, LoRA multiplexing and its autoscaling; it runs here on CPU vLLM with `accelerator_config: cpu`):

    serve run serve.generator:build_llm_app                          # /v1/... at the app's route prefix

Why `build_app` is the default: the rerank app asks the generator for samples of a problem through a deployment
handle (`sample`: codeloop's prompts, prefilled code fences, programs made of the answers), which `ray.serve.llm`'s
deployments do not offer; it serves vLLM only (not the transformers or OpenAI-compatible engines); and it runs
the engine core in a process of its own (start measured here: 56 s, against 15-20 s for `build_app`).
"""

# No `from __future__ import annotations`: Serve passes a typed builder its args as the pydantic model only when
# the annotation is the class itself, not a string.
import asyncio
import time

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from ray import serve

from raylib.data.problems import Problem
from raylib.generate.engines.base import EngineBroken, EngineConfig, SamplingParams
from raylib.generate.openai_api import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    CompletionResponse,
    ModelList,
    RequestFailed,
    chat_requests,
    chat_response,
    completion_requests,
    completion_response,
    model_list,
)
from raylib.generate.prompts import PromptSettings, build_prompt, engine_prompt_settings, prompt_request, sample_rows
from serve import http_errors

api = FastAPI(title="codeloop generator", version="1", description=__doc__)
body_limit = http_errors(api)


@api.exception_handler(RequestFailed)
async def request_failed(request: Request, exc: RequestFailed):
    """A request the engine could not answer: the client's (400, e.g. a prompt past the context) or, when
    retryable, the infrastructure's (503)."""
    return JSONResponse({"detail": str(exc)}, status_code=503 if exc.retryable else 400)


class GeneratorArgs(BaseModel):
    """`serve run serve.generator:build_app key=value` / the app's `args` in configs/serve.yaml."""

    model_config = ConfigDict(extra="forbid")

    engine: EngineConfig = Field(default_factory=EngineConfig, description="Engine and model (default: the embedded "
                                 "model on vLLM).")
    served_name: str | None = Field(None, description="The model name clients ask for; None: engine.model.")
    prompt: PromptSettings = Field(default_factory=PromptSettings, description="How /rerank asks for samples.")
    max_body_mb: float = Field(8.0, gt=0, description="Largest request body, MiB (413 past it).")


@serve.deployment(max_ongoing_requests=32, max_queued_requests=64, health_check_period_s=10,
                  ray_actor_options={"num_cpus": 1})
@serve.ingress(api)
class Generator:
    def __init__(self, args: dict):
        from raylib.generate.engines import make_engine

        self.args = GeneratorArgs.model_validate(args)
        body_limit.set_mib(self.args.max_body_mb)
        self.name = self.args.served_name or self.args.engine.model
        self.created = int(time.time())
        self.engine = make_engine(self.args.engine)
        self.prompt_settings = engine_prompt_settings(self.args.prompt, self.engine)
        self.broken = False

    def check_health(self) -> None:
        if self.broken:  # Serve replaces a replica whose health check raises
            raise RuntimeError("the engine is broken")

    async def _generate(self, requests):
        try:
            return await asyncio.to_thread(self.engine.generate, requests)
        except EngineBroken as exc:
            self.broken = True
            raise HTTPException(503, f"the engine died ({exc}); Serve is replacing this replica, retry",
                                headers={"Retry-After": "5"}) from exc

    def _model(self, name: str) -> None:
        if name != self.name:
            raise HTTPException(404, f"model {name!r} is not served here; this server serves {self.name!r}")

    @api.get("/models", response_model=ModelList)
    def models(self) -> ModelList:
        return model_list(self.name, self.created)

    @api.post("/completions", response_model=CompletionResponse)
    async def completions(self, body: CompletionRequest) -> CompletionResponse:
        self._model(body.model)
        return completion_response(body, await self._generate(completion_requests(body)), self.name)

    @api.post("/chat/completions", response_model=ChatCompletionResponse)
    async def chat_completions(self, body: ChatCompletionRequest) -> ChatCompletionResponse:
        self._model(body.model)
        return chat_response(await self._generate(chat_requests(body)), self.name)

    async def sample(self, problem: Problem, n: int, sampling: dict) -> tuple[list[str], list[str]]:
        """`n` programs for `problem` asked with the app's prompt settings, and the errors of samples that failed."""
        prompt = build_prompt(problem, self.prompt_settings)
        params = SamplingParams(n=n, **sampling)
        [result] = await self._generate([prompt_request(prompt, params, problem.task_id, 0, n)])
        rows = sample_rows(problem, prompt, result, 0, n, self.name)
        return [program for _, program, error in rows if not error], [error for _, _, error in rows if error]


def build_app(args: GeneratorArgs) -> serve.Application:
    """The generator app. Replicas, `max_ongoing_requests`, `max_queued_requests` and resources are set in the Serve
    config (configs/serve.yaml); on a GPU cluster give the deployment `ray_actor_options: {num_gpus: 1}` (or
    engine.tensor_parallel_size GPUs)."""
    return Generator.bind(args.model_dump(mode="json"))


def build_llm_app(args: GeneratorArgs) -> serve.Application:
    """The same model served by `ray.serve.llm.build_openai_app` (engine.backend must be vllm). On a machine without
    GPUs the engine is placed on CPUs (float32, eager, engine.cpu_kvcache_gib of KV cache); with GPUs it takes
    engine.tensor_parallel_size of them per replica."""
    from ray.serve.llm import LLMConfig, build_openai_app

    from raylib.cluster import cluster_has_gpus
    from raylib.models import resolve_model

    engine = args.engine
    if engine.backend != "vllm":
        raise ValueError(f"build_llm_app serves vLLM models; engine.backend is {engine.backend!r} (use build_app)")
    path = resolve_model(engine.model)
    gpus = cluster_has_gpus()
    kwargs = dict(max_model_len=engine.max_model_len, tensor_parallel_size=engine.tensor_parallel_size,
                  **engine.engine_kwargs)
    env = {"HF_HUB_OFFLINE": "1"}
    placement: dict = {}
    if gpus:
        kwargs.update(dtype=engine.dtype, gpu_memory_utilization=engine.gpu_memory_utilization)
    else:  # ray.serve.llm places engines on GPUs unless told otherwise
        kwargs.update(dtype="float32" if engine.dtype == "auto" else engine.dtype, enforce_eager=True)
        env.update(VLLM_CPU_KVCACHE_SPACE=str(engine.cpu_kvcache_gib), VLLM_ENABLE_V1_MULTIPROCESSING="0")
        placement = {"accelerator_config": {"kind": "cpu"}}
    config = LLMConfig(model_loading_config={"model_id": args.served_name or engine.model, "model_source": path},
                       engine_kwargs=kwargs, runtime_env={"env_vars": env}, **placement)
    # its OpenAI ingress only forwards requests: no CPU of its own, so that it fits beside the engine on 2 cores
    return build_openai_app({"llm_configs": [config], "ingress_deployment_config": {"ray_actor_options":
                                                                                   {"num_cpus": 0}}})
