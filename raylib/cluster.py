"""Ray cluster plumbing: the one module that calls `ray.init`. Everything else asks it.

    from raylib.cluster import init_cluster, shutdown_cluster
    resources = init_cluster()              # local cluster on this machine, or the one in RAY_ADDRESS
    resources = init_cluster("auto")        # the cluster started by `ray start --head` on this machine
    resources = init_cluster("ray://head:10001", runtime_env={"working_dir": "."})
    ...
    shutdown_cluster()

Under `ray job submit` RAY_ADDRESS is set, so a job's `init_cluster()` joins the submitting cluster; run as a plain
`python jobs/X.py` it starts a private local cluster. Calling `init_cluster` again is a no-op that returns the
resources of the cluster already joined. `import ray` happens inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from typing import Any, Callable, Iterator

__all__ = ["InfrastructureError", "cluster_has_gpus", "cluster_resources", "engine_gpus", "init_cluster",
           "quiet_data_context", "shutdown_cluster", "stranded_actors", "watch_for_stranding"]

log = logging.getLogger(__name__)


class InfrastructureError(RuntimeError):
    """The cluster or the sandbox failed in a way retries did not cure; what was done is kept, and re-running the
    same job resumes it (jobs exit with status 3)."""


def init_cluster(
    address: str | None = None,
    num_cpus: int | None = None,
    runtime_env: dict | None = None,
    namespace: str = "codeloop",
    *,
    log_to_driver: bool = True,
    **ray_init_kwargs: Any,
) -> dict[str, float]:
    """Join (or start) the Ray cluster for this process; idempotent.

    Args:
        address: cluster to join (`"auto"`, `"host:port"`, `"ray://host:10001"`); `"local"` always starts a new
            local cluster. None: RAY_ADDRESS if set, else a new local cluster (never silently joins a stray one).
        num_cpus: logical CPUs of a new local cluster (may exceed the cores, so fractional actors fit);
            ignored, with a warning, when joining an existing cluster.
        runtime_env: Ray runtime environment for this job's workers (e.g. `{"working_dir": "."}`).
        namespace: Ray namespace, so named actors of codeloop jobs find each other.
        log_to_driver: stream worker stdout/stderr to this process (jobs want it; noisy benchmarks may not).
        **ray_init_kwargs: passed to `ray.init` (e.g. `include_dashboard=False`, `object_store_memory=...`).

    Returns:
        The cluster's total resources, e.g. `{"CPU": 4.0, "memory": ..., "object_store_memory": ...}`.
    """
    import ray

    if ray.is_initialized():
        log.debug("Ray already initialized; reusing the current cluster")
        return cluster_resources()

    # No registry other than package indexes is reachable here: don't try to report usage statistics.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = dict(
        namespace=namespace,
        runtime_env=runtime_env,
        log_to_driver=log_to_driver,
        ignore_reinit_error=True,
        **ray_init_kwargs,
    )
    if address in (None, "local"):
        kwargs.update(address="local", num_cpus=num_cpus)
    else:
        if num_cpus is not None:
            log.warning("init_cluster: num_cpus=%s ignored when joining an existing cluster (%s)", num_cpus, address)
        kwargs["address"] = address
    ray.init(**kwargs)
    resources = cluster_resources()
    log.info("Ray cluster ready (%s): %s", kwargs["address"], resources)
    return resources


def cluster_resources() -> dict[str, float]:
    """Total resources of the joined cluster (`ray.cluster_resources()`); raises if `init_cluster` was not called."""
    import ray

    if not ray.is_initialized():
        raise RuntimeError("Ray is not initialized: call raylib.cluster.init_cluster() first")
    return dict(ray.cluster_resources())


def cluster_has_gpus() -> bool:
    """Whether the joined cluster has GPUs (False when Ray is not initialized, e.g. a Serve builder run alone)."""
    import ray

    return ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0


def engine_gpus(engine, requested: float | None = None) -> float:
    """GPUs an actor holding `engine` (an EngineConfig) reserves: `requested` when given; else none for an HTTP
    endpoint (backend openai) or a cluster without GPUs, and the engine's tensor_parallel_size otherwise."""
    if requested is not None:
        return requested
    if engine.backend == "openai" or not cluster_has_gpus():
        return 0
    return engine.tensor_parallel_size


