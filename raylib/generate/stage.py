"""The generation stage on Ray Data: problems stream through a pool of engine actors (vLLM by default) into samples.

    from raylib.generate.samples_file import SamplesFile
    from raylib.generate.settings import GenerationSettings
    from raylib.generate.loop import pending_requests
    from raylib.generate.stage import generation_stage
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

from raylib.data.problems import Problem
from raylib.generate.engines.base import EngineBroken
from raylib.generate.prompts import build_prompt, engine_prompt_settings, prompt_request, sample_rows
from raylib.generate.settings import GenerationSettings

__all__ = ["STAGE_COLUMNS", "GenerateSamples", "generation_stage"]

STAGE_COLUMNS = ("task_id", "sample_id", "program", "generation_error", "sample")  # what GenerateSamples emits


class GenerateSamples:
    """Ray Data stage. Input columns: task_id, first_sample_id, count. Output columns: STAGE_COLUMNS: task_id,
    sample_id, program (what the sandbox runs), generation_error, and sample (the samples.jsonl row as JSON text)."""

    def __init__(self, problems: dict[str, dict], settings: dict):
        from raylib.generate.engines import make_engine

        self.settings = GenerationSettings.model_validate(settings)
        self.problems = {task_id: Problem.model_validate(p) for task_id, p in problems.items()}
        started = time.time()
        self.engine = make_engine(self.settings.engine)
        self.prompt_settings = engine_prompt_settings(self.settings.prompt, self.engine)
        engine = self.settings.engine
        threads = getattr(self.engine, "threads", None)
        print(f"codeloop: {engine.backend} engine for {engine.model} ready in {time.time() - started:.1f} s "
              f"(at {time.time():.3f})" + (f" with {threads} CPU threads" if threads else ""), flush=True)

    def __call__(self, batch: dict) -> dict:
        s = self.settings
        keys = [(str(t), int(f), int(c)) for t, f, c in zip(batch["task_id"], batch["first_sample_id"], batch["count"])]
        prompts = [build_prompt(self.problems[t], self.prompt_settings) for t, _, _ in keys]
        requests = [prompt_request(p, s.sampling, t, first, count) for (t, first, count), p in zip(keys, prompts)]
        try:
            results = self.engine.generate(requests)
        except EngineBroken as exc:  # the engine is gone: end the actor; Ray restarts it, retrying the batch
            print(f"codeloop: {exc}; exiting so that Ray restarts this actor", flush=True)
            os._exit(1)
        rows = [row for (task_id, first, count), prompt, result in zip(keys, prompts, results, strict=True)
                for row in sample_rows(self.problems[task_id], prompt, result, first, count, s.engine.model)]
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

    from raylib.cluster import engine_gpus, quiet_data_context

    quiet_data_context()
    used = {r["task_id"] for r in requests}
    num_gpus = engine_gpus(settings.engine, settings.num_gpus)
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
