"""A training job on a real multi-node Ray cluster built on this machine (tests/ray_nodes.py: a head and worker
nodes, each its own raylet on 127.0.0.1 with one CPU), submitted as users submit it, loses a worker node mid-run:
every process of the node holding a Ray Train rank is SIGKILLed after the second checkpoint. Ray Train restarts the
worker group on the surviving nodes, rank 0 loads the latest checkpoint (its DeepSpeed state, on storage every node
shares: here the one filesystem) and the run finishes all its steps.
"""

from __future__ import annotations

import json
import re
import threading
import time

import psutil
import pytest

from tests.ray_nodes import Node, ray_nodes
from tests.train_data import write_sft

pytestmark = pytest.mark.multinode

# whether the cluster counts each node alive, by id
NODES_ALIVE = """
import json, ray
ray.init(address="auto")
print("@@" + json.dumps({n["NodeID"]: n["Alive"] for n in ray.nodes()}))
"""

# the node of every Ray Train worker actor the cluster has run, dead ones included
TRAIN_WORKER_NODES = """
import json, ray
from ray.util.state import list_actors
ray.init(address="auto")
print("@@" + json.dumps([a.node_id for a in list_actors(detail=True, limit=10000)
                         if "RayTrainWorker" in (a.class_name or "")]))
"""

STEPS = 20


def runs_a_train_worker(node: Node) -> bool:
    """Whether one of the node's processes is a Ray Train worker (Ray titles its worker processes `ray::CLASS...`)."""
    try:
        tree = psutil.Process(node.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return False
    for process in tree:
        try:
            if "RayTrainWorker" in " ".join(process.cmdline()):
                return True
        except psutil.Error:
            continue
    return False


def latest_checkpoint_step(output) -> int:
    """The step of the latest checkpoint Ray Train has registered (0: none yet)."""
    snapshot = output / "ray" / "train" / "checkpoint_manager_snapshot.json"  # rewritten per registered checkpoint
    try:
        return json.loads(snapshot.read_text())["latest_checkpoint_result"]["metrics"]["step"]
    except (OSError, ValueError, KeyError, TypeError):  # not written yet, or caught mid-write
        return 0


def submit_and_kill_after_checkpoint(cluster, job: list[str], output, pick) -> tuple:
    """Submit `job`; once its latest checkpoint is at step 4 or later, SIGKILL the node `pick()` returns (None: not
    yet). Returns (the submission's CompletedProcess, [(the killed node's name, the checkpoint step then)])."""
    killed: list[tuple[str, int]] = []

    def kill_once_checkpointed_twice():
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not (output / "metrics.json").exists():
            if (step := latest_checkpoint_step(output)) >= 4 and (node := pick()) is not None:
                killed.append((node.name, step))
                node.kill()
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_once_checkpointed_twice)
    killer.start()
    proc = cluster.submit(job, timeout=900)
    killer.join()
    return proc, killed


