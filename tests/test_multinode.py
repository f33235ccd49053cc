"""Jobs on a real multi-node Ray cluster built on this machine (tests/ray_nodes.py: a head and worker nodes, each its
own raylet on 127.0.0.1 with one CPU), submitted as users submit them; worker nodes killed mid-run (every process)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
import yaml

from raylib.data.problems import load_problems
from raylib.data.samples import reference_samples
from raylib.files import write_records
from sandbox.isolation import detect_isolation
from tests.ray_nodes import REPO, RayNodes, ray_nodes

pytestmark = pytest.mark.multinode


def _rows(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]


def _verdicts(rows: list[dict]) -> list[tuple]:
    return sorted((r["task_id"], r["sample_id"], r["program_sha"], r["passed"], r["status"]) for r in rows)


class _KillWhen(threading.Thread):
    """Calls `kill()` once OUTPUT/results.jsonl holds `results` rows and `ready()` (default: always) says so, unless
    `stop()` comes first; `killed` holds (the row count then, what ready returned)."""

    def __init__(self, output: Path, results: int, kill, ready=lambda: True):
        super().__init__()
        self.output, self.results, self.kill, self.ready, self.killed = output, results, kill, ready, []
        self._halt = threading.Event()
        self.start()

    def run(self):
        path = self.output / "results.jsonl"
        while not self._halt.wait(0.2):
            done = len(path.read_text().splitlines()) if path.exists() else 0
            if done >= self.results and (state := self.ready()):
                self.kill()
                self.killed.append((done, state))
                return

    def stop(self) -> list:
        self._halt.set()
        self.join()
        return self.killed


def _succeeded(proc) -> bool:
    return proc.returncode == 0 and "succeeded" in proc.stdout + proc.stderr


def test_the_evaluation_job_runs_over_the_nodes_and_survives_losing_one(tmp_path):
    problems = load_problems("humaneval")
    pool = ["execution.workers_per_actor=1", "execution.batch_size=4"]  # one sandbox pool per node's one CPU
    with ray_nodes(tmp_path, workers=2) as cluster:
        # all 164 problems, 4 x (canonical, broken) each (sample ids 0-7: the even ones pass); worker1 is killed once
        # 40 results are in and a sandbox pool runs on each node
        output = tmp_path / "lost_node"
        samples = write_records(tmp_path / "all.jsonl", reference_samples(problems) * 4)

        def every_node_runs_a_pool():
            spread = cluster.actor_nodes("ExecuteSamples")
            return spread if spread == {"head", "worker1", "worker2"} else None

        killer = _KillWhen(output, 40, cluster.workers[0].kill, every_node_runs_a_pool)
        proc = cluster.submit(["python", "jobs/evaluate.py", "--dataset", "humaneval", "--samples", str(samples),
                               "--output", str(output), *pool], timeout=900)
        killed = killer.stop()
        assert killed and killed[0][0] < 1312, killed  # the node died mid-run, with a sandbox pool on each node
        assert _succeeded(proc), proc.stdout[-3000:]
        rows = _rows(output)
        # the lost batches ran again on the surviving nodes: exactly the results of an uninterrupted run, once each
        assert sorted((r["task_id"], r["sample_id"], r["passed"]) for r in rows) == sorted(
            (t, i, i % 2 == 0) for t in problems for i in range(8))
        assert all(r["status"] != "sandbox-error" for r in rows)
        # each node's pool claimed its own uid range and checked its isolation (full, as on this host alone)
        pools = {(r["executor"]["node"], r["executor"]["uid_base"]) for r in rows}
        assert len({node for node, _ in pools}) == 3 and len({uids for _, uids in pools}) == len(pools), pools
        assert {r["executor"]["isolation"] for r in rows} == {detect_isolation().label}

        cluster.wait_for_nodes(2)  # the cluster counts it dead; a new node joins
        cluster.add_worker(tmp_path)
        cluster.wait_for_nodes(3)


def _main_job(model: str, output: Path, n: int, *extra: str, max_tokens: int = 16) -> list[str]:
    """The main job (generate with vLLM, evaluate as samples come) on HumanEval with the tiny model: 164 x n samples."""
    return ["python", "jobs/evaluate.py", "--dataset", "humaneval", "--model", model, "--n", str(n),
            "--temperature", "0", "--max-tokens", str(max_tokens), "generation.engine.max_model_len=1024",
            "generation.batch_size=4", "execution.workers_per_actor=1", "execution.batch_size=4",
            "--output", str(output), *extra]


def _samples(output: Path) -> dict[tuple[str, int], str]:
    return {(row["task_id"], row["sample_id"]): line
            for line in (output / "samples.jsonl").read_text().splitlines() for row in [json.loads(line)]}


def test_the_main_job_survives_losing_a_node_that_runs_its_sandboxes(tmp_path, tiny_model):
    with ray_nodes(tmp_path, workers=2) as cluster:
        output = tmp_path / "main"

        target: list[str] = []

        def a_worker_running_sandboxes_only():  # not the engine's node: the generation goes on meanwhile
            engines, sandboxes = cluster.actor_nodes("GenerateSamples"), cluster.actor_nodes("ExecuteSamples")
            target[:] = sorted(sandboxes - engines - {"head"})[:1]
            return target[:]

        def kill_it():
            cluster.workers[int(target[0].removeprefix("worker")) - 1].kill()

        killer = _KillWhen(output, 40, kill_it, a_worker_running_sandboxes_only)
        # 164 x 12 samples of up to 128 tokens: long enough (about a minute here) to find the nodes and kill one
        proc = cluster.submit(_main_job(tiny_model, output, 12, max_tokens=128), timeout=900)
        killed = killer.stop()
        assert _succeeded(proc), proc.stdout[-3000:]
        assert killed and killed[0][0] < 1968, killed  # mid-run
        samples, rows = _samples(output), _rows(output)
        assert sorted(samples) == sorted((t, i) for t in load_problems("humaneval") for i in range(12))
        assert all(r["status"] != "sandbox-error" for r in rows)
        summary = json.loads((output / "summary.json").read_text())
        assert summary["samples"] == 1968 and summary["infra_errors"] == 0

        # exactly the verdicts of an uninterrupted evaluation of the same samples, one row per sample
        again = tmp_path / "uninterrupted"
        proc = cluster.submit(["python", "jobs/evaluate.py", "--dataset", "humaneval", "--samples",
                               str(output / "samples.jsonl"), "--output", str(again), "execution.workers_per_actor=1"])
        assert _succeeded(proc), proc.stdout[-3000:]
        assert _verdicts(rows) == _verdicts(_rows(again))
        cluster.wait_for_nodes(2)


def test_the_main_job_exits_3_when_no_node_is_left_for_its_sandboxes_and_a_re_run_completes_it(tmp_path, tiny_model):
    # only worker1 offers the "sandbox" resource the execution actors ask for (two CPUs: the engine may land there too)
    with ray_nodes(tmp_path, workers=2, resources=[{"CPU": 2, "sandbox": 1}]) as cluster:
        output = tmp_path / "main"
        job = _main_job(tiny_model, output, 2, "execution.resources.sandbox=1", "execution.wait_for_nodes_s=15",
                        "generation.wait_for_nodes_s=15")
        killer = _KillWhen(output, 20, cluster.workers[0].kill, lambda: "killed")
        proc = cluster.submit(job, timeout=900)
        killed = killer.stop()
        log = proc.stdout + proc.stderr
        assert killed and proc.returncode != 0 and "exit code 3" in log, log[-3000:]
        assert "made no progress for" in log and "sandbox: 1" in log, log[-3000:]
        kept_rows, kept_samples = _rows(output), _samples(output)
        assert killed[0][0] <= len(kept_rows) < 328  # everything that came back before is kept, on disk
        assert {(r["task_id"], r["sample_id"]) for r in kept_rows} <= set(kept_samples)

        _node_returns(cluster, tmp_path)
        proc = cluster.submit(job, timeout=900)
        assert _succeeded(proc), proc.stdout[-3000:]
        rows, samples = _rows(output), _samples(output)
        assert sorted((r["task_id"], r["sample_id"]) for r in rows) == sorted(samples) == sorted(
            (t, i) for t in load_problems("humaneval") for i in (0, 1))  # complete, each sample once
        assert all(samples[key] == line for key, line in kept_samples.items())  # kept samples were not regenerated
        by_key = {(r["task_id"], r["sample_id"]): r for r in rows}
        assert all(by_key[(r["task_id"], r["sample_id"])]["program_sha"] == r["program_sha"] for r in kept_rows)


def _node_returns(cluster: RayNodes, cwd: Path) -> None:
    cluster.wait_for_nodes(2)
    cluster.add_worker(cwd, resources={"CPU": 2, "sandbox": 1})
    cluster.wait_for_nodes(3)


@pytest.mark.docker
def test_the_docker_backend_runs_on_a_node_whose_image_its_setup_commands_built(tmp_path):
    # the node's setup: cluster.yaml's own command for the sandbox image, run as `ray up` runs it on a new node (the
    # checkout at ~/codeloop; sudo is this root shell); the image gets a name of its own, so this node's setup built it
    image = f"codeloop-sandbox:node-{uuid.uuid4().hex[:8]}"
    commands = [c for c in yaml.safe_load((REPO / "cluster.yaml").read_text())["setup_commands"]
                if "build_image.sh" in c]
    assert commands
    home, shims = tmp_path / "home", tmp_path / "shims"
    home.mkdir(), shims.mkdir()
    (home / "codeloop").symlink_to(REPO)
    (shims / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    (shims / "sudo").chmod(0o755)
    env = {**os.environ, "HOME": str(home), "CODELOOP_SANDBOX_IMAGE": image, "PATH": f"{shims}:{os.environ['PATH']}"}
    assert subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0
    try:
        for command in commands:
            setup = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=1200)
            assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
        assert subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0

        problems = load_problems("humaneval")
        first = {t: problems[t] for t in list(problems)[:6]}
        with ray_nodes(tmp_path, workers=1) as cluster:
            output = tmp_path / "docker"
            samples = write_records(tmp_path / "samples.jsonl", reference_samples(first))
            proc = cluster.submit(["python", "jobs/evaluate.py", "--dataset", "humaneval", "--samples", str(samples),
                                   "--output", str(output), "execution.workers_per_actor=1",
                                   "execution.resources.worker1=1", "execution.sandbox.backend=docker",
                                   f"execution.sandbox.docker_image={image}"])
            assert _succeeded(proc), proc.stdout[-3000:]
            rows = _rows(output)
            assert sorted((r["task_id"], r["sample_id"], r["passed"]) for r in rows) == sorted(
                (t, i, i == 0) for t in first for i in (0, 1))
            worker1 = {node for node, name in cluster.node_names().items() if name == "worker1"}
            assert {r["executor"]["node"] for r in rows} == worker1  # ran on that node, in its containers
            assert {r["executor"]["isolation"].split("+")[0] for r in rows} == {"docker"}, rows[0]["executor"]
    finally:
        subprocess.run(["docker", "image", "rm", "-f", image], capture_output=True)
