"""Host side of the sandbox: a pool of pre-started isolated workers and the `Sandbox` object that drives them.

    from sandbox import Sandbox, SandboxConfig, ExecRequest
    with Sandbox(SandboxConfig(workers=2)) as box:
        result = box.run(ExecRequest(language="python", code="print(1)"))

Each worker is one long-lived process inside its own isolation (a bwrap namespace set or a Docker container) with
its own non-root uid (`uid_base + index`) and memory cgroup. A worker that dies or stops answering is killed and
replaced; the request it held comes back as `sandbox-error` after `retries` further attempts.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import queue
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from typing import Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field

from sandbox import isolation
from sandbox.link import Frames, claim_uid_range, run_uids
from sandbox.schema import CallTests, ExecRequest, ExecResult, StdioTests, sandbox_error


class IsolationError(RuntimeError):
    """The host offers no isolation and the caller did not opt into running unisolated."""


class SandboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["auto", "bwrap", "docker", "unsafe-process"] = Field(
        "auto", description="auto: bwrap when it works here; docker: one container per worker; "
        "unsafe-process: no isolation.")
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=128,
                         description="Worker processes (parallel executions).")
    uid_base: int | None = Field(
        None, ge=1000, description="Worker i runs programs as uid uid_base + i and its judge as uid_base + 128 + i "
        "(all unused on the host). None: "
        "claim a free range of this host (a lock file per range), so sandboxes in several processes never share a uid.")
    tmp_size_mb: int = Field(512, ge=16, description="Size of each worker's private /tmp (tmpfs), MiB.")
    python: str = Field(
        "host", description="CPython that runs the workers and the Python programs: 'host' (this interpreter's "
        "installation), 'newest' (the newest CPython >= 3.12 installed here) or a path to a python executable.")
    memory_cgroup: bool = Field(True, description="Bound each run's total memory with a memory cgroup when the host "
                                "allows.")
    retries: int = Field(1, ge=0, le=5, description="Re-runs of a request whose worker died (infrastructure failure).")
    docker_image: str = Field("codeloop-sandbox:1", description="Image for the docker backend (see sandbox/docker/).")
    unsafe_allow_unisolated: bool = Field(
        False, description="Run untrusted code WITHOUT isolation when none is available. Only for code you trust.")


def _host_timeout(request: ExecRequest) -> float:
    """How long the host waits for a worker's answer before it declares the worker dead: longer than anything the
    worker's own limits allow (recordings, runs, judging a run's answers: max(10 s, wall) each)."""
    limits, tests = request.limits, request.tests
    judging = max(limits.wall_time_s, 10.0)
    if isinstance(tests, CallTests):
        sizes = [size for _, size in tests.groups] or [len(tests.inputs)]
        if tests.expected is None:  # one recording and up to wall + 1 s of run per test (base, plus)
            return len(sizes) * (isolation.RECORD_LIMIT_S + limits.wall_time_s + 1.0) + judging + 15.0
        floor = limits.call_time_floor_s  # given answers: nothing recorded, each call limited to the floor
        run = sum(min(limits.wall_time_s, floor * size) + 1.0 for size in sizes) if floor else limits.wall_time_s + 1
        return run + judging + 15.0
    if getattr(tests, "reference_solution", None):
        return isolation.RECORD_LIMIT_S + isolation.REPLAY_ROUNDS * (limits.wall_time_s + 2.0 + judging) + 15.0
    runs = len(tests.cases) if isinstance(tests, StdioTests) else 1
    return limits.compile_time_s + runs * (limits.wall_time_s + 2.0) + 15.0


class _ProcessWorker:
    """One worker as a local process (inside bwrap, or unisolated)."""

    def __init__(self, index: int, config: SandboxConfig, report: isolation.IsolationReport, cgroup_root: str | None,
                 interpreter: isolation.Interpreter):
        self.index, self.config, self.report, self.interpreter = index, config, report, interpreter
        self.uid, self.judge_uid = run_uids(config.uid_base, index)
        self.cgroup_dir = None
        if cgroup_root:
            self.cgroup_dir = os.path.join(cgroup_root, f"w{index}")
            os.makedirs(self.cgroup_dir, exist_ok=True)
        self.proc = None
        self.frames = None
        self.log_path = os.path.join(tempfile.gettempdir(), f"codeloop-sandbox-{os.getpid()}-w{index}.log")
        self._tmp_root = None

    def start(self) -> None:
        if self.report.backend == "bwrap":
            argv = isolation.bwrap_argv(self.uid, self.judge_uid, self.cgroup_dir, self.config.tmp_size_mb,
                                        self.interpreter)
            env = {"PATH": "/usr/bin:/bin"}
        else:
            self._tmp_root = tempfile.mkdtemp(prefix=f"codeloop-w{self.index}-")
            os.chmod(self._tmp_root, 0o755)
            argv = isolation.worker_command(self.interpreter.executable,
                                            os.path.join(isolation.SANDBOX_DIR, isolation.WORKER_SCRIPT), self.uid,
                                            self.judge_uid, self._tmp_root, cgroup=self.cgroup_dir)
            env = dict(isolation.WORKER_ENV)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
                                     close_fds=True, start_new_session=True)
        log.close()
        self.frames = Frames(self.proc.stdout.fileno(), self.proc.stdin.fileno())
        try:
            hello = self.frames.recv(timeout=60)
        except (TimeoutError, EOFError, ValueError) as exc:
            self.kill()
            raise RuntimeError(f"sandbox worker {self.index} failed to start: {exc}; log: {self._log_tail()}") from exc
        if not hello.get("ready"):
            raise RuntimeError(f"sandbox worker {self.index} sent {hello!r}")

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def call(self, request: bytes, timeout: float) -> dict:
        self.frames.send(request)
        return self.frames.recv(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        self.proc = None
        _kill_uid(self.uid)
        _kill_uid(self.judge_uid)
        if self._tmp_root:
            shutil.rmtree(self._tmp_root, ignore_errors=True)
            self._tmp_root = None

    def close(self) -> None:
        self.kill()
        if self.cgroup_dir:
            _rmdir_cgroup(self.cgroup_dir)
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


def _rmdir_cgroup(path: str, wait_s: float = 3.0) -> None:
    """Remove a cgroup directory (and its empty children); a dying worker may still be leaving it: retry."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            for entry in os.scandir(path):
                if entry.is_dir():
                    _rmdir_cgroup(entry.path, max(0.0, deadline - time.monotonic()))
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)


