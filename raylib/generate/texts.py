"""Answers to a set of keyed prompts from one engine actor, kept in a resumable JSONL as they arrive: what teacher,
executor and synthetic-data models are asked.

    from raylib.generate.texts import sample_outputs
    texts = sample_outputs({"item-1": "What does this print?"}, EngineConfig(model=...).model_dump(), n=1,
                           temperature=0.0, max_tokens=256, path="runs/x/answers.jsonl")      # after init_cluster()
    texts["item-1"]        # [answer, ...]; [] when the engine refused the prompt (too long)

A prompt is a user turn (a string) or a whole conversation (a list of chat messages); either goes through the model's
chat template. Re-running with the same path asks only the keys without answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Hashable, TextIO

from raylib.files import JsonlStore

__all__ = ["TextsFile", "sample_outputs"]

BATCH = 128  # prompts per engine call: big enough to keep a vLLM batch or an endpoint's concurrency full


class TextsFile(JsonlStore):
    """One row per key: {"key", "texts": [...], "error", "retryable"}; rows with an engine error are produced
    again."""

    def key_of_row(self, row: dict) -> Hashable:
        return row["key"]

    def is_done(self, row: dict) -> bool:
        return not row.get("error")


def sample_outputs(prompts: dict[str, str | list[dict]], engine: dict, *, n: int, temperature: float,
                   max_tokens: int, path: str | Path, seed: int = 0, num_cpus: float = 1,
                   num_gpus: float | None = None, progress: bool | TextIO = True, desc: str = "predicting",
                   errors: dict[str, tuple[str, bool]] | None = None) -> dict[str, list[str]]:
    """{key: n answer texts} for every prompt, resumable in `path`, from one engine actor (`engine`: an
    EngineConfig's fields; an openai backend keeps `openai.concurrency` requests in flight; `num_gpus` None: the
    engine's tensor_parallel_size on a cluster with GPUs, see raylib.cluster.engine_gpus). Prompts the engine
    refuses (too long) or could not answer (an endpoint down) get no texts; `errors`, when given, receives
    {key: (the error, whether the endpoint failed: a re-run asks again)} for them. Rows of keys not asked this
    time stay in the file."""
    import ray

    from raylib.cluster import engine_gpus
    from raylib.console import progress_bar
    from raylib.generate.engines.actor import EngineActor
    from raylib.generate.engines.base import EngineConfig, GenerationRequest, SamplingParams

    store = TextsFile(path)
    todo = [key for key in prompts if key not in store.done]
    if todo:
        params = SamplingParams(n=n, temperature=temperature, max_tokens=max_tokens, seed=seed)
        gpus = engine_gpus(EngineConfig.model_validate(engine), num_gpus)
        actor = ray.remote(EngineActor).options(num_cpus=num_cpus, num_gpus=gpus, max_concurrency=2).remote(engine)

        def messages(prompt: str | list[dict]) -> list[dict]:
            return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt

        with progress_bar(len(prompts), desc, progress, initial=len(prompts) - len(todo), unit="item") as bar:
            for start in range(0, len(todo), BATCH):
                keys = todo[start:start + BATCH]
                requests = [GenerationRequest(messages=messages(prompts[k]), params=params, key=k) for k in keys]
                results = ray.get(actor.generate.remote(requests))
                store.append([{"key": k, "texts": [o.text for o in r.outputs], "error": r.error,
                               "retryable": r.retryable} for k, r in zip(keys, results)])
                bar.update(len(keys))
        ray.kill(actor)
    store.rewrite([k for k in prompts if k in store.lines] + [k for k in store.lines if k not in prompts])
    rows = [json.loads(store.lines[k]) for k in prompts if k in store.lines]
    if errors is not None:
        errors.update({row["key"]: (row["error"], bool(row.get("retryable"))) for row in rows if row["error"]})
    return {row["key"]: row["texts"] for row in rows}
