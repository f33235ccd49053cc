"""A Ray Serve app on a real multi-node Ray cluster built on this machine (tests/ray_nodes.py: a head and two worker
nodes, each its own raylet on 127.0.0.1 with one CPU) survives losing the worker node that holds its replica.

The verifier app (serve/verifier.py: no model, a real sandbox) is deployed as a user deploys to a running cluster,
`serve deploy CONFIG --address http://HEAD:DASHBOARD`, with a Serve config file like configs/serve.yaml: the HTTP
proxy on the head only (127.0.0.1, a free port), one Verifier replica kept off the head by its ray_actor_options
(`label_selector: {ray.io/node-id: "!HEAD_ID"}`, the default node label), so that it lands on a worker node. The node
holding the replica is killed outright (every process of it); the replica comes back on the surviving worker and the
same requests get the same verdicts again, within a bounded outage (printed).

    .venv/bin/python -m pytest tests/test_multinode_serve.py -q -s
"""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest
import yaml

from tests.ray_head import BIN, REPO, free_port
from tests.ray_nodes import NODE_NAMES, ray_nodes

pytestmark = pytest.mark.multinode

ADD = {"dataset": "humaneval", "task_id": "HumanEval/53"}  # add(x, y)
RIGHT, WRONG = "    return x + y\n", "    return x - y\n"
OUTAGE_LIMIT_S = 180  # node death seen by the GCS (health checks), the replica restarted, its sandbox pool started

HEAD_ID = """
import ray
ray.init(address="auto")
print("@@" + next(n["NodeID"] for n in ray.nodes() if n["Alive"] and "node:__internal_head__" in n["Resources"]))
"""

# where the Verifier replicas that Ray counts alive are: "workerN" (the node's own resource), "head", or "dead" (an
# actor of a node the cluster no longer counts alive)
REPLICA_NODES = """
import json, ray
from ray.util.state import list_actors
ray.init(address="auto")
""" + NODE_NAMES + """
replicas = list_actors(filters=[("state", "=", "ALIVE")], detail=True, limit=10000)
print("@@" + json.dumps(sorted(names.get(a.node_id, "dead") for a in replicas
                               if (a.class_name or "").startswith("ServeReplica:verifier:Verifier"))))
"""


def _serve_config(port: int, head_id: str) -> dict:
    return {
        "proxy_location": "HeadOnly",
        "http_options": {"host": "127.0.0.1", "port": port, "request_timeout_s": 30},
        "applications": [{
            "name": "verifier", "route_prefix": "/verify", "import_path": "serve.verifier:build_app",
            "args": {"verifiers": {"public_tests": {"time_limit_s": 3.0, "workers_per_actor": 1}}},
            "deployments": [{"name": "Verifier", "num_replicas": 1, "ray_actor_options": {
                "num_cpus": 0.5, "label_selector": {"ray.io/node-id": f"!{head_id}"}}}],
        }],
    }


def _verdicts(url: str) -> list[bool] | str:
    """The verdicts of RIGHT and WRONG on HumanEval/53 by POST /verify/execute, or what went wrong."""
    try:
        answer = httpx.post(url + "/verify/execute", json={"problem": ADD, "programs": [RIGHT, WRONG]}, timeout=60)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if answer.status_code != 200:
        return f"{answer.status_code}: {answer.text[:200]}"
    return [r["passed"] for r in answer.json()["results"]]


def _wait_for_verdicts(url: str, timeout: float) -> tuple[float, list[str]]:
    """Poll until RIGHT passes and WRONG fails; the seconds it took and the failed answers on the way."""
    started, failures = time.monotonic(), []
    while (verdicts := _verdicts(url)) != [True, False]:
        failures.append(str(verdicts))
        assert time.monotonic() - started < timeout, f"no right answer in {timeout} s; last: {failures[-3:]}"
        time.sleep(1)
    return time.monotonic() - started, failures


def test_a_serve_app_survives_losing_the_node_of_its_replica(tmp_path):
    with ray_nodes(tmp_path, workers=2) as cluster:
        head_id = cluster.run_driver(HEAD_ID)
        port = free_port()
        config = tmp_path / "serve.yaml"
        config.write_text(yaml.safe_dump(_serve_config(port, head_id)))
        deploy = subprocess.run([str(BIN / "serve"), "deploy", str(config), "--address", cluster.dashboard],
                                cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=120)
        assert deploy.returncode == 0, deploy.stdout[-2000:] + deploy.stderr[-2000:]
        url = f"http://127.0.0.1:{port}"
        _wait_for_verdicts(url, timeout=240)
        [holder] = json.loads(cluster.run_driver(REPLICA_NODES))
        assert holder in ("worker1", "worker2"), holder  # kept off the head
        survivor = "worker2" if holder == "worker1" else "worker1"

        killed = time.monotonic()
        next(w for w in cluster.workers if w.name == holder).kill()
        # the first request after the kill may itself wait (Serve holds it until a replica is up) or fail; either
        # way the outage is from the kill to the first right answer
        outage, failures = _wait_for_verdicts(url, timeout=OUTAGE_LIMIT_S)
        # the lost replica counts alive until the cluster sees its node dead (health checks); then only the new one
        while (moved := json.loads(cluster.run_driver(REPLICA_NODES))) != [survivor]:
            assert time.monotonic() - killed < OUTAGE_LIMIT_S, f"replicas {moved}, not only on {survivor}"
            time.sleep(2)
        settled = time.monotonic() - killed
        assert _verdicts(url) == [True, False]  # and still right once the node is counted dead
        print(f"\nreplica on {holder}, node killed: right answers again after {outage:.1f} s ({len(failures)} "
              f"failed requests on the way: {sorted({f[:80] for f in failures})}); the replica only on {survivor} "
              f"{settled:.1f} s after the kill")