def _remove_stale_cgroups(root: str) -> None:
    """Cgroups left by sandboxes whose process died without closing (e.g. killed): remove them."""
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        parts = entry.name.split("-")
        if (len(parts) == 3 and parts[0] == "codeloop" and parts[1].isdigit()
                and not os.path.exists(f"/proc/{parts[1]}")):
            _rmdir_cgroup(entry.path, wait_s=0.0)


def _kill_uid(uid: int) -> None:
    """Host-side safety net: kill any process still running as a worker's run uid."""
    if os.getuid() != 0:
        return
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(uid)
            os.setuid(uid)
            for _ in range(1000):
                os.kill(-1, 9)
        except BaseException:
            pass
        os._exit(0)
    os.waitpid(pid, 0)


class Sandbox:
    """A pool of isolated workers. Thread-safe: `run` blocks for a free worker, `run_batch` uses them all."""

    def __init__(self, config: SandboxConfig | None = None, **overrides):
        self.config = config or SandboxConfig(**overrides)
        self._uid_lock = None
        self.report = isolation.detect_isolation(self.config.backend, self.config.docker_image)
        if self.report.backend == "docker" and self.report.level == "none":
            raise IsolationError("docker backend unavailable: " + "; ".join(self.report.notes))
        if self.report.level == "none" and not self.config.unsafe_allow_unisolated:
            raise IsolationError(
                f"no sandbox isolation available ({'; '.join(self.report.notes)}). Install bubblewrap "
                "(apt-get install bubblewrap), use backend='docker', or - only for code you trust - set "
                "unsafe_allow_unisolated=True.")
        logging.getLogger("codeloop.sandbox").info(self.report.describe())
        if self.report.level == "none":
            import warnings

            warnings.warn("codeloop sandbox is running untrusted code WITHOUT isolation (unsafe_allow_unisolated=True)",
                          RuntimeWarning, stacklevel=2)
        self._cgroup_root = None
        if not self.config.memory_cgroup:
            self.report.memory_cgroup = False
            self.report.level = "partial" if self.report.level == "full" else self.report.level
        local_cgroup = self.report.memory_cgroup and self.report.backend != "docker"  # docker: the container's own
        root = isolation.memory_cgroup_root() if local_cgroup else None
        if root:
            _remove_stale_cgroups(root)
            self._cgroup_root = os.path.join(root, f"codeloop-{os.getpid()}-{id(self):x}")
            os.makedirs(self._cgroup_root, exist_ok=True)
        self.interpreter = isolation.find_interpreter(self.config.python) if self.report.backend != "docker" else None
        if self.interpreter is not None:
            self.report.notes.append(f"python programs run on CPython {self.interpreter.version}")
        if self.config.uid_base is None:
            uid_base, self._uid_lock = claim_uid_range()
            self.config = self.config.model_copy(update={"uid_base": uid_base})
        self._workers = [self._make_worker(i) for i in range(self.config.workers)]
        self._idle: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        # Workers are started (and restarted) only by these long-lived threads: bwrap --die-with-parent uses
        # PR_SET_PDEATHSIG, which fires when the *thread* that spawned the process exits.
        self._spawner = concurrent.futures.ThreadPoolExecutor(min(4, len(self._workers)),
                                                              thread_name_prefix="sandbox-spawn")
        errors = []
        for worker, exc in zip(self._workers, self._spawner.map(self._try_start, self._workers)):
            if exc:
                errors.append(exc)
            else:
                self._idle.put(worker)
        if errors:
            self.close()
            raise errors[0]
        self._executor = concurrent.futures.ThreadPoolExecutor(len(self._workers), thread_name_prefix="sandbox")

    def _make_worker(self, index: int):
        if self.report.backend == "docker":
            from sandbox.docker_backend import DockerWorker

            return DockerWorker(index, self.config)
        return _ProcessWorker(index, self.config, self.report, self._cgroup_root, self.interpreter)

    @staticmethod
    def _try_start(worker):
        try:
            worker.start()
        except Exception as exc:  # noqa: BLE001 - collected and re-raised by the caller
            return exc
        return None

    @property
    def isolation(self) -> str:
        return self.report.label

    def run(self, request: ExecRequest | dict) -> ExecResult:
        """Run one request on the next free worker."""
        if self._closed:
            raise RuntimeError("sandbox is closed")
        if not isinstance(request, ExecRequest):
            request = ExecRequest.model_validate(request)
        payload = request.model_dump_json().encode()  # pydantic's own serialiser: a third of the host's cost
        timeout = _host_timeout(request)
        last_error = "no attempt made"
        for _attempt in range(self.config.retries + 1):
            worker = self._next_worker()
            try:
                answer = worker.call(payload, timeout)
            except (TimeoutError, EOFError, OSError, ValueError, struct.error) as exc:
                last_error = f"worker {worker.index} failed: {exc!r}"
                self._restart(worker)
                continue
            self._idle.put(worker)
            result = ExecResult.from_dict(answer)
            result.isolation = self.report.label
            return result
        return sandbox_error(last_error, request.request_id, self.report.label)

    def _next_worker(self):
        while True:
            try:
                return self._idle.get(timeout=1.0)
            except queue.Empty:
                if self._closed:
                    raise RuntimeError("sandbox is closed") from None
                if not any(w.alive for w in self._workers):
                    raise RuntimeError("every sandbox worker died and none could be restarted") from None

    def _restart(self, worker) -> None:
        worker.kill()
        if self._spawner.submit(self._try_start, worker).result() is not None:
            worker.kill()  # leave it dead; the pool shrinks rather than failing requests
        if worker.alive:
            self._idle.put(worker)
        elif not any(w.alive for w in self._workers):
            raise RuntimeError("every sandbox worker died and none could be restarted")

    def run_batch(self, requests: Iterable[ExecRequest | dict]) -> list[ExecResult]:
        """Run many requests in parallel across the workers; results come back in request order."""
        return list(self._executor.map(self.run, list(requests)))

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        executor = getattr(self, "_executor", None)
        if executor is not None:
            executor.shutdown(wait=True)
        for worker in self._workers:
            worker.close()
        spawner = getattr(self, "_spawner", None)
        if spawner is not None:
            spawner.shutdown(wait=True)
        if self._cgroup_root:
            _rmdir_cgroup(self._cgroup_root)
        if self._uid_lock is not None:
            os.close(self._uid_lock)  # only now: every process of the range's uids is gone
            self._uid_lock = None

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
