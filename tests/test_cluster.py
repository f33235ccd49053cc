"""raylib.cluster: resources of the joined cluster, a clear error without one, idempotent init, quiet Ray Data, the
watch that stops a pipeline stranded on lost nodes (on a real multi-node cluster: tests/test_multinode.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from raylib.cluster import InfrastructureError, cluster_resources, init_cluster, quiet_data_context, watch_for_stranding
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


STRANDED = [{"class": "MapWorker(MapBatches(ExecuteSamples))", "state": "RESTARTING", "resources": {"CPU": 2.0}}]


def _wait_in_pipeline(seconds: float, tick=None, every: float = 0.05) -> None:
    """Stand-in for a main thread blocked in a Ray Data iteration (ticking when results come)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(every)
        if tick is not None:
            tick()


def test_a_pipeline_without_progress_whose_actors_wait_for_resources_is_stopped_with_an_infrastructure_error():
    started = time.monotonic()
    with pytest.raises(InfrastructureError) as err:
        with watch_for_stranding("the execution pipeline", patience_s=0.5, poll_s=0.1, waiting=lambda: STRANDED):
            never_released = threading.Lock()
            never_released.acquire()
            never_released.acquire()  # as Ray Data's iterator waits for its next batch: a lock, no timeout
    assert time.monotonic() - started < 5  # stopped after the patience
    message = str(err.value)
    assert "the execution pipeline made no progress" in message and "ExecuteSamples" in message
    assert "CPU: 2" in message and "re-run" in message


def test_a_pipeline_that_makes_progress_goes_on_while_some_actors_wait():
    # Ray Data goes on with the actors it has (a lost node's actor may wait forever): results coming is enough
    with watch_for_stranding("the execution pipeline", patience_s=0.3, poll_s=0.05, waiting=lambda: STRANDED) as tick:
        _wait_in_pipeline(1.5, tick)


def test_a_slow_pipeline_whose_actors_all_run_is_left_alone():
    asked = []
    with watch_for_stranding("the execution pipeline", patience_s=0.2, poll_s=0.05,
                             waiting=lambda: asked.append(1) or []):
        _wait_in_pipeline(1.0)
    assert len(asked) >= 3  # it kept looking


def test_without_a_state_api_the_pipeline_waits_as_before():
    def no_dashboard():
        raise ConnectionError("the dashboard is not running")

    with watch_for_stranding("the execution pipeline", patience_s=0.1, poll_s=0.05, waiting=no_dashboard):
        _wait_in_pipeline(0.6)


def test_a_state_api_that_fails_once_is_asked_again():
    answers = iter([ConnectionError("the dashboard is busy with a lost node")])

    def busy_then_stranded():
        error = next(answers, None)
        if error is not None:
            raise error
        return STRANDED

    with pytest.raises(InfrastructureError):
        with watch_for_stranding("the execution pipeline", patience_s=0.1, poll_s=0.05, waiting=busy_then_stranded):
            _wait_in_pipeline(10)


def test_a_pipeline_iterated_off_the_main_thread_is_not_watched():
    outcome = []

    def in_a_trial_thread():
        with watch_for_stranding("a trial's pipeline", patience_s=0.1, poll_s=0.05, waiting=lambda: STRANDED):
            _wait_in_pipeline(0.6)
        outcome.append("finished")

    thread = threading.Thread(target=in_a_trial_thread)
    thread.start()
    _wait_in_pipeline(1.0)  # an interrupt meant for the trial would land here, on the main thread
    thread.join()
    assert outcome == ["finished"]
