"""The execution stage on Ray Data: samples stream through a pool of actors, each holding one sandbox worker pool.

    from raylib.evaluate.stage import ExecutionPool, execute_samples
    pool = ExecutionPool(workers_per_actor=2)                      # actors: cluster CPUs / workers_per_actor
    execute_samples(samples, problems, limits, pool, on_rows=store.append)   # store: a ResultsFile

Each actor (`ExecuteSamples`, a Ray Data callable class) starts a `sandbox.Sandbox` once and runs batches of samples
through it; rows come back to the driver as they finish (streaming, unordered), so the caller can write them
incrementally. Ray Data restarts an actor that dies and re-runs its batch; the caller's `ResultsFile` drops any row
delivered twice. A batch whose sandbox broke comes back as "sandbox-error" rows, which callers retry.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field

from raylib.data.problems import Problem
from raylib.data.samples import Sample
from raylib.evaluate.requests import GENERATION_ERROR_STATUS, HEAD_FIELDS, build_request, result_row

__all__ = ["ExecuteSamples", "ExecutionPool", "actors_that_fit", "execute_samples", "batch_results", "execution_stage",
           "run_references_here", "run_references_on_cluster"]

log = logging.getLogger(__name__)


class ExecutionPool(BaseModel):
    """How the execution stage is laid out on the cluster."""

    model_config = ConfigDict(extra="forbid")

    actors: int | None = Field(None, ge=1, description="Execution actors; None: as many as the alive nodes hold, "
                               "each node its CPUs / workers_per_actor (an actor's workers share one node's cores).")
    workers_per_actor: int = Field(2, ge=1, le=256, description="Sandbox workers (parallel programs) per actor; "
                                   "the actor reserves this many CPUs.")
    batch_size: int = Field(256, ge=1, description="Samples per Ray Data batch (one actor call); small batches cost "
                            "Ray overhead per batch.")
    calls_per_actor: int = Field(2, ge=1, le=8, description="Batches an actor works on at once (hides the tail of "
                                 "each batch).")
    memory_mb: int = Field(1024, ge=16, description="Memory limit per program, MiB.")
    sandbox: dict = Field(default_factory=dict,
                          description="Extra sandbox.SandboxConfig fields (backend, python, ...).")
    resources: dict[str, float] = Field(default_factory=dict, description="Custom Ray resources each execution "
                                        "actor needs, e.g. {sandbox: 1} to run programs only on nodes started with "
                                        "--resources='{\"sandbox\": 8}'.")
    wait_for_nodes_s: float = Field(600.0, gt=0, description="How long the pipeline may make no progress while some "
                                    "of its actors wait for a node with room (one was lost; an autoscaler may add "
                                    "one) before the job stops with exit 3, keeping what is done.")


class ExecuteSamples:
    """Ray Data stage. Input columns: task_id, sample_id, program, and optionally generation_error (a sample the
    model produced no answer for: status "generation-error", not run) and sample (passed through: the generation
    stage's sample row). Output columns: HEAD_FIELDS (task_id, sample_id, program_sha, passed, status, judged_by), row
    (the whole results.jsonl row as JSON text), and sample when the input had it."""

    def __init__(self, problems: dict[str, dict], limits: dict[str, float], memory_mb: int, sandbox: dict):
        from sandbox import Sandbox, SandboxConfig

        self.problems = {task_id: Problem.model_validate(p) for task_id, p in problems.items()}
        self.limits, self.memory_mb = limits, memory_mb
        self.config = SandboxConfig(**sandbox)
        self.box = Sandbox(self.config)
        self.executor = _executor_of(self.box)
        self._restart_lock = threading.Lock()  # Ray Data may run two batches at once in this actor

    def __call__(self, batch: dict) -> dict:
        from sandbox.schema import ExecResult, sandbox_error

        errors = batch["generation_error"] if "generation_error" in batch else [""] * len(batch["task_id"])
        samples = [Sample(str(t), int(i), str(p), 0, str(e))
                   for t, i, p, e in zip(batch["task_id"], batch["sample_id"], batch["program"], errors)]
        runnable = [s for s in samples if s.program.strip() and not s.generation_error]
        requests = [build_request(self.problems[s.task_id], s.program, self.limits[s.task_id], self.memory_mb)
                    for s in runnable]
        box = self.box
        try:
            ran = dict(zip(map(id, runnable), box.run_batch(requests)))
        except RuntimeError as exc:  # every worker of the pool died: rebuild it; the batch is retried by the caller
            log.warning("sandbox pool broke (%s); restarting it", exc)
            self._restart(box)
            ran = {id(s): sandbox_error(f"sandbox pool broke: {exc}") for s in runnable}
        empty = ExecResult(status="failed", passed=False, error="the program is empty")
        results = [ran.get(id(s)) or (ExecResult(status=GENERATION_ERROR_STATUS, passed=False, error=s.generation_error)
                                      if s.generation_error else empty) for s in samples]
        rows = [{**result_row(s, r, self.limits[s.task_id]), "executor": self.executor}
                for s, r in zip(samples, results)]
        out = {**{field: [row[field] for row in rows] for field in HEAD_FIELDS},
               "row": [json.dumps(row, ensure_ascii=False) for row in rows]}
        if "sample" in batch:
            out["sample"] = [str(line) for line in batch["sample"]]
        return out

    def _restart(self, broken) -> None:
        from sandbox import Sandbox

        with self._restart_lock:
            if self.box is not broken:
                return  # the other batch restarted it already
            try:
                broken.close()
            finally:
                self.box = Sandbox(self.config)
                self.executor = _executor_of(self.box)


def _executor_of(box) -> dict:
    """Where an actor's rows ran: its Ray node, the host uids its sandbox claimed, and the isolation it checked."""
    import ray

    return {"node": ray.get_runtime_context().get_node_id(), "uid_base": box.config.uid_base,
            "isolation": box.isolation}


def execute_samples(samples: list[Sample], problems: dict[str, Problem], limits: dict[str, float],
                    pool: ExecutionPool, on_rows: Callable[[list[dict], list[str]], None]) -> None:
    """Run `samples` through the execution actor pool; `on_rows(heads, lines)` gets each finished batch: the rows'
    heads (HEAD_FIELDS) and the whole rows as JSON text (what `ResultsFile.append` takes).

    Needs `raylib.cluster.init_cluster()` first. Rows arrive in completion order, not sample order. Raises
    InfrastructureError when the pipeline fails or is stranded on lost nodes (`raylib.cluster.watch_for_stranding`).
    """
    import ray

    from raylib.cluster import InfrastructureError, watch_for_stranding

    if not samples:
        return
    items = [{"task_id": s.task_id, "sample_id": s.sample_id, "program": s.program,
              "generation_error": s.generation_error}
             for s in samples]
    dataset = ray.data.from_items(items, override_num_blocks=max(1, math.ceil(len(items) / pool.batch_size)))
    stage = execution_stage(dataset, problems, {s.task_id for s in samples}, limits, pool, len(items))
    try:
        with watch_for_stranding("the execution pipeline", pool.wait_for_nodes_s) as tick:
            for batch in stage.iter_batches(batch_size=None, batch_format="pyarrow"):
                tick()
                on_rows(*batch_results(batch))
    except InfrastructureError:
        raise
    except Exception as exc:  # e.g. an actor that kept dying: the rows handed to on_rows so far stay
        raise InfrastructureError(f"the execution pipeline failed ({type(exc).__name__}: {str(exc)[:500]}); the "
                                  "results that came back are kept - re-run to evaluate the rest") from exc


def execution_stage(dataset, problems: dict[str, Problem], used: set[str], limits: dict[str, float],
                    pool: ExecutionPool, rows: int, reserved_cpus: float = 0.0, batch_size: int | None = None):
    """`dataset` (columns: task_id, sample_id, program[, generation_error, sample]) mapped through the execution actor
    pool. `rows` (how many samples, at most) and `reserved_cpus` (CPUs other stages of the pipeline hold) size the
    pool; `batch_size` overrides the pool's (a streaming pipeline wants smaller batches than its input)."""
    import ray

    from raylib.cluster import quiet_data_context

    quiet_data_context()
    batch_size = batch_size or pool.batch_size
    actors = pool.actors or actors_that_fit(pool, [n["Resources"] for n in ray.nodes() if n["Alive"]], reserved_cpus)
    return dataset.map_batches(
        ExecuteSamples,
        fn_constructor_kwargs={
            "problems": {t: problems[t].model_dump(mode="json") for t in used},
            "limits": {t: limits[t] for t in used}, "memory_mb": pool.memory_mb, "sandbox": pool.sandbox,
        },
        batch_size=batch_size, num_cpus=pool.workers_per_actor, resources=pool.resources or None,
        compute=ray.data.ActorPoolStrategy(size=max(1, min(actors, math.ceil(rows / batch_size))),
                                           max_concurrent_calls_per_actor=pool.calls_per_actor,
                                           enable_true_multi_threading=pool.calls_per_actor > 1),
    )


def actors_that_fit(pool: ExecutionPool, nodes: list[dict[str, float]], reserved_cpus: float = 0.0) -> int:
    """How many execution actors the alive nodes (their total resources, as `ray.nodes()` gives them) hold: each
    node floor(CPUs / workers_per_actor), and no more than its custom resources allow; less the actors' worth of
    CPUs that other stages reserve (`reserved_cpus`). At least 1 (the pipeline then waits for a node)."""
    fits = 0
    for node in nodes:
        counts = [node.get("CPU", 0) // pool.workers_per_actor]
        counts += [node.get(name, 0) // need for name, need in pool.resources.items() if need > 0]
        fits += int(min(counts))
    return max(1, fits - math.ceil(reserved_cpus / pool.workers_per_actor))


def batch_results(batch) -> tuple[list[dict], list[str]]:
    """(heads, result lines) of one finished batch (pyarrow) of an execution stage's dataset."""
    columns = {field: batch.column(field).to_pylist() for field in (*HEAD_FIELDS, "row")}
    heads = [dict(zip(HEAD_FIELDS, values)) for values in zip(*(columns[f] for f in HEAD_FIELDS))]
    return heads, columns["row"]


def run_references_here(problems: dict[str, Problem], task_ids: list[str], limits: dict[str, float],
                        pool: ExecutionPool) -> dict:
    """Run the reference solutions of `task_ids` in a sandbox in this process (no Ray): {task_id: ExecResult}.

    For small reference sets this can run while the cluster starts. Raises `sandbox.IsolationError` when this
    machine has no sandbox isolation.
    """
    from sandbox import Sandbox, SandboxConfig

    requests = [build_request(problems[t], problems[t].reference_solution, limits[t], pool.memory_mb) for t in task_ids]
    with Sandbox(SandboxConfig(**pool.sandbox)) as box:
        return dict(zip(task_ids, box.run_batch(requests)))


def run_references_on_cluster(problems: dict[str, Problem], task_ids: list[str], limits: dict[str, float],
                              pool: ExecutionPool) -> dict:
    """The same through the execution actor pool (for large reference sets): {task_id: ExecResult}."""
    from sandbox.schema import ExecResult, TestVerdict

    rows: list[dict] = []
    samples = [Sample(t, -1, problems[t].reference_solution) for t in task_ids]
    execute_samples(samples, problems, limits, pool, lambda heads, lines: rows.extend(map(json.loads, lines)))
    return {row["task_id"]: ExecResult(status=row["status"], passed=row["passed"], duration_s=row["duration_s"],
                                       error=row["error"],
                                       tests=[TestVerdict(index=i, **t) for i, t in enumerate(row["tests"])])
            for row in rows}
