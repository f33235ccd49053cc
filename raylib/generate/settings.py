"""Generation settings: what to generate with, how, and how the engine actors are laid out.

    from raylib.generate.settings import GenerationSettings
    settings = GenerationSettings()             # embedded model, vLLM, n=1, greedy, instruct prompts
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from raylib.generate.engines.base import EngineConfig, SamplingParams
from raylib.generate.prompts import PromptSettings

__all__ = ["GenerationSettings", "GenerationShortcuts", "engine_identity", "generation_identity"]


class GenerationSettings(BaseModel):
    """What to generate with, how, and how the engine actors are laid out."""

    model_config = ConfigDict(extra="forbid")

    engine: EngineConfig = Field(default_factory=EngineConfig, description="Engine, model and its limits.")
    sampling: SamplingParams = Field(default_factory=SamplingParams, description="Sampling parameters.")
    prompt: PromptSettings = Field(default_factory=PromptSettings, description="Prompt style and templates.")
    replicas: int = Field(1, ge=1, description="Engine actors (each loads the model once).")
    batch_size: int = Field(16, ge=1, description="Requests (problems) per actor call: the unit of streaming and of "
                            "retry.")
    calls_per_actor: int = Field(16, ge=1, le=64, description="Batches an engine actor works on at once; vLLM runs "
                                 "their requests in one continuous batch. batch_size x calls_per_actor requests in "
                                 "flight (256) keep vLLM's scheduler as full as one call with every prompt would.")
    num_cpus: float = Field(1.0, gt=0, description="CPUs reserved per engine actor.")
    num_gpus: float | None = Field(None, ge=0, description="GPUs per engine actor; None: tensor_parallel_size when the "
                                   "cluster has GPUs, else 0.")
    max_actor_restarts: int = Field(4, ge=1, description="Restarts of a dead engine actor (its batches are re-run) "
                                    "before the run fails.")
    wait_for_nodes_s: float = Field(600.0, gt=0, description="How long the pipeline may make no progress while some "
                                    "of its actors wait for a node with room (one was lost; an autoscaler may add "
                                    "one) before the job stops with exit 3, keeping what is done.")

    @model_validator(mode="after")
    def _check_endpoint_fits_prompts(self):
        if self.engine.backend == "openai":
            api, style = self.engine.openai.api, self.prompt.style
            if api == "completions" and style == "instruct":
                raise ValueError("openai.api=completions takes plain prompts: use prompt.style=completion (base "
                                 "models), or openai.api=chat for instruct prompts")
            if api == "chat" and style == "completion":
                raise ValueError("prompt.style=completion continues code, which a chat endpoint does not do: use "
                                 "openai.api=completions, or prompt.style=instruct")
        return self


class GenerationShortcuts(BaseModel):
    """Top-level flags of the jobs that generate (`--model`, `--n`, ...): each, when given, sets its field of the
    job's `generation` section, so the common settings need no dotted path. A job config lists this as a base."""

    model: str | None = Field(None, description="Shortcut for generation.engine.model ('embedded', an HF directory or "
                              "hub id).")
    backend: Literal["vllm", "hf", "openai"] | None = Field(None, description="Shortcut for generation.engine.backend.")
    n: int | None = Field(None, ge=1, description="Shortcut for generation.sampling.n (samples per problem).")
    temperature: float | None = Field(None, ge=0, description="Shortcut for generation.sampling.temperature.")
    max_tokens: int | None = Field(None, ge=1, description="Shortcut for generation.sampling.max_tokens.")
    prompt_style: Literal["instruct", "completion"] | None = Field(None,
                                                                   description="Shortcut for generation.prompt.style.")

    @model_validator(mode="after")
    def _apply_shortcuts(self):
        g = self.generation
        for value, section, field in ((self.model, g.engine, "model"), (self.backend, g.engine, "backend"),
                                      (self.n, g.sampling, "n"), (self.temperature, g.sampling, "temperature"),
                                      (self.max_tokens, g.sampling, "max_tokens"),
                                      (self.prompt_style, g.prompt, "style")):
            if value is not None:
                setattr(section, field, value)
        # setattr skips validation: check the whole section again, with the shortcuts in it
        self.generation = GenerationSettings.model_validate(g.model_dump())
        return self


def engine_identity(engine: EngineConfig) -> dict:
    """What an engine's answers depend on: backend, model, dtype, context length, extra kwargs, and for an endpoint
    its URL and API; not how it is laid out (threads, memory, concurrency)."""
    identity = engine.model_dump(mode="json", include={"backend", "model", "dtype", "max_model_len", "engine_kwargs"})
    if engine.backend == "openai":
        identity["openai"] = engine.openai.model_dump(mode="json", include={"base_url", "api"})
    return identity


def generation_identity(dataset: str, problems_sha: str, settings: GenerationSettings) -> dict:
    """What the samples in an output directory depend on: the problem set (`raylib.data.problems.problems_sha` of all of
    it: --limit may change) and every generation setting but n (which may change) and the actor layout.
    jobs/generate.py and jobs/evaluate.py both check it (raylib.generate.loop.claim_samples_output)."""
    return {"dataset": dataset, "problems_sha": problems_sha,
            "engine": engine_identity(settings.engine),
            "sampling": settings.sampling.model_dump(mode="json", exclude={"n"}),
            "prompt": settings.prompt.model_dump(mode="json")}
