"""Jobs on a real multi-node Ray cluster built on this machine (tests/ray_nodes.py: a head and worker nodes, each its
own raylet on 127.0.0.1 with one CPU), submitted as users submit them."""

from __future__ import annotations

import json
import threading
import time

import pytest

from raylib.data.problems import load_problems
from raylib.data.samples import reference_samples
from raylib.files import write_records
from tests.ray_nodes import ray_nodes

pytestmark = pytest.mark.multinode

ACTOR_NODES = """
import json, ray
from ray.util.state import list_actors
ray.init(address="auto")
nodes = {n["NodeID"]: n for n in ray.nodes()}
print("@@" + json.dumps(sorted({a.node_id for a in list_actors(detail=True, limit=10000)
                                if "ExecuteSamples" in (a.class_name or "") and a.node_id in nodes})))
"""


def test_the_evaluation_job_runs_over_the_nodes_and_survives_losing_one(tmp_path):
    problems = load_problems("humaneval")
    first = {t: problems[t] for t in list(problems)[:12]}
    pool = ["execution.actors=3", "execution.workers_per_actor=1", "execution.batch_size=4"]  # one actor per node
    with ray_nodes(tmp_path, workers=2) as cluster:
        output = tmp_path / "out"
        samples = write_records(tmp_path / "samples.jsonl", reference_samples(first))
        proc = cluster.submit(["python", "jobs/evaluate.py", "--dataset", "humaneval", "--samples", str(samples),
                               "--output", str(output), *pool])
        assert proc.returncode == 0 and "succeeded" in proc.stdout + proc.stderr, proc.stdout[-3000:]
        rows = [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]
        # every canonical solution passes and every broken one fails, as on one node
        assert sorted((r["task_id"], r["sample_id"], r["passed"]) for r in rows) == sorted(
            (t, i, i == 0) for t in first for i in (0, 1))

        # all 164 problems; a worker node is killed (every process of it) once 40 results are in
        output = tmp_path / "lost_node"
        samples = write_records(tmp_path / "all.jsonl", reference_samples(problems))
        killed: list[int] = []

        def kill_when_running():
            results = output / "results.jsonl"
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                done = len(results.read_text().splitlines()) if results.exists() else 0
                if done >= 40:
                    killed.append(done)
                    cluster.workers[0].kill()
                    return
                time.sleep(0.2)

        killer = threading.Thread(target=kill_when_running)
        killer.start()
        proc = cluster.submit(["python", "jobs/evaluate.py", "--dataset", "humaneval", "--samples", str(samples),
                               "--output", str(output), *pool], timeout=900)
        killer.join()
        assert killed and killed[0] < 328, killed  # the node died mid-run
        assert proc.returncode == 0 and "succeeded" in proc.stdout + proc.stderr, proc.stdout[-3000:]
        rows = [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]
        # the lost batches ran again on the surviving nodes: exactly the results of an uninterrupted run, once each
        assert sorted((r["task_id"], r["sample_id"], r["passed"]) for r in rows) == sorted(
            (t, i, i == 0) for t in problems for i in (0, 1))
        assert all(r["status"] != "sandbox-error" for r in rows)
        nodes = cluster.run_driver(ACTOR_NODES)  # the pool spanned nodes (the lost one included)
        assert len(json.loads(nodes)) >= 2, nodes

        cluster.wait_for_nodes(2)  # the cluster counts it dead; a new node joins
        cluster.add_worker(tmp_path)
        cluster.wait_for_nodes(3)
