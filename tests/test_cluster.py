"""raylib.cluster: the shared session cluster runs tasks and actors, reports resources, and init is idempotent."""

from __future__ import annotations

from raylib.cluster import cluster_resources, init_cluster

TEST_CLUSTER_CPUS = 4  # what tests/conftest.py's ray_cluster fixture asks for


def test_cluster_reports_its_logical_cpus(ray_cluster):
    assert ray_cluster["CPU"] == TEST_CLUSTER_CPUS
    assert cluster_resources()["CPU"] == TEST_CLUSTER_CPUS
    assert ray_cluster["memory"] > 0 and ray_cluster["object_store_memory"] > 0


def test_remote_task_runs(ray_cluster):
    import ray

    @ray.remote(num_cpus=0.5)
    def square(x: int) -> int:
        return x * x

    assert ray.get([square.remote(i) for i in range(6)]) == [0, 1, 4, 9, 16, 25]


def test_fractional_actor_keeps_state(ray_cluster):
    import ray

    @ray.remote(num_cpus=0.25)
    class Counter:
        def __init__(self) -> None:
            self.total = 0

        def add(self, x: int) -> int:
            self.total += x
            return self.total

    counter = Counter.remote()
    assert ray.get([counter.add.remote(i) for i in (1, 2, 3)]) == [1, 3, 6]
    ray.kill(counter)


def test_init_cluster_again_is_a_no_op(ray_cluster):
    import ray

    context = ray.get_runtime_context()
    job_before = context.get_job_id()
    again = init_cluster(num_cpus=1)  # already initialized: returns the existing cluster, num_cpus is not applied
    assert again["CPU"] == TEST_CLUSTER_CPUS
    assert ray.get_runtime_context().get_job_id() == job_before
    assert ray.get_runtime_context().namespace == "codeloop"
