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

import logging
import os
from typing import Any

__all__ = ["InfrastructureError", "cluster_has_gpus", "cluster_resources", "engine_gpus", "init_cluster",
           "quiet_data_context", "shutdown_cluster"]

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
