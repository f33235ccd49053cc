"""Jobs on a real multi-node Ray cluster built on this machine (tests/ray_nodes.py: a head and worker nodes, each its
own raylet on 127.0.0.1 with one CPU), submitted as users submit them."""

from __future__ import annotations

import json

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
print(json.dumps(sorted({a.node_id for a in list_actors(detail=True, limit=10000)
                         if "ExecuteSamples" in (a.class_name or "") and a.node_id in nodes})))
"""


def test_the_evaluation_job_spreads_over_the_nodes_and_a_lost_node_is_seen_and_replaced(tmp_path):
    problems = load_problems("humaneval")
    first = {t: problems[t] for t in list(problems)[:12]}
    samples = write_records(tmp_path / "samples.jsonl", reference_samples(first))
    with ray_nodes(tmp_path, workers=2) as cluster:
        output = tmp_path / "out"
        # one single-CPU execution actor per node: the pool has to use all three
        proc = cluster.submit(["python", "jobs/evaluate.py", "--dataset", "humaneval", "--samples", str(samples),
                               "--output", str(output), "execution.actors=3", "execution.workers_per_actor=1",
                               "execution.batch_size=4"])
        assert proc.returncode == 0 and "succeeded" in proc.stdout + proc.stderr, proc.stdout[-3000:]
        rows = [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]
        # every canonical solution passes and every broken one fails, as on one node
        assert sorted((r["task_id"], r["sample_id"], r["passed"]) for r in rows) == sorted(
            (t, i, i == 0) for t in first for i in (0, 1))
        nodes = cluster.run_driver(ACTOR_NODES)
        assert len(json.loads(nodes)) == 3, nodes

        cluster.workers[0].kill()  # a lost machine: the cluster notices, a new node joins
        cluster.wait_for_nodes(2)
        cluster.add_worker(tmp_path)
        cluster.wait_for_nodes(3)