def quiet_data_context() -> None:
    """Ray Data without its own progress output: codeloop's jobs show one bar over the whole pipeline (Ray's
    bars, or every-10-s progress logs when stdout is not a terminal, would interleave with it), nor its issue
    detectors' warnings."""
    import ray

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.issue_detectors_config.detectors = []  # e.g. "high memory" for a vLLM actor that holds its model: expected


def shutdown_cluster() -> None:
    """Disconnect from the cluster (and stop it if this process started it locally). Safe to call twice."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


# actor states of an actor not (yet, or again) running; whether it waits for room is told by its process
_WAITING_STATES = ("PENDING_CREATION", "RESTARTING", "DEPENDENCIES_UNREADY")


def stranded_actors() -> list[dict]:
    """This job's actors that wait for a node with room for them: not placed yet (no process) or last placed on a
    node that died. An actor whose constructor is running (a vLLM engine loading its model) is placed, so it is not
    among them. Returns [{"class", "state", "resources"}]. Asks Ray's state API (the head's dashboard); raises when
    that cannot answer."""
    import ray
    from ray.util.state import list_actors

    context = ray.get_runtime_context()  # its cluster's address: never "auto", which may find another cluster here
    actors = list_actors(address=context.gcs_address, filters=[("job_id", "=", context.get_job_id())], detail=True,
                         limit=10000, raise_on_missing_output=False)
    dead = {node["NodeID"] for node in ray.nodes() if not node["Alive"]}
    return [{"class": actor.class_name, "state": actor.state, "resources": actor.required_resources or {}}
            for actor in actors
            if actor.state in _WAITING_STATES and (not actor.pid or actor.node_id in dead)]


@contextlib.contextmanager
def watch_for_stranding(what: str, patience_s: float, poll_s: float = 5.0,
                        waiting: Callable[[], list[dict]] = stranded_actors) -> Iterator[Callable[[], None]]:
    """Stop a Ray Data pipeline that cannot go on, rather than let it wait forever: when nothing came out of it for
    `patience_s` while some of this job's actors wait for resources (their node was lost, and no alive node has
    room for them), InfrastructureError is raised in the thread that iterates it (what was written stays; jobs exit
    3 and a re-run resumes). Yields `tick()`, to call on every result. An autoscaler that adds a node within
    `patience_s` lets the pipeline go on.

    Watches only on the main thread (the pipeline's iteration is interrupted there; a pipeline iterated elsewhere,
    e.g. in a Tune trial, waits as without the watch), and only when the state API answers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    last = [time.monotonic()]
    stranded: list[str] = []
    done, lock = threading.Event(), threading.Lock()  # lock: no interrupt once the pipeline's block has ended

    def tick() -> None:
        last[0] = time.monotonic()

    def watch() -> None:
        warned = False
        while not done.wait(min(poll_s, patience_s)):
            idle = time.monotonic() - last[0]
            if idle < patience_s:
                continue
            try:
                actors = waiting()
            except Exception as exc:  # noqa: BLE001 - no state API (a cluster without a dashboard), or busy: ask again
                if not warned:
                    log.warning("cannot tell whether %s waits for lost nodes (%s); asking again", what, exc)
                    warned = True
                continue
            if not actors:
                continue
            shapes = sorted({", ".join(f"{k}: {v:g}" for k, v in sorted(a["resources"].items())) for a in actors})
            with lock:
                if done.is_set():
                    return
                stranded.append(f"{what} made no progress for {idle:.0f} s while {len(actors)} of its actors "
                                f"({', '.join(sorted({a['class'] for a in actors}))}) waited for resources that no "
                                f"alive node has free ({'; '.join(shapes)}): a node was lost, or the job asks for "
                                "more than the cluster holds")
                # the main thread waits in Ray Data's iteration (a lock without timeout): only a signal ends that
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    # SIGINT raises KeyboardInterrupt while the block runs, as Python's own handler does, also in a process started
    # with SIGINT ignored (where Python installs none), so that the watch can always end the block
    previous = signal.signal(signal.SIGINT, interrupt)
    watcher = threading.Thread(target=watch, name="stranding-watch", daemon=True)
    watcher.start()
    try:
        try:
            yield tick
        finally:
            with lock:
                done.set()
            signal.signal(signal.SIGINT, previous)
    except KeyboardInterrupt:
        if stranded:
            raise InfrastructureError(stranded[0] + "; what was done is kept - re-run when the cluster has the nodes "
                                      "back") from None
        raise
