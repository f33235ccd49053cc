"""A separately started Ray cluster for `ray job submit` tests, as users run jobs: `ray start --head` on free ports.

    with ray_head(tmp_path) as head:
        proc = head.submit(["python", "jobs/sft.py", ...])      # `ray job submit --working-dir . -- ...` from the repo
        assert proc.returncode == 0 and "succeeded" in proc.stdout + proc.stderr
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RayHead:
    dashboard: str
    env: dict

    def submit(self, command: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
        """`ray job submit --working-dir . -- COMMAND` from the repository root, waiting for the job's end."""
        submit = [str(BIN / "ray"), "job", "submit", f"--address={self.dashboard}", "--working-dir", ".", "--",
                  *command]
        deadline = time.monotonic() + 120
        while True:  # the dashboard takes a few seconds to come up
            proc = subprocess.run(submit, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout)
            if (proc.returncode == 0 or time.monotonic() > deadline
                    or "Connection refused" not in proc.stdout + proc.stderr):
                return proc
            time.sleep(2)


@contextlib.contextmanager
def ray_head(cwd: Path, num_cpus: int = 4):
    """Start a head node (its own ports, dashboard on 127.0.0.1) for the block; stop it, and only it, after."""
    # Ray 2.60 clusters require a token (~/.ray/auth_token, made by the first cluster); the job CLI sends it only in
    # token mode.
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token")
    env.pop("RAY_ADDRESS", None)
    subprocess.run([str(BIN / "ray"), "get-auth-token", "--generate"], env=env, check=True, capture_output=True)
    gcs, dashboard = free_port(), free_port()
    ports = [f"--port={gcs}", f"--dashboard-port={dashboard}", f"--ray-client-server-port={free_port()}",
             f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
             f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}",
             f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}"]
    head = subprocess.Popen([str(BIN / "ray"), "start", "--head", "--block", f"--num-cpus={num_cpus}",
                             "--include-dashboard=true", "--dashboard-host=127.0.0.1", *ports], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield RayHead(f"http://127.0.0.1:{dashboard}", env)
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # `ray start --block` stops its cluster (and only it) on SIGTERM
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