def test_the_training_job_resumes_on_the_surviving_nodes_after_losing_one(tiny_model, tmp_path):
    data = write_sft(tmp_path / "pc.jsonl", n=48)
    output = tmp_path / "out"
    # two ranks of one CPU each on nodes of one CPU: they run on two different nodes, so at least one on a worker
    # node; after it dies the head and the other worker node still hold both
    job = ["python", "jobs/sft.py", "--model", tiny_model, "--data.train", str(data), "--output", str(output),
           "train.optim.lr=1e-3", f"train.optim.max_steps={STEPS}", "train.checkpoint.every_steps=2",
           "train.checkpoint.keep=2", "train.scaling.workers=2", "train.scaling.cpus_per_worker=1"]
    with ray_nodes(tmp_path, workers=2) as cluster:
        names = cluster.node_names()  # asked while all are alive
        proc, killed = submit_and_kill_after_checkpoint(
            cluster, job, output, lambda: next((w for w in cluster.workers if runs_a_train_worker(w)), None))
        log = proc.stdout + proc.stderr
        assert killed, "the run ended before a worker node was killed: " + log[-3000:]
        [(lost, at_kill)] = killed
        assert proc.returncode == 0 and "succeeded" in log, log[-3000:]

        # rank 0 of the restarted group (once: one restart) loaded the latest checkpoint, not step 0, and trained on
        # from the step after it to the last (each worker's line reaches the log once per node: all the nodes' log
        # monitors tail the one session directory this machine's nodes share)
        job_log = (output / "job.log").read_text()
        steps = "\n".join(line for line in job_log.splitlines() if "step" in line)[-3000:]
        resumed = set(re.findall(rf"RayTrainWorker pid=(\d+)\S* resumed from the checkpoint at step (\d+)/{STEPS}",
                                 job_log))
        assert len(resumed) == 1, steps
        [(pid, step)] = resumed
        assert at_kill <= int(step) <= at_kill + 2 < STEPS, (killed, steps)
        trained = sorted({int(s) for s in re.findall(rf"RayTrainWorker pid={pid}\S* step (\d+)/{STEPS} ", job_log)})
        assert trained == list(range(int(step) + 1, STEPS + 1)), steps
        metrics = json.loads((output / "metrics.json").read_text())
        assert metrics["step"] == STEPS
        assert (output / "model" / "model.safetensors").exists()

        # the ranks ran on the killed node before, on the head and the surviving worker node after
        ran_on = [names.get(node_id) for node_id in json.loads(cluster.run_driver(TRAIN_WORKER_NODES))]
        survivor = next(w.name for w in cluster.workers if w.name != lost)
        assert lost in ran_on and {"head", survivor} <= set(ran_on), ran_on
        # the cluster counts the killed node dead, the others alive
        [killed_id] = [node_id for node_id, name in names.items() if name == lost]
        deadline = time.monotonic() + 60
        while (alive := json.loads(cluster.run_driver(NODES_ALIVE)))[killed_id] and time.monotonic() < deadline:
            time.sleep(2)
        assert {names[node_id]: alive[node_id] for node_id in names} == {
            "head": True, survivor: True, lost: False}


def test_the_training_job_exits_3_when_no_nodes_are_left_for_its_workers_and_a_re_run_resumes_it(
        tiny_model, tmp_path, monkeypatch):
    # three ranks of one CPU on three one-CPU nodes; after a worker node dies two CPUs are left: no room for them.
    # Ray Train gives each start of the worker group 20 s (inherited by the nodes) and the job waits 40 s in all
    monkeypatch.setenv("RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S", "20")
    data = write_sft(tmp_path / "pc.jsonl", n=48)
    output = tmp_path / "out"
    job = ["python", "jobs/sft.py", "--model", tiny_model, "--data.train", str(data), "--output", str(output),
           "train.optim.lr=1e-3", f"train.optim.max_steps={STEPS}", "train.checkpoint.every_steps=2",
           "train.scaling.workers=3", "train.scaling.cpus_per_worker=1", "train.scaling.wait_for_nodes_s=40"]
    with ray_nodes(tmp_path, workers=2) as cluster:
        proc, killed = submit_and_kill_after_checkpoint(cluster, job, output, lambda: cluster.workers[0])
        log = proc.stdout + proc.stderr
        assert killed, "the run ended before a worker node was killed: " + log[-3000:]
        assert proc.returncode != 0 and "exit code 3" in log and "no nodes had room for the 3 training" in log, \
            log[-3000:]
        [(_, at_kill)] = killed
        assert not (output / "metrics.json").exists() and latest_checkpoint_step(output) >= at_kill

        cluster.wait_for_nodes(2)  # the node comes back (a new one): the same command resumes and finishes
        cluster.add_worker(tmp_path)
        cluster.wait_for_nodes(3)
        proc = cluster.submit(job, timeout=900)
        log = proc.stdout + proc.stderr
        assert proc.returncode == 0 and "succeeded" in log, log[-3000:]
        resumed = {int(s) for s in re.findall(rf"resumed from the checkpoint at step (\d+)/{STEPS}",
                                              (output / "job.log").read_text())}
        assert resumed and min(resumed) >= at_kill, resumed
        assert json.loads((output / "metrics.json").read_text())["step"] == STEPS
