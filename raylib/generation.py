"""The generation stage on Ray Data: problems stream through a pool of engine actors (vLLM by default) into samples.

    from raylib.generation import GenerationSettings, SamplesFile, generation_stage, pending_requests
    settings = GenerationSettings()                              # embedded model, vLLM, n=1, greedy, instruct prompts
    store = SamplesFile("out/samples.jsonl")                     # what an earlier (maybe killed) run generated
    requests = pending_requests(problems, settings.sampling.n, store.done)
    dataset = generation_stage(requests, problems, settings)      # a Ray Data dataset of sample rows (lazy)

Each actor (`GenerateSamples`, a Ray Data callable class) loads the model once and turns a batch of requests - one per
(problem, first sample id, count) - into one row per sample. A request that cannot run (an oversized or malformed
prompt) yields rows with `generation_error` set and an empty program, so nothing is dropped: such samples fail.
Ray Data restarts an actor that dies and re-runs its batch (up to `max_actor_restarts` times). An actor works on
`calls_per_actor` batches at once, and the vLLM engine runs all their requests in one continuous batch. Samples are
keyed (task_id, sample_id), and sample i of a problem is always seeded with derived(seed, task_id) + i (vLLM's own
rule for the samples of one request), so a resumed run produces what an uninterrupted one would.

Why not `ray.data.llm`: its vLLM stage reserves GPU bundles in a placement group by default and runs vLLM's async
engine in a separate engine-core process (25-38 s to start here vs 4-19 s in-process), and it covers vLLM only; this
stage runs the same code for the vLLM, transformers and OpenAI-compatible engines, on CPU and GPU, and records
per-sample errors, finish reasons and token counts in the sample file itself.

Sample-file rows (samples.jsonl; evalplus-compatible: task_id + solution or completion):
  task_id, sample_id, completion | solution, raw_output (the whole answer), finish_reason, prompt_tokens,
  output_tokens, error ("" or why there is no answer), retryable (the error was the infrastructure's), model
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from raylib.engines import EngineConfig, GenerationRequest, SamplingParams
from raylib.problems import Problem
from raylib.samples import Sample
from raylib.prompts import PromptSettings, answer_to_sample, build_prompt, sample_program

__all__ = [
    "GenerateSamples", "GenerationSettings", "GenerationShortcuts", "SamplesFile", "generated_samples", "generation_identity",
    "generation_stage",
    "generation_summary", "pending_requests", "sample_key",
]

STAGE_COLUMNS = ("task_id", "sample_id", "program", "generation_error", "sample")  # what GenerateSamples emits


class GenerationSettings(BaseModel):
    """What to generate with, how, and how the engine actors are laid out."""

    model_config = ConfigDict(extra="forbid")

    engine: EngineConfig = Field(default_factory=EngineConfig, description="Engine, model and its limits.")
    sampling: SamplingParams = Field(default_factory=SamplingParams, description="Sampling parameters.")
    prompt: PromptSettings = Field(default_factory=PromptSettings, description="Prompt style and templates.")
    replicas: int = Field(1, ge=1, description="Engine actors (each loads the model once).")
    batch_size: int = Field(16, ge=1, description="Requests (problems) per actor call: the unit of streaming and of retry.")
    calls_per_actor: int = Field(16, ge=1, le=64, description="Batches an engine actor works on at once; vLLM runs their "
                                 "requests in one continuous batch. batch_size x calls_per_actor requests in flight (256) "
                                 "keep vLLM's scheduler as full as one call with every prompt would.")
    num_cpus: float = Field(1.0, gt=0, description="CPUs reserved per engine actor.")
    num_gpus: float | None = Field(None, ge=0, description="GPUs per engine actor; None: tensor_parallel_size when the cluster has GPUs, else 0.")
    max_actor_restarts: int = Field(4, ge=1, description="Restarts of a dead engine actor (its batches are re-run) before the run fails.")

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

    model: str | None = Field(None, description="Shortcut for generation.engine.model ('embedded', an HF directory or hub id).")
    backend: Literal["vllm", "hf", "openai"] | None = Field(None, description="Shortcut for generation.engine.backend.")
    n: int | None = Field(None, ge=1, description="Shortcut for generation.sampling.n (samples per problem).")
    temperature: float | None = Field(None, ge=0, description="Shortcut for generation.sampling.temperature.")
    max_tokens: int | None = Field(None, ge=1, description="Shortcut for generation.sampling.max_tokens.")
    prompt_style: Literal["instruct", "completion"] | None = Field(None, description="Shortcut for generation.prompt.style.")

    @model_validator(mode="after")
    def _apply_shortcuts(self):
        g = self.generation
        for value, section, field in ((self.model, g.engine, "model"), (self.backend, g.engine, "backend"),
                                      (self.n, g.sampling, "n"), (self.temperature, g.sampling, "temperature"),
                                      (self.max_tokens, g.sampling, "max_tokens"), (self.prompt_style, g.prompt, "style")):
            if value is not None:
                setattr(section, field, value)
        # setattr skips validation: check the whole section again, with the shortcuts in it
        self.generation = GenerationSettings.model_validate(g.model_dump())
        return self


def generation_identity(dataset: str, problems_sha: str, settings: GenerationSettings) -> dict:
    """What the samples in an output directory depend on: the problem set (`raylib.problems.problems_sha` of all of
    it: --limit may change) and every generation setting but n (which may change) and the actor layout.
    jobs/generate.py and jobs/evaluate.py both check it (raylib.config.claim_output on generation_identity.json)."""
    engine = settings.engine.model_dump(mode="json", include={"backend", "model", "dtype", "max_model_len", "engine_kwargs"})
    if settings.engine.backend == "openai":
        engine["openai"] = settings.engine.openai.model_dump(mode="json", include={"base_url", "api"})
    return {"dataset": dataset, "problems_sha": problems_sha,
            "engine": engine, "sampling": settings.sampling.model_dump(mode="json", exclude={"n"}),
            "prompt": settings.prompt.model_dump(mode="json")}


def generated_samples(lines, problems: dict[str, Problem], n: int) -> list[Sample]:
    """The samples to evaluate from sample-file rows (JSON text): those of `problems` with sample_id < n (a run
    with a smaller --limit or n leaves the others in the file, unused), keyed by their own sample_id."""
    samples = []
    for line in lines:
        row = json.loads(line)
        problem = problems.get(row["task_id"])
        if problem is not None and row["sample_id"] < n:
            samples.append(Sample(row["task_id"], row["sample_id"], sample_program(problem, row), 0, row.get("error") or ""))
    return samples


def generation_summary(lines: list[str], seconds: float | None = None) -> dict:
    """Counts over sample rows (JSON text): samples, errors, finish reasons, prompt/output tokens (and output
    tokens per second of generation when `seconds` is given)."""
    rows = [json.loads(line) for line in lines]
    output_tokens = sum(int(r.get("output_tokens") or 0) for r in rows)
    summary = {
        "samples": len(rows), "errors": sum(1 for r in rows if r.get("error")),
        "retryable_errors": sum(1 for r in rows if r.get("retryable")),
        "finish_reasons": dict(sorted(Counter(r.get("finish_reason", "") for r in rows).items())),
        "prompt_tokens": sum(int(r.get("prompt_tokens") or 0) for r in rows), "output_tokens": output_tokens,
        "mean_output_tokens": round(output_tokens / len(rows), 1) if rows else 0.0,
    }
    if seconds:
        summary["output_tokens_per_s"] = round(output_tokens / seconds, 1)
    first_errors = [f"{r['task_id']}#{r['sample_id']}: {r['error'][:300]}" for r in rows if r.get("error")][:10]
    if first_errors:
        summary["first_errors"] = first_errors
    return summary


def sample_key(task_id: str, sample_id: int) -> tuple[str, int]:
    return task_id, int(sample_id)


def pending_requests(problems: dict[str, Problem], n: int, done: set[tuple[str, int]]) -> list[dict]:
    """Requests for every sample id in 0..n-1 of every problem that `done` lacks: one per contiguous run of missing
    ids, {task_id, first_sample_id, count}, in problem order."""
    requests = []
    for task_id in problems:
        first = None
        for sample_id in range(n + 1):
            missing = sample_id < n and (task_id, sample_id) not in done
            if missing and first is None:
                first = sample_id
            elif not missing and first is not None:
                requests.append({"task_id": task_id, "first_sample_id": first, "count": sample_id - first})
                first = None
    return requests


class GenerateSamples:
    """Ray Data stage. Input columns: task_id, first_sample_id, count. Output columns: STAGE_COLUMNS: task_id,
    sample_id, program (what the sandbox runs), generation_error, and sample (the samples.jsonl row as JSON text)."""

    def __init__(self, problems: dict[str, dict], settings: dict):
        from raylib.engines import make_engine

        self.settings = GenerationSettings.model_validate(settings)
        self.problems = {task_id: Problem.model_validate(p) for task_id, p in problems.items()}
        started = time.time()
        self.engine = make_engine(self.settings.engine)
        # An engine that cannot prefill the opening fence must not stop at the closing one (it would stop at the
        # opening fence of an answer that starts with prose).
        prefill = self.settings.prompt.prefill and getattr(self.engine, "can_prefill", True)
        self.prompt_settings = self.settings.prompt.model_copy(update={"prefill": prefill})
        engine = self.settings.engine
        threads = getattr(self.engine, "threads", None)
        print(f"codeloop: {engine.backend} engine for {engine.model} ready in {time.time() - started:.1f} s "
              f"(at {time.time():.3f})" + (f" with {threads} CPU threads" if threads else ""), flush=True)

    def __call__(self, batch: dict) -> dict:
        s = self.settings
        keys = [(str(t), int(f), int(c)) for t, f, c in zip(batch["task_id"], batch["first_sample_id"], batch["count"])]
        prompts = [build_prompt(self.problems[t], self.prompt_settings) for t, _, _ in keys]
        requests = [GenerationRequest(prompt=p.text, messages=list(p.messages) if p.messages else None,
                                      response_prefix=p.response_prefix, key=t, first_sample=first,
                                      params=s.sampling.model_copy(update={"n": count, "stop": [*s.sampling.stop, *p.stop]}))
                    for (t, first, count), p in zip(keys, prompts)]
        try:
            results = self.engine.generate(requests)
        except Exception as exc:
            if type(exc).__name__ == "EngineBroken":  # the engine is gone: end the actor; Ray restarts it, retrying
                print(f"codeloop: {exc}; exiting so that Ray restarts this actor", flush=True)
                os._exit(1)
            raise
        rows = []
        for (task_id, first, count), prompt, result in zip(keys, prompts, results, strict=True):
            problem = self.problems[task_id]
            for j in range(count):
                row = {"task_id": task_id, "sample_id": first + j}
                error = result.error or ("" if j < len(result.outputs) else
                                         f"the engine returned {len(result.outputs)} answers for {count} samples")
                if not error:
                    out = result.outputs[j]
                    try:
                        fields = answer_to_sample(problem, prompt, out.text, result.prefilled)
                    except Exception as exc:  # noqa: BLE001 - never lose a row to post-processing
                        error = f"making a program of the answer failed: {type(exc).__name__}: {exc}"
                    else:
                        row.update(fields, raw_output=(prompt.response_prefix if result.prefilled else "") + out.text,
                                   finish_reason=out.finish_reason, prompt_tokens=result.prompt_tokens,
                                   output_tokens=out.tokens, error="", retryable=False)
                if error:
                    row.update(solution="", raw_output="", finish_reason="error", prompt_tokens=result.prompt_tokens,
                               output_tokens=0, error=error, retryable=result.retryable)
                row["model"] = s.engine.model
                rows.append((row, "" if error else sample_program(problem, row), error))
        return {"task_id": [r["task_id"] for r, _, _ in rows], "sample_id": [r["sample_id"] for r, _, _ in rows],
                "program": [p for _, p, _ in rows], "generation_error": [e for _, _, e in rows],
                "sample": [json.dumps(r, ensure_ascii=False) for r, _, _ in rows]}

    def __del__(self):
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.close()


def generation_stage(requests: list[dict], problems: dict[str, Problem], settings: GenerationSettings):
    """A lazy Ray Data dataset of generated sample rows (STAGE_COLUMNS) for `requests` (see `pending_requests`).

    Needs `raylib.cluster.init_cluster()` first. Consume it with `iter_batches`, or chain the execution stage.
    """
    import ray

    from raylib.cluster import cluster_resources, quiet_data_context

    quiet_data_context()
    used = {r["task_id"] for r in requests}
    num_gpus = settings.num_gpus
    if num_gpus is None:
        num_gpus = settings.engine.tensor_parallel_size if cluster_resources().get("GPU", 0) > 0 else 0
    blocks = max(1, math.ceil(len(requests) / settings.batch_size))
    dataset = ray.data.from_items(requests, override_num_blocks=blocks)
    return dataset.map_batches(
        GenerateSamples,
        fn_constructor_kwargs={"problems": {t: problems[t].model_dump(mode="json") for t in used},
                               "settings": settings.model_dump(mode="json")},
        batch_size=settings.batch_size, num_cpus=settings.num_cpus, num_gpus=num_gpus,
        compute=ray.data.ActorPoolStrategy(size=min(settings.replicas, blocks),
                                           max_concurrent_calls_per_actor=settings.calls_per_actor,
                                           enable_true_multi_threading=settings.calls_per_actor > 1),
        # A dead engine actor is restarted and its batches re-run, but not forever: a batch that kills the engine
        # every time ends the run (what was generated is kept; a re-run resumes) instead of looping.
        max_restarts=settings.max_actor_restarts,
    )


class SamplesFile:
    """samples.jsonl, appended as samples arrive and resumable after a kill at any point (a torn last line is cut).

    `done` holds the (task_id, sample_id) keys generated for good; rows whose error was the infrastructure's
    (`retryable`) are generated again. `finalize` rewrites the file once, atomically, one row per key (the latest),
    in problem then sample order, so the file reads like any evalplus sample file.
    """

    def __init__(self, path: str | Path):
        from raylib.evaluation import read_appended_lines

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lines: dict[tuple[str, int], str] = {}
        self.done: set[tuple[str, int]] = set()
        for line in read_appended_lines(self.path):
            try:
                row = json.loads(line)
                key = sample_key(row["task_id"], row["sample_id"])
            except (ValueError, KeyError, TypeError):
                continue  # unreadable rows are generated again, not trusted
            self._keep(key, line, bool(row.get("retryable")))
        self._file = open(self.path, "a", encoding="utf-8")

    def _keep(self, key: tuple[str, int], line: str, retryable: bool) -> None:
        self.lines[key] = line
        if retryable:
            self.done.discard(key)
        else:
            self.done.add(key)

    def append(self, lines: list[str]) -> int:
        """Append sample rows (JSON text) whose key is not done yet; returns how many were written."""
        fresh = []
        for line in lines:
            row = json.loads(line)
            key = sample_key(row["task_id"], row["sample_id"])
            if key in self.done:
                continue  # a re-run batch delivers its rows again
            self._keep(key, line, bool(row.get("retryable")))
            fresh.append(line)
        if fresh:
            self._file.write("".join(line + "\n" for line in fresh))
            self._file.flush()
        return len(fresh)

    def finalize(self, problem_order: dict[str, int]) -> int:
        """Rewrite the file in (problem, sample_id) order, one row per key; returns the number of rows."""
        self._file.close()
        from raylib.evaluation import rewrite_lines

        keys = sorted(self.lines, key=lambda k: (problem_order.get(k[0], 1 << 30), k[0], k[1]))
        rewrite_lines(self.path, [self.lines[k] for k in keys])
        self._file = open(self.path, "a", encoding="utf-8")
        return len(keys)

    def close(self) -> None:
        self._file.close()
