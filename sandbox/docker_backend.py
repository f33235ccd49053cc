"""The Docker backend: each sandbox worker runs in its own container (docker-py), from an image built offline.

    Sandbox(SandboxConfig(backend="docker", workers=2))     # needs a Docker engine and the image:
    bash sandbox/docker/ensure_docker.sh && bash sandbox/docker/build_image.sh

The container is the outer wall (its own root filesystem from `sandbox/docker/build_image.sh`, read-only; no
network; memory and pid limits; all capabilities dropped but the few the worker needs to switch to the run uid and
kill it; no-new-privileges). Inside it the same `inside/worker.py` forks per execution exactly as under bubblewrap. The
host talks to the worker over a unix socket in a per-worker directory bind-mounted at /ipc.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

from sandbox import isolation
from sandbox.link import Frames, run_uids

CONTAINER_MEMORY_MB = 4096
START_TIMEOUT_S = 60


class DockerWorker:
    """One worker in one container; same interface as the process workers of `sandbox.pool`."""

    def __init__(self, index: int, config):
        self.index, self.config = index, config
        self.uid, self.judge_uid = run_uids(config.uid_base, index)
        self.container = None
        self.frames = None
        self._listener = None
        self._conn = None
        self._ipc_dir = None

    @property
    def alive(self) -> bool:
        if self.container is None or self._conn is None:
            return False
        try:
            self.container.reload()
        except Exception:  # noqa: BLE001 - the engine lost it
            return False
        return self.container.status == "running"

    def start(self) -> None:
        client = isolation.docker_client()
        self._ipc_dir = tempfile.mkdtemp(prefix=f"codeloop-docker-w{self.index}-")
        os.chmod(self._ipc_dir, 0o755)
        path = os.path.join(self._ipc_dir, "w.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(1)
        self._listener.settimeout(START_TIMEOUT_S)
        self.container = client.containers.run(
            self.config.docker_image,
            command=isolation.worker_command("python3", f"{isolation.WORKER_MOUNT}/{isolation.WORKER_SCRIPT}", self.uid,
                                             self.judge_uid, "/tmp", socket="/ipc/w.sock"),
            detach=True,
            init=True,  # an init reaps whatever the programs orphan
            network_mode="none",
            ipc_mode="none",  # own ipc namespace and no /dev/shm (Docker's default one is world-writable)
            read_only=True,
            # Docker's tmpfs default is noexec; compiled C++ programs run from their working directory in /tmp.
            tmpfs={"/tmp": f"size={self.config.tmp_size_mb}m,mode=755,exec,nosuid,nodev"},
            mem_limit=f"{CONTAINER_MEMORY_MB}m",
            memswap_limit=f"{CONTAINER_MEMORY_MB}m",
            pids_limit=1024,
            cap_drop=["ALL"],
            cap_add=list(isolation.WORKER_CAPS),
            security_opt=["no-new-privileges"],
            environment=dict(isolation.WORKER_ENV),
            volumes={isolation.SANDBOX_DIR: {"bind": isolation.WORKER_MOUNT, "mode": "ro"},
                     self._ipc_dir: {"bind": "/ipc", "mode": "rw"}},
            labels={"codeloop.sandbox": "worker"},
        )
        try:
            self._conn, _ = self._listener.accept()
        except OSError as exc:
            logs = self._logs()
            self.kill()
            raise RuntimeError(f"docker sandbox worker {self.index} did not connect: {exc}; logs: {logs}") from exc
        self._conn.setblocking(True)
        fd = self._conn.fileno()
        self.frames = Frames(fd, fd)
        hello = self.frames.recv(timeout=START_TIMEOUT_S)
        if not hello.get("ready"):
            raise RuntimeError(f"docker sandbox worker {self.index} sent {hello!r}")

    def _logs(self) -> str:
        try:
            return self.container.logs(tail=20).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001
            return ""

    def call(self, request: bytes, timeout: float) -> dict:
        self.frames.send(request)
        return self.frames.recv(timeout)

    def kill(self) -> None:
        for sock in (self._conn, self._listener):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        self._conn = self._listener = self.frames = None
        if self.container is not None:
            try:
                self.container.remove(force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
            self.container = None
        if self._ipc_dir:
            shutil.rmtree(self._ipc_dir, ignore_errors=True)
            self._ipc_dir = None

    close = kill
