"""A multi-node Ray cluster on this machine for `multinode` tests: a head and worker nodes, each its own `ray start`
(raylet, object store, workers) on 127.0.0.1 with its own ports and CPUs; a worker node can be killed outright.

    with ray_nodes(tmp_path, workers=2) as cluster:
        cluster.address                  # "127.0.0.1:PORT": jobs join with --ray-address / ray_address=
        cluster.submit([...])            # `ray job submit --working-dir . -- ...` from the repository root
        cluster.alive_nodes()            # how many nodes the cluster counts alive
        cluster.run_driver(script)       # what a driver joined to the cluster prints after "@@"
        cluster.workers[0].kill()        # SIGKILL the node's every process (raylet, object store, its workers)
        cluster.actor_nodes("ExecuteSamples")   # the nodes ("head", "worker1", ...) holding such actors now

Worker node N has the custom resource {"workerN": 1} (to tell nodes apart, or to pin work to one) and any others
given: `ray_nodes(tmp_path, resources=[{"CPU": 2, "sandbox": 1}])` gives worker1 two CPUs and a "sandbox".
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.ray_head import BIN, REPO, RayHead, free_port


def _node_ports() -> list[str]:
    return [f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
            f"--metrics-export-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}", f"--runtime-env-agent-port={free_port()}"]


@dataclass
class Node:
    name: str
    process: subprocess.Popen

    def kill(self) -> None:
        """Kill the node as a lost machine dies: every process it started, at once, without any clean-up."""
        try:
            tree = psutil.Process(self.process.pid).children(recursive=True) + [psutil.Process(self.process.pid)]
        except psutil.NoSuchProcess:
            return
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        psutil.wait_procs(tree, timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # `ray start --block` stops its node on SIGTERM
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class RayNodes(RayHead):
    address: str = ""
    head: Node | None = None
    workers: list[Node] = field(default_factory=list)

    def run_driver(self, script: str) -> str:
        """What a Python driver `script` prints on its last line that starts with "@@" (Ray prints its own notes on
        the driver's stdout too, e.g. of a node that died), run in its own process joined to the cluster (so this
        process, which holds the tests' own local cluster, never joins it)."""
        out = subprocess.run([str(BIN / "python"), "-c", script], env=dict(self.env, RAY_ADDRESS=self.address),
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        marked = [line[2:] for line in out.stdout.splitlines() if line.startswith("@@")]
        assert marked, out.stdout[-2000:]
        return marked[-1]

    def alive_nodes(self) -> int:
        """The nodes the cluster counts alive."""
        return sum(json.loads(self.run_driver(
            "import json, ray; ray.init(address='auto'); print('@@' + json.dumps([n['Alive'] for n in ray.nodes()]))")))

    def wait_for_nodes(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.alive_nodes() != count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster did not reach {count} alive nodes in {timeout:.0f} s")
            time.sleep(2)

    def node_names(self) -> dict[str, str]:
        """{node id: "head" or "workerN"} of the nodes the cluster counts alive."""
        return json.loads(self.run_driver('import json, ray\nray.init(address="auto")' + NODE_NAMES
                                          + 'print("@@" + json.dumps(names))'))

    def actor_nodes(self, class_part: str) -> set[str]:
        """The nodes ("head", "worker1", ...) where alive actors whose class name contains `class_part` run."""
        return set(json.loads(self.run_driver(ACTOR_NODES.replace("CLASS_PART", repr(class_part)))))

    def add_worker(self, cwd: Path, num_cpus: int = 1, resources: dict | None = None) -> Node:
        """Start worker node N+1: `num_cpus` CPUs (or resources["CPU"]), {"workerN+1": 1} and `resources`."""
        name = f"worker{len(self.workers) + 1}"
        custom = {name: 1, **(resources or {})}
        num_cpus = custom.pop("CPU", num_cpus)
        process = subprocess.Popen(
            [str(BIN / "ray"), "start", "--block", f"--address={self.address}", f"--num-cpus={num_cpus}",
             "--num-gpus=0", f"--resources={json.dumps(custom)}", *_node_ports()],
            env=self.env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        node = Node(name, process)
        self.workers.append(node)
        return node


# a driver script's line: `names`, each alive node's name by its id ("head", or its custom resource "workerN")
NODE_NAMES = """
names = {n["NodeID"]: next((r for r in n["Resources"] if r.startswith("worker")), "head")
         for n in ray.nodes() if n["Alive"]}
"""

# which node (by name) each alive actor of a class runs on; CLASS_PART is replaced
ACTOR_NODES = """
import json, ray
from ray.util.state import list_actors
ray.init(address="auto")
address = ray.get_runtime_context().gcs_address
""" + NODE_NAMES + """
print("@@" + json.dumps(sorted({names[a.node_id] for a in list_actors(address=address, detail=True, limit=10000)
                                if a.state == "ALIVE" and CLASS_PART in (a.class_name or "") and a.node_id in names})))
"""


@contextlib.contextmanager
def ray_nodes(cwd: Path, workers: int = 2, cpus_per_node: int = 1, resources: list[dict] | None = None):
    """A head and `workers` worker nodes of `cpus_per_node` CPUs each (worker i+1 with `resources[i]` too: custom
    resources, or "CPU" for other CPUs), all alive before the block starts; every node stopped after it."""
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token")
    env.pop("RAY_ADDRESS", None)
    subprocess.run([str(BIN / "ray"), "get-auth-token", "--generate"], env=env, check=True, capture_output=True)
    gcs, dashboard = free_port(), free_port()
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", f"--port={gcs}", f"--num-cpus={cpus_per_node}",
         "--num-gpus=0", "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
         f"--ray-client-server-port={free_port()}", *_node_ports()],
        env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    cluster = RayNodes(f"http://127.0.0.1:{dashboard}", env, address=f"127.0.0.1:{gcs}", head=Node("head", head))
    try:
        cluster.wait_for_nodes(1)
        for count in range(2, workers + 2):  # one at a time: nodes starting together on one host can stall
            extra = (resources or [])[count - 2] if count - 2 < len(resources or []) else None
            cluster.add_worker(cwd, cpus_per_node, extra)
            cluster.wait_for_nodes(count)
        yield cluster
    finally:
        for node in [*cluster.workers, cluster.head]:
            node.stop()


__all__ = ["NODE_NAMES", "REPO", "Node", "RayNodes", "ray_nodes"]
