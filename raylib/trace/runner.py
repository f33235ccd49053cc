"""The Ray shell of the executor recipe: trace runs on sandbox actors and score predictions with a reward model (a
teacher's Analyses and an executor's predictions come from raylib.generate.texts.sample_outputs). Traces go to a
resumable JSONL as they arrive.

    from raylib.trace.runner import TracingSettings, trace_runs, reward_scores
    trace_runs(runs, TracingSettings(), "runs/traces/traces.jsonl", progress=True)     # after init_cluster()
    reward_scores(pairs, "runs/rm/model")                                               # [float]

The pieces they call are pure (raylib.trace.items, answers, ase, sources); here only actors, batches and files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Hashable, TextIO

from pydantic import Field

from raylib.config import Section
from raylib.files import JsonlStore

__all__ = ["TracesFile", "TracingSettings", "reward_scores", "trace_runs"]

BATCH = 32


class TracingSettings(Section):
    actors: int = Field(1, ge=1, description="Sandbox actors (each a pool of workers_per_actor workers).")
    workers_per_actor: int = Field(2, ge=1, le=256, description="Sandbox workers per actor; the actor reserves this "
                                   "many CPUs.")
    max_steps: int = Field(200, ge=1, le=1_000_000, description="Steps traced per run; a longer run's trace is "
                           "truncated (its steps still make items, it gets no whole-program score).")
    max_value_chars: int = Field(100, ge=8, le=100_000, description="Characters of one value; a step with a longer "
                                 "value makes no item.")
    time_limit_s: float = Field(10.0, gt=0, le=600, description="Wall and CPU limit of one traced run, seconds.")
    memory_mb: int = Field(1024, ge=16, description="Memory limit of one traced run, MiB.")


class TracesFile(JsonlStore):
    """traces.jsonl: one row per run (its fields, then status, error, trace); sandbox failures are run again."""

    def key_of_row(self, row: dict) -> Hashable:
        return row["trace_id"]

    def is_done(self, row: dict) -> bool:
        return row["status"] != "sandbox-error"


def _request(run: dict, settings: TracingSettings):
    from sandbox.schema import ExecRequest, Limits, TraceSpec

    call = run["call"]
    spec = TraceSpec(entry_point=call[0], args=call[1]) if call else TraceSpec()
    spec = spec.model_copy(update={"max_steps": settings.max_steps, "max_value_chars": settings.max_value_chars})
    limits = Limits(wall_time_s=settings.time_limit_s, cpu_time_s=settings.time_limit_s, memory_mb=settings.memory_mb)
    return ExecRequest(code=run["code"], stdin=run["stdin"], trace=spec, limits=limits, request_id=run["trace_id"])


def trace_runs(runs: list[dict], settings: TracingSettings, path: str | Path, *, sandbox: dict | None = None,
               progress: bool | TextIO = True) -> TracesFile:
    """Trace every run not yet in `path`, on `settings.actors` sandbox actors; returns the store (all rows)."""
    import ray
    from ray.util import ActorPool

    from raylib.console import progress_bar
    from raylib.rerank.verifiers.execution import SandboxRunner

    store = TracesFile(path)
    todo = [run for run in runs if run["trace_id"] not in store.done]
    if todo:
        actor = ray.remote(SandboxRunner).options(num_cpus=settings.workers_per_actor)
        actors = [actor.remote(settings, sandbox) for _ in range(settings.actors)]
        pool = ActorPool(actors)
        batches = [todo[i:i + BATCH] for i in range(0, len(todo), BATCH)]
        with progress_bar(len(runs), "tracing", progress, initial=len(runs) - len(todo), unit="run") as bar:
            for batch, results in zip(batches, pool.map(lambda a, b: a.run.remote([_request(r, settings) for r in b]),
                                                        batches)):
                store.append([{**run, "status": r.status, "error": r.error, "trace": r.trace}
                              for run, r in zip(batch, results)])
                bar.update(len(batch))
        ray.get([a.close.remote() for a in actors])
        for handle in actors:
            ray.kill(handle)
    store.rewrite([run["trace_id"] for run in runs if run["trace_id"] in store.lines])
    return store


def reward_scores(pairs: list[tuple[str, str]], model: str, *, batch_size: int = 16, max_length: int = 1024,
                  num_cpus: float = 1) -> list[float]:
    """The reward model's score of each (prompt, answer), on a Ray actor."""
    import ray

    from raylib.rerank.settings import ModelVerifierSettings
    from raylib.rerank.verifiers.models import RewardModel

    if not pairs:
        return []
    settings = ModelVerifierSettings(model=model, batch_size=batch_size, max_length=max_length)
    actor = ray.remote(RewardModel).options(num_cpus=num_cpus).remote(settings)
    try:
        return ray.get(actor.values.remote(pairs))
    finally:
        ray.kill(actor)
