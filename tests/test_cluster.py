"""raylib.cluster: resources of the joined cluster, a clear error without one, idempotent init, quiet Ray Data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from raylib.cluster import cluster_resources, init_cluster, quiet_data_context
from tests.conftest import TEST_CLUSTER_CPUS

REPO = Path(__file__).resolve().parent.parent



def test_cluster_reports_its_logical_cpus(ray_cluster):
    assert ray_cluster["CPU"] == TEST_CLUSTER_CPUS
    assert cluster_resources()["CPU"] == TEST_CLUSTER_CPUS
    assert ray_cluster["memory"] > 0 and ray_cluster["object_store_memory"] > 0


def test_asking_for_resources_before_joining_a_cluster_is_a_clear_error():
    code = "from raylib.cluster import cluster_resources\ncluster_resources()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert (proc.returncode == 1
            and "RuntimeError: Ray is not initialized: call raylib.cluster.init_cluster()" in proc.stderr)


def test_ray_data_s_own_progress_output_is_turned_off_for_the_jobs_single_bar(ray_cluster):
    import ray

    context = ray.data.DataContext.get_current()
    saved = (context.enable_progress_bars, context.print_on_execution_start,
             list(context.issue_detectors_config.detectors))
    try:
        context.enable_progress_bars = context.print_on_execution_start = True
        quiet_data_context()
        assert (context.enable_progress_bars, context.print_on_execution_start) == (False, False)
        assert context.issue_detectors_config.detectors == []
    finally:
        context.enable_progress_bars, context.print_on_execution_start, context.issue_detectors_config.detectors = saved


def test_init_cluster_again_is_a_no_op(ray_cluster):
    import ray

    context = ray.get_runtime_context()
    job_before = context.get_job_id()
    again = init_cluster(num_cpus=1)  # already initialized: returns the existing cluster, num_cpus is not applied
    assert again["CPU"] == TEST_CLUSTER_CPUS
    assert ray.get_runtime_context().get_job_id() == job_before
    assert ray.get_runtime_context().namespace == "codeloop"
