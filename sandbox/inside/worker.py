"""The sandbox worker: the trusted supervisor inside the isolation, and the pristine zygote that forks candidates.

Stdlib only, started by `sandbox.pool` as `python -I -S inside/worker.py --uid N --judge-uid M [--cgroup DIR]
[--socket PATH]` (inside bubblewrap, inside a Docker container, or - unsafe - as a plain process). It reads
length-prefixed JSON jobs (an `ExecRequest` as a dict) on stdin or a unix socket and answers each with an
`ExecResult` dict.

Three kinds of process, so that what judges is never reachable from what is judged:
  - the supervisor (this process, root in the isolation): holds requests, tests, expected outputs, recordings; it
    never runs a candidate. It judges: stdin/stdout outputs are compared here (sandbox/judge/compare.py) and Python
    tests are replayed here against the candidate's plain-data answers (sandbox/judge/replay.py);
  - the zygote: forked from the supervisor at start, after warming up on trusted programs and BEFORE the first job,
    so it never held any request's data. It forks every candidate child; a child receives its program and inputs on
    descriptors (a memfd of the payload, a memfd of stdin), never by inheritance, so nothing of an earlier request
    (compiled tests, references, expected outputs) is in the memory a later child starts from;
  - judge children: forked from the supervisor as the judge uid to run dataset code only (the trusted recording of a
    reference solution under its tests, sandbox/judge/record.py).

Per execution the zygote forks a child that: starts a new session, raises its OOM score, takes its descriptors (0-2
stdio, 3 results, 4 setup), closes every other one, sets rlimits (CPU, address space, file size, processes, POSIX
message queues: none, no core files), drops to the run uid and enters the private working directory; then it runs
Python in-process (a fork of the warm zygote) or execs g++/the binary/node. Descriptor 4 closes when setup is done
(by exec, or before the program runs): only a setup failure writes on it, so "the sandbox failed" comes from a
channel no program holds; every way a program ends (any exit code, a signal, a crash) is the program's result. The
supervisor waits with a wall-clock deadline (per call in replay mode), then kills every live process of the run uid
(children that called setsid or double-forked included), removes SysV IPC objects the run left, drains the pipes and
removes the working directory, so the next run starts clean.
"""

from __future__ import annotations

import builtins
import errno
import fcntl
import gc
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
import time
from _blake2 import blake2b  # not hashlib: it maps OpenSSL into the zygote, and every fork pays for its pages

SANDBOX_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_isolated(relative_path: str, private_builtins: bool = False, **names):
    """Load `sandbox/<relative_path>` from source, out of `sys.modules` (a program cannot `import` the live copy);
    `names` are set in its namespace first (the modules it needs, as no package exists inside the isolation).

    With `private_builtins` its functions see a copy of the builtins taken now, so a program that patches the
    builtins does not reach them. Always from source, never from a __pycache__ beside it: measured here, a worker
    whose harness came from a .pyc made every forked run take about twice as long (4.6 -> 9-10 ms, BENCHMARKS.md).
    """
    path = os.path.join(SANDBOX_ROOT, relative_path)
    with open(path, encoding="utf-8") as f:
        source = f.read()
    module = type(sys)(os.path.splitext(os.path.basename(path))[0])
    module.__file__ = path
    module.__dict__.update(names)
    module.__dict__["__builtins__"] = dict(builtins.__dict__) if private_builtins else builtins
    exec(compile(source, path, "exec"), module.__dict__)
    return module


# What candidates' processes run (inherited by the zygote). The judge's modules are loaded only after the zygote
# started (`load_judge`).
plain = load_isolated("inside/plain.py")
child = load_isolated("inside/child.py", plain=plain)
testcode = load_isolated("inside/testcode.py", private_builtins=True)
languages = load_isolated("inside/languages.py")
tracer = load_isolated("inside/tracer.py", plain=plain)
assert testcode.ISOLATED, "the test-code harness must see its own copy of the builtins"
compare = record = replay = traceable = None

MIB = 1024 * 1024
RESULT_FD, SETUP_FD, PAYLOAD_FD = 3, 4, 5
DRAIN_SECONDS = 1.0
KILL_TIMEOUT_S = 20.0
MAX_RESULT_BYTES = 320 * MIB  # answers (HumanEval+'s largest reference answers are ~150 MiB)
MAX_SETUP_BYTES = 4096
JUDGE_MEMORY_MB = 4096
RECORDINGS_KEPT = 1024
PROGRAMS_KEPT = 64
TEST_STATUS_ORDER = ("failed", "runtime-error", "memory", "timeout")
STATUS_OF_TEST = ("passed", "failed", "timeout", "memory", "runtime-error", "skipped")
CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0"}
CPP_FLAGS = ["-std=c++17", "-O2", "-pipe"]
# Imported once by the worker so that forked programs find them loaded (typing alone costs a child ~8 ms); `random`
# too, by _import_random_without_reseed_at_fork.
# Chosen by what HumanEval/MBPP programs import and by their size: every MiB the zygote holds slows each fork.
PRELOAD = ("typing", "math", "copy", "string", "collections", "re", "heapq", "bisect", "itertools",
           "functools", "datetime")
JUDGED_BY_REPLAY, JUDGED_BY_TEST_CODE, JUDGED_OUTSIDE = "replay", "test-code", "outside"
KEYCTL_SYSCALL = {"x86_64": 250, "aarch64": 219}
KEYCTL_CLEAR = 7
KEY_SPEC_SESSION_KEYRING, KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING = -3, -4, -5


# ----------------------------------------------------------------------------------------------- the zygote


def zygote_main(sock: socket.socket) -> None:
    """Fork one candidate child per message and report its pid, then its wait status. Never returns.

    A message is a small JSON spec (uid, limits, working directory, argv to exec or None for Python) with the
    child's descriptors attached: stdin, stdout, stderr, results, setup, payload. It carries no program and no data:
    those reach the child on its descriptors."""
    forks = 0
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 65536, 8)
        except OSError:
            os._exit(0)
        if not message:
            os._exit(0)
        spec = json.loads(message)
        forks += 1
        if forks % 1000 == 0:  # frozen objects are never collected: now and then, collect the zygote's cycles
            gc.unfreeze()
            gc.collect()
        gc.freeze()  # O(1): objects made since the last run are not walked (and so copied) by the child's collector
        pid = os.fork()
        if pid == 0:
            sock.close()
            _child(spec, fds)  # never returns
        for fd in fds:
            os.close(fd)
        del spec, message, fds
        sock.sendall(b"pid %d" % pid)
        status = os.waitpid(pid, 0)[1]
        sock.sendall(b"status %d" % status)


def _child(spec: dict, fds: list[int]) -> None:
    try:
        os.setsid()
        if spec["cgroup_procs"]:  # the run's memory cgroup: the zygote stays outside, out of its OOM killer's reach
            _write_small(spec["cgroup_procs"], b"0")
        _write_small("/proc/self/oom_score_adj", b"1000")
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 16) for fd in fds]  # out of the way of the dup2s below
        for target, fd in enumerate(high):
            os.dup2(fd, target, inheritable=target <= RESULT_FD or (target == PAYLOAD_FD and spec["keep_payload"]))
        os.closerange(PAYLOAD_FD + 1, 65536)  # the zygote's socket and everything else: unreachable
        cpu = max(1, int(spec["cpu_s"] + 0.999))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        if spec["memory_as"]:
            mem = spec["memory_mb"] * MIB
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        fsize = spec["file_size_mb"] * MIB
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))  # no POSIX message queue can outlive this run
        if os.getuid() == 0:
            os.setgroups([])
            os.setgid(spec["uid"])
            os.setuid(spec["uid"])
        # RLIMIT_NPROC counts processes of the (now unprivileged) uid; it does nothing for root.
        resource.setrlimit(resource.RLIMIT_NPROC, (spec["max_processes"], spec["max_processes"]))
        os.chdir(spec["run_dir"])
        os.umask(0o077)
        if spec["argv"]:
            os.execve(spec["argv"][0], spec["argv"], dict(os.environ))  # SETUP_FD is close-on-exec: EOF means ok
        payload = json.loads(_read_fd(PAYLOAD_FD))
        os.close(PAYLOAD_FD)
    except BaseException as exc:  # noqa: BLE001 - anything here is a sandbox failure: say so where only we write
        try:
            os.write(SETUP_FD, f"child setup failed: {exc!r}".encode()[:MAX_SETUP_BYTES])
        finally:
            os._exit(1)
    os.close(SETUP_FD)  # setup done; from here on, whatever happens is the program's doing
    status = 1
    try:
        sys.argv = ["solution.py"]
        sys.modules["__main__"] = type(sys)("__main__")  # `import __main__` must not reach the worker module
        mode = payload["mode"]
        if mode == "calls":
            child.run_calls(payload["code"], payload["calls"], RESULT_FD, payload.get("prelude", ""),
                            payload.get("instance_of", ""), payload.get("numbers_as_plain", False))
            status = 0
        elif mode == "program":
            status = child.run_program(payload["code"], payload.get("prelude", ""))
        elif mode == "trace":
            status = tracer.run_traced(payload, RESULT_FD)
        else:  # test-code mode
            channel = testcode.VerdictChannel(RESULT_FD, payload["key"].encode())
            testcode.run_tests(payload["code"], payload["tests"], channel)
            status = 0
    except BaseException:  # noqa: BLE001 - the program broke what runs it: the judge sees missing answers
        pass
    finally:
        child.flush_stdio()
        os._exit(status if isinstance(status, int) else 1)


def _read_fd(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


# ----------------------------------------------------------------------------------------------- one execution


class Outcome:
    """What one forked execution produced (raw, before verdict logic)."""

    def __init__(self):
        self.exit_code = None
        self.signal = None
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.stdout_total = 0
        self.stderr_total = 0
        self.results = bytearray()  # descriptor 3: answers (call mode) or verdict events (test-code mode)
        self.result_lines: list[float] = []  # when each results line ended (monotonic seconds)
        self.results_exceeded = False
        self.setup = bytearray()  # descriptor 4: only a failed child setup writes here
        self.timed_out = False
        self.timed_out_call: int | None = None  # call mode with per-call limits: the call that ran out of time
        self.output_exceeded = False
        self.oom_killed = False
        self.start = 0.0
        self.duration_s = 0.0

    def text(self, which: str, limit: int) -> str:
        return bytes(getattr(self, which)[:limit]).decode("utf-8", "replace")


class ZygoteGone(RuntimeError):
    """The zygote died: this worker can run nothing more; it exits so that the pool starts a new one."""


class Worker:
    """The supervisor's side of executions: the zygote, cgroups, kills, judge children and the recordings cache."""

    def __init__(self, uid: int, judge_uid: int, cgroup: str | None, root: str, record_limit_s: float,
                 replay_rounds: int):
        self.uid, self.judge_uid = uid, judge_uid
        # the host's budget: a reference under its own tests; rounds of recordings extended by the candidate's
        # answers before test-code mode (sandbox/isolation.py decides both)
        self.record_limit_s, self.replay_rounds = record_limit_s, replay_rounds
        self.cgroup = cgroup
        self.root = root
        self.run_dir = os.path.join(root, "run")
        self.judge_dir = os.path.join(root, "judge")
        if os.getuid() == 0:
            os.chmod(root, 0o755)  # programs write only to their run dir (Docker makes a tmpfs /tmp 1777)
        self.recordings: dict[str, dict] = {}
        self.programs: dict = {}  # code -> traceable.Program, for trace mode
        self._keys_seen = _keys_of(uid)
        self.zygote_pid = None
        self.zygote = None
        self._run_cgroup = None
        if cgroup:
            self._cgroup_setup()

    # -- memory cgroup (v1 or v2 file names) ------------------------------------------------------------------
    # Two leaves: `sup` holds the supervisor, the zygote and judge children; `run` every candidate (each joins it
    # right after the fork), under the run's memory limit: the OOM killer there can only pick candidates.
    def _cgroup_setup(self) -> None:
        for leaf in ("sup", "run"):
            os.makedirs(os.path.join(self.cgroup, leaf), exist_ok=True)
        _write_small(os.path.join(self.cgroup, "sup", "cgroup.procs"), b"0")
        control = os.path.join(self.cgroup, "cgroup.subtree_control")
        if os.path.exists(control):  # v2: the controller must be enabled for the leaves
            _write_small(control, b"+memory")
        self._run_cgroup = os.path.join(self.cgroup, "run")
        self._procs_path = os.path.join(self._run_cgroup, "cgroup.procs")
        self._oom_path = self._cg_file("memory.oom_control", "memory.events")

    def _cg_file(self, *names: str) -> str | None:
        for name in names:
            path = os.path.join(self._run_cgroup, name)
            if os.path.exists(path):
                return path
        return None

    def _cgroup_prepare(self, memory_mb: int) -> None:
        if not self._run_cgroup:
            return
        limit = (memory_mb + 64) * MIB  # + the pages the child shares copy-on-write with the zygote
        if limit != getattr(self, "_limit", None):
            try:
                _write_small(self._cg_file("memory.limit_in_bytes", "memory.max"), str(limit).encode())
                self._limit = limit
            except OSError:  # EBUSY: usage above the new limit right now; keep the old one for this run
                pass
        if not hasattr(self, "_oom_baseline"):
            self._oom_baseline = self._oom_count()

    def _oom_count(self) -> int:
        try:
            text = _read_small(self._oom_path)
        except (OSError, TypeError):
            return 0
        _, found, rest = text.partition(b"oom_kill ")
        return int(rest.split(None, 1)[0]) if found else 0

    def _cgroup_oom(self) -> bool:
        if not self._run_cgroup:
            return False
        count = self._oom_count()
        hit, self._oom_baseline = count > self._oom_baseline, count
        return hit

    # -- the zygote ---------------------------------------------------------------------------------------------
    def start_zygote(self, close_fds: tuple[int, ...]) -> None:
        """Fork the zygote now: call this before the first job, after the warm-up."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        gc.collect()  # what the warm-up left in cycles, before it is frozen for good
        gc.freeze()  # keep the collector from touching (and so copying) these objects in every forked child
        pid = os.fork()
        if pid == 0:
            try:
                ours.close()
                for fd in close_fds:  # the job channel to the host: never in the zygote or its children
                    os.close(fd)
                zygote_main(theirs)
            finally:
                os._exit(0)
        theirs.close()
        self.zygote, self.zygote_pid = ours, pid

    def _zygote_says(self, word: bytes) -> int:
        message = self.zygote.recv(64)
        head, _, value = message.partition(b" ")
        if head != word:
            raise ZygoteGone(f"zygote said {message[:64]!r}, expected {word.decode()}")
        return int(value)

    # -- process control -----------------------------------------------------------------------------------------
    def kill_uid(self, uid: int | None = None) -> None:
        """Kill every live process of `uid` (default: the run uid): also children that called setsid, double-forked
        or stopped.

        Scans /proc (inside the worker's pid namespace only a handful of entries) and SIGKILLs each match, until a
        scan finds none alive. A process that is forking when it is killed cannot complete the fork (the kernel
        aborts fork on a pending SIGKILL), so each round leaves only processes that the next round sees.
        """
        uid = self.uid if uid is None else uid
        if uid == self.uid and self._run_cgroup_is_empty():
            return
        deadline, pause = time.monotonic() + KILL_TIMEOUT_S, 0.0005
        while True:
            victims = _live_pids_of_uid(uid)
            if not victims:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes {victims} of uid {uid} survived SIGKILL for {KILL_TIMEOUT_S}s")
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.reap()
            # A killed process may take a while to exit (e.g. while its cgroup reclaims memory).
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _run_cgroup_is_empty(self) -> bool:
        """Fast path: every process of a run is in the run cgroup (it joins before it drops privileges, and may not
        leave it), so if the cgroup is empty, nothing of the run uid is alive (one read instead of a scan of /proc)."""
        if not self._run_cgroup:
            return False
        try:
            return not _read_small(self._procs_path).strip()
        except OSError:
            return False

    @staticmethod
    def reap() -> None:
        """Collect exited children of the supervisor (judge children, ipcrm)."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def remove_ipc_objects(self) -> None:
        """SysV shared memory, semaphores and message queues outlive their processes (the ipc namespace is the
        worker's, not the run's): remove whatever the run uid left, so nothing reaches the next program. (POSIX
        message queues cannot be made: RLIMIT_MSGQUEUE is 0 for every run.)"""
        if any(len(_read_small(f"/proc/sysvipc/{kind}").splitlines()) > 1 for kind in ("shm", "sem", "msg")):
            self._as_run_uid(lambda: os.execv(_which("ipcrm", "/usr/bin/ipcrm"), ["ipcrm", "--all"]))

    def remove_keys(self) -> None:
        """Kernel keys outlive their processes in the run uid's user keyrings (and a shared session keyring): clear
        them when the run uid's key count changed, so nothing reaches the next program."""
        if _keys_of(self.uid) != self._keys_seen:
            self._as_run_uid(_clear_keyrings)
            self._keys_seen = _keys_of(self.uid)

    def _as_run_uid(self, action) -> None:
        """Run `action()` in a short-lived child as the run uid: it can remove only what that uid owns."""
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(self.uid)
                os.setuid(self.uid)
                action()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)

    # -- a candidate's execution -------------------------------------------------------------------------------
    def execute(self, *, stdin: bytes, limits: dict, keep_bytes: int, argv: list[str] | None = None,
                payload: dict | bytes | None = None, memory_as: bool = True, wall_s: float | None = None,
                cpu_s: float | None = None, memory_mb: int | None = None,
                call_limits: list[float] | None = None) -> Outcome:
        """Run one candidate child (via the zygote) as the run uid: exec `argv`, or Python with `payload` (a dict, as
        JSON) on descriptor 5; an exec'd program keeps a `payload` of bytes there (test-code mode's token).
        `call_limits` (call mode): seconds for each call, counted from the previous answer line."""
        wall_s = wall_s or limits["wall_time_s"]
        cpu_s = cpu_s or limits["cpu_time_s"]
        memory_mb = memory_mb or limits["memory_mb"]
        self._cgroup_prepare(memory_mb)
        stdin_fd = _memfd("stdin", stdin) if stdin else os.open(os.devnull, os.O_RDONLY)
        if isinstance(payload, dict):
            payload = json.dumps(payload).encode()
        payload_fd = _memfd("payload", payload) if payload else os.open(os.devnull, os.O_RDONLY)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        res_r, res_w = os.pipe()
        setup_r, setup_w = os.pipe()
        spec = {"uid": self.uid, "run_dir": self.run_dir, "cpu_s": cpu_s, "memory_mb": memory_mb,
                "memory_as": memory_as, "file_size_mb": limits["file_size_mb"],
                "max_processes": limits["max_processes"], "argv": argv, "keep_payload": bool(argv and payload),
                "cgroup_procs": self._procs_path if self._run_cgroup else None}
        outcome = Outcome()
        child_fds = (stdin_fd, out_w, err_w, res_w, setup_w, payload_fd)
        try:
            outcome.start = start = time.monotonic()
            socket.send_fds(self.zygote, [json.dumps(spec).encode()], list(child_fds))
        finally:
            for fd in child_fds:
                os.close(fd)
        streams = {out_r: "stdout", err_r: "stderr", res_r: "results", setup_r: "setup"}
        try:
            self._zygote_says(b"pid")
            poller = select.poll()
            for fd in (*streams, self.zygote.fileno()):
                poller.register(fd, select.POLLIN)
            exited = False
            while not exited:
                deadline = start + wall_s
                if call_limits is not None and outcome.result_lines:
                    call = len(outcome.result_lines) - 1  # the first line is the load line
                    if call < len(call_limits):
                        call_deadline = outcome.result_lines[-1] + call_limits[call]
                        if call_deadline < deadline:
                            deadline = call_deadline
                            outcome.timed_out_call = call
                        else:
                            outcome.timed_out_call = None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    outcome.timed_out = True
                    break
                for fd, _ in poller.poll(max(1, int(remaining * 1000))):
                    if fd == self.zygote.fileno():
                        exited = True
                    else:
                        self._read(fd, streams, poller, outcome, keep_bytes)
                if outcome.stdout_total > keep_bytes + 16 * MIB or outcome.stderr_total > keep_bytes + 16 * MIB:
                    outcome.output_exceeded = True
                    break
                if outcome.results_exceeded:
                    break
            if not outcome.timed_out:
                outcome.timed_out_call = None
            outcome.duration_s = time.monotonic() - start
            self.kill_uid()
            self.remove_ipc_objects()
            self.remove_keys()
            status = self._zygote_says(b"status")
            if os.WIFEXITED(status):
                outcome.exit_code = os.WEXITSTATUS(status)
            elif os.WIFSIGNALED(status):
                outcome.signal = os.WTERMSIG(status)
            # Every writer is dead now, so the pipes reach EOF; still bound the drain.
            drain_deadline = time.monotonic() + DRAIN_SECONDS
            while streams and time.monotonic() < drain_deadline:
                for fd, _ in poller.poll(100):
                    if fd != self.zygote.fileno():
                        self._read(fd, streams, poller, outcome, keep_bytes)
                if not poller.poll(0):
                    break
            outcome.oom_killed = self._cgroup_oom() and outcome.signal == signal.SIGKILL and not outcome.timed_out
        finally:
            for fd in (out_r, err_r, res_r, setup_r):
                os.close(fd)
        return outcome

    @staticmethod
    def _read(fd, streams, poller, outcome: Outcome, keep_bytes: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not data:
            poller.unregister(fd)
            streams.pop(fd, None)
            return
        which = streams[fd]
        if which == "results":
            if len(outcome.results) + len(data) > MAX_RESULT_BYTES:
                outcome.results_exceeded = True
                return
            outcome.results += data
            now = time.monotonic()
            outcome.result_lines.extend([now] * data.count(b"\n"))
            return
        if which == "setup":
            outcome.setup += data[:MAX_SETUP_BYTES]
            return
        buf = outcome.stdout if which == "stdout" else outcome.stderr
        total = which + "_total"
        setattr(outcome, total, getattr(outcome, total) + len(data))
        room = keep_bytes - len(buf)
        if room > 0:
            buf += data[:room]

    # -- judge children ------------------------------------------------------------------------------------------
    def in_judge_child(self, function, args: tuple, limit_s: float):
        """Run `function(*args)` (trusted dataset code only) in a child of the supervisor as the judge uid, with
        limits; returns (its JSON-able result, '') or (None, why it failed)."""
        _ensure_dir(self.judge_dir, self.judge_uid)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                devnull = os.open(os.devnull, os.O_RDWR)
                for target in (0, 1, 2):
                    os.dup2(devnull, target)
                os.dup2(write_fd, 3)
                os.closerange(4, 65536)
                cpu = max(1, int(limit_s + 1))
                resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
                resource.setrlimit(resource.RLIMIT_AS, (JUDGE_MEMORY_MB * MIB, JUDGE_MEMORY_MB * MIB))
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
                if os.getuid() == 0:
                    os.setgroups([])
                    os.setgid(self.judge_uid)
                    os.setuid(self.judge_uid)
                os.chdir(self.judge_dir)
                data = json.dumps(function(*args)).encode()
                while data:
                    data = data[os.write(3, data):]
            finally:
                os._exit(0)
        os.close(write_fd)
        chunks, size, deadline, why = [], 0, time.monotonic() + limit_s, ""
        try:
            while True:
                remaining = deadline - time.monotonic()
                ready = select.select([read_fd], [], [], max(0.0, remaining))[0]
                if not ready:
                    why = f"took longer than {limit_s:g}s"
                    break
                chunk = os.read(read_fd, 1 << 20)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_RESULT_BYTES:
                    why = "answered more than the result limit"
                    break
                chunks.append(chunk)
        finally:
            os.close(read_fd)
            self.kill_uid(self.judge_uid)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass  # kill_uid's reap() collected it already (it had closed its output but not yet exited)
            _rmtree(self.judge_dir)
        if why:
            return None, why
        try:
            return json.loads(b"".join(chunks)), ""
        except ValueError:
            return None, "ended without an answer (crashed, or out of memory)"

    def recording(self, reference: str, tests: dict) -> dict:
        """The trusted recording of `reference` under `tests` (cached): see sandbox/judge/record.py."""
        key = blake2b(json.dumps([reference, tests], sort_keys=True).encode("utf-8", "surrogatepass"),
                              digest_size=16).hexdigest()
        found = self.recordings.get(key)
        if found is None:
            found, why = self.in_judge_child(record.record, (reference, tests), self.record_limit_s)
            if found is None:
                found = {"unreplayable": f"the recording of the reference solution {why}"}
            if not found.get("unreplayable"):
                try:
                    found["namespace"] = record.reference_namespace(reference)
                    found["names"] = record.program_names(tests, found["namespace"])[0]
                except BaseException as exc:  # noqa: BLE001
                    found = {"unreplayable": f"the reference solution does not load here: {exc!r}"[:500]}
            if len(self.recordings) >= RECORDINGS_KEPT:
                self.recordings.clear()
            self.recordings[key] = found
        return found

    def call_recording(self, reference: str, entry_point: str, inputs: list[str], not_none: bool, prelude: str = "",
                       instance_of: str = "") -> dict:
        """The reference's answers on call-test inputs (cached; decoded once): see record.record_calls."""
        digest = blake2b(f"{entry_point}\0{not_none}\0{instance_of}\0{prelude}\0{reference}".encode(
            "utf-8", "surrogatepass"), digest_size=16)
        for text in inputs:  # plain-data texts are ASCII JSON: no separator can occur inside one
            digest.update(b"\0" + text.encode("utf-8", "surrogatepass"))
        key = digest.hexdigest()
        found = self.recordings.get(key)
        if found is None:
            found, why = self.in_judge_child(record.record_calls, (reference, entry_point, inputs, not_none, prelude,
                                                                   instance_of), self.record_limit_s)
            if found is None:
                found = {"unreplayable": f"the recording of the reference solution {why}"}
            if not found.get("unreplayable"):
                found["expected"] = [None if text is None else plain.decode(text) for text in found["expected"]]
                found["raised"] = {int(k): v for k, v in found["raised"].items()}
            if len(self.recordings) >= RECORDINGS_KEPT:
                self.recordings.clear()
            self.recordings[key] = found
        return found

    # -- a whole request ---------------------------------------------------------------------------------------
    def traceable_program(self, code: str):
        """The judge's parse of a program to trace (NotTraceable if outside the subset); kept for the program's next
        inputs (jobs trace each program on several)."""
        program = self.programs.pop(code, None) or traceable.Program(code)
        self.programs[code] = program  # most recent last
        if len(self.programs) > PROGRAMS_KEPT:
            del self.programs[next(iter(self.programs))]
        return program

    def make_run_dir(self) -> str:
        # Always the same path (runs on a worker are sequential): HOME and TMPDIR are set once, at start.
        return _ensure_dir(self.run_dir, self.uid)

    def handle(self, request: dict) -> dict:
        start = time.monotonic()
        run_dir = self.make_run_dir()
        try:
            result = Request(self, request, run_dir).run()
        except BaseException:
            self.kill_uid()  # every execute() kills after itself; this covers a failure in between
            raise
        finally:
            try:
                os.rmdir(run_dir)  # the common case: the program left nothing behind
            except OSError:
                _rmtree(run_dir)
        result["duration_s"] = time.monotonic() - start
        result["request_id"] = request.get("request_id", "")
        return result


def _clear_keyrings() -> None:
    import ctypes  # only in the short-lived child that clears: the zygote must stay small

    syscall, number = ctypes.CDLL(None, use_errno=True).syscall, KEYCTL_SYSCALL.get(os.uname().machine)
    for keyring in (KEY_SPEC_SESSION_KEYRING, KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING):
        if number is not None:
            syscall(number, KEYCTL_CLEAR, keyring)


def _keys_of(uid: int) -> int:
    """How many kernel keys `uid` owns (/proc/key-users; 0 when it has none or the file is missing)."""
    try:
        text = _read_small("/proc/key-users")
    except OSError:
        return 0
    prefix = f"{uid}:".encode()
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == prefix and len(fields) > 2:
            return int(fields[2].split(b"/")[0])
    return 0


def _ensure_dir(path: str, owner: int) -> str:
    """A fresh, empty directory owned by `owner`."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        _rmtree(path)
        os.mkdir(path, 0o700)
    if os.getuid() == 0:
        os.chown(path, owner, owner)
    return path


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _read_small(path: str) -> bytes:
    """Read a small file with raw syscalls: no Python file objects (each run's allocations cost page faults)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


def _write_small(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _rmtree(path: str) -> None:
    import shutil  # imported lazily: every module the zygote holds makes each fork slower

    shutil.rmtree(path, ignore_errors=True)


def _which(name: str, default: str) -> str:
    for directory in CHILD_ENV["PATH"].split(":"):
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return default


def _live_pids_of_uid(uid: int) -> list[int]:
    """Pids whose real uid is `uid` and that are not zombies (dead, waiting to be reaped)."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            fd = os.open(f"/proc/{entry}/status", os.O_RDONLY)
        except OSError:
            continue
        try:
            status = os.read(fd, 2048)
        except OSError:
            continue
        finally:
            os.close(fd)
        state = status.partition(b"State:")[2].split(None, 1)[:1]
        uids = status.partition(b"\nUid:")[2].split(None, 1)[:1]
        if uids and int(uids[0]) == uid and state != [b"Z"]:
            found.append(int(entry))
    return found


def _ending(o: Outcome) -> str:
    """How the process ended: "exit code N" or "killed by SIGNAME"."""
    return f"exit code {o.exit_code}" if o.signal is None else f"killed by {_signal_name(o.signal)}"


def _signal_name(sig: int | None) -> str:
    try:
        return signal.Signals(sig).name
    except (ValueError, TypeError):
        return str(sig)


class Request:
    """Turns one request dict into executions and a result dict."""

    def __init__(self, worker: Worker, request: dict, run_dir: str):
        self.w, self.req, self.run_dir = worker, request, run_dir
        self.limits = request["limits"]
        self.keep = self.limits["output_bytes"]
        self.lang = request["language"]
        self.tests = request.get("tests")

    # -- building blocks -------------------------------------------------------------------------------------
    def _result(self, status: str, outcome: Outcome | None = None, tests=None, error: str = "",
                judged_by: str = JUDGED_OUTSIDE, note: str = "") -> dict:
        result = {"status": status, "passed": status == "passed", "exit_code": None, "signal": None, "stdout": "",
                  "stderr": "", "truncated": False, "tests": tests or [], "error": error, "judged_by": judged_by,
                  "judge_note": note}
        if outcome is not None:
            result.update(exit_code=outcome.exit_code, signal=outcome.signal,
                          stdout=outcome.text("stdout", self.keep), stderr=outcome.text("stderr", self.keep),
                          truncated=outcome.stdout_total > self.keep or outcome.stderr_total > self.keep)
        return result

    def _abnormal(self, o: Outcome) -> tuple[str, str] | None:
        """Status and reason for an execution that ended abnormally, or None."""
        if o.setup:
            return "sandbox-error", "sandbox: " + bytes(o.setup).decode("utf-8", "replace")
        if o.timed_out:
            if o.timed_out_call is not None:
                return "timeout", f"call {o.timed_out_call} exceeded its time limit"
            return "timeout", f"wall-clock limit of {self.limits['wall_time_s']}s exceeded"
        if o.output_exceeded:
            return "runtime-error", "output limit exceeded"
        if o.results_exceeded:
            return "runtime-error", f"answers larger than {MAX_RESULT_BYTES // MIB} MiB"
        if o.signal == signal.SIGXCPU or (o.signal == signal.SIGKILL and not o.oom_killed and self._cpu_exhausted(o)):
            return "timeout", f"CPU-time limit of {self.limits['cpu_time_s']}s exceeded"
        if o.oom_killed:
            return "memory", f"memory limit of {self.limits['memory_mb']} MiB exceeded"
        err = bytes(o.stderr[-4096:])
        if (b"MemoryError" in err or b"bad_alloc" in err or b"heap out of memory" in err
                or b"Cannot allocate memory" in err):
            return "memory", f"memory limit of {self.limits['memory_mb']} MiB exceeded"
        if o.signal == signal.SIGXFSZ:
            return "runtime-error", f"file size limit of {self.limits['file_size_mb']} MiB exceeded"
        return None

    def _cpu_exhausted(self, o: Outcome) -> bool:
        return o.duration_s >= self.limits["cpu_time_s"] * 0.9

    def _compile_cpp(self, sources: dict[str, str]) -> tuple[str | None, dict | None]:
        """Compile and link `sources` ({file name: text}, in link order) into one executable."""
        paths = []
        for name, text in sources.items():
            paths.append(os.path.join(self.run_dir, name))
            self._write_source(paths[-1], text)
        binary = os.path.join(self.run_dir, "solution")
        o = self.w.execute(stdin=b"", limits=self.limits, keep_bytes=self.keep,
                           argv=[_which("g++", "/usr/bin/g++"), *CPP_FLAGS, "-o", binary, *paths],
                           wall_s=self.limits["compile_time_s"], cpu_s=self.limits["compile_time_s"],
                           memory_mb=max(self.limits["memory_mb"], 2048))
        if o.setup:
            return None, self._result("sandbox-error", o, error="sandbox: " + o.text("setup", 2000))
        if o.timed_out:
            return None, self._result("compile-error", o,
                                      error=f"compilation exceeded {self.limits['compile_time_s']}s")
        if o.exit_code != 0:
            return None, self._result("compile-error", o, error="g++ failed: " + o.text("stderr", 2000))
        return binary, None

    def _write_source(self, path: str, source: str) -> None:
        with open(path, "w") as f:
            f.write(source)
        if os.getuid() == 0:
            os.chown(path, self.w.uid, self.w.uid)

    def _program(self, source: str) -> tuple[dict, dict | None]:
        """How to run `source` with no tests: execute() arguments, or an error result (compile-error)."""
        if self.lang == "python":
            prelude = (self.tests or {}).get("prelude") or ""
            return {"payload": {"mode": "program", "code": source, "prelude": prelude}}, None
        if self.lang == "cpp":
            binary, error = self._compile_cpp({"solution.cpp": source})
            return {"argv": [binary]}, error
        path = os.path.join(self.run_dir, "tests.js" if self.tests and self.tests["kind"] != "stdio" else "solution.js")
        self._write_source(path, source)
        # V8 reserves far more address space than it uses: bound its heap and rely on the cgroup, not RLIMIT_AS.
        node = _which("node", "/usr/bin/node")
        argv = [node, f"--max-old-space-size={self.limits['memory_mb']}", "--stack-size=8192", path]
        return {"argv": argv, "memory_as": False}, None

    # -- the shapes of request -----------------------------------------------------------------------------------
    def run(self) -> dict:
        if self.req.get("trace") is not None:
            return self._run_traced()
        if self.tests is None:
            return self._run_plain()
        if self.tests["kind"] == "stdio":
            return self._run_stdio()
        if self.lang != "python":
            return self._run_appended_tests()
        if self.tests["kind"] == "calls":
            return self._run_call_tests()
        reference = self.tests.get("reference_solution")
        if reference and self.tests.get("strict_return_types", True):
            return self._run_replayed(reference)
        why = "no reference solution to record the tests with" if not reference else "strict_return_types is off"
        return self._run_test_code(why)

    def _run_plain(self) -> dict:
        how, error = self._program(self.req["code"])
        if error:
            return error
        o = self.w.execute(stdin=self.req.get("stdin", "").encode(), limits=self.limits, keep_bytes=self.keep, **how)
        abnormal = self._abnormal(o)
        if abnormal:
            return self._result(abnormal[0], o, error=abnormal[1])
        if o.exit_code == 0:
            return self._result("passed", o)
        return self._result("runtime-error", o, error=_ending(o))

    def _run_traced(self) -> dict:
        """Trace mode: refuse a program outside the traceable subset, run it under the tracer, read the trace strictly
        and check it against our own parse of the program (sandbox/judge/traceable.py)."""
        spec, code = self.req["trace"], self.req["code"]
        if sys.version_info[:2] != (3, 11):  # what the tracer relies on of frames and f_locals changed in 3.13
            return self._result("sandbox-error", error="sandbox: trace mode needs CPython 3.11 in the isolation, not "
                                f"{sys.version.split()[0]}")
        try:
            program = self.w.traceable_program(code)
        except traceable.NotTraceable as exc:
            return self._result("compile-error", error=f"not traceable: {exc}")
        except (RecursionError, MemoryError):
            return self._result("compile-error", error="not traceable: the program is nested too deeply to parse")
        payload = {"mode": "trace", "code": code, "modules": traceable.MODULES, "builtins": traceable.BUILTINS,
                   "call": [spec["entry_point"], spec["args"] or '["l"]'] if spec["entry_point"] else None,
                   "max_steps": spec["max_steps"], "max_value_chars": spec["max_value_chars"],
                   "max_trace_bytes": spec["max_trace_bytes"]}
        o = self.w.execute(stdin=self.req.get("stdin", "").encode(), limits=self.limits, keep_bytes=self.keep,
                           payload=payload)
        abnormal = self._abnormal(o)
        # A child that did not end cleanly (killed, out of memory, the tracer broken by the program's doing) keeps
        # its complete steps; a malformed trace from one that did is the tracer's failure.
        cut = abnormal is not None or o.exit_code != 0 or o.signal is not None
        try:
            trace = traceable.parse_events(bytes(o.results), program, max_steps=spec["max_steps"],
                                           max_value_chars=spec["max_value_chars"], cut=cut)
        except traceable.BadTrace as exc:
            return self._result("sandbox-error", o, error=f"sandbox: the trace is malformed: {exc}")
        if abnormal:
            result = self._result(abnormal[0], o, error=abnormal[1])
        elif o.exit_code == 0:
            result = self._result("passed", o)
        else:
            result = self._result("runtime-error", o, error=trace["detail"] or _ending(o))
        result["trace"] = trace
        return result

    def _run_stdio(self) -> dict:
        """Each case runs in a child that never held an expected output; outputs are compared here."""
        how, error = self._program(self.req["code"])
        if error:
            return error
        cases, tol = self.tests["cases"], self.tests["float_tolerance"]
        verdicts, last, first_bad = [], None, None
        for index, case in enumerate(cases):
            if first_bad is not None and self.tests["stop_on_first_failure"]:
                verdicts.append({"index": index, "name": f"case {index}", "passed": False, "status": "skipped",
                                 "error": "skipped after a failure", "duration_s": 0.0})
                continue
            keep = max(self.keep, 2 * len(case["output"].encode()) + 1024)
            o = last = self.w.execute(stdin=case["input"].encode(), limits=self.limits, keep_bytes=keep, **how)
            actual = o.text("stdout", keep)
            abnormal = self._abnormal(o)
            if abnormal:
                status, err = abnormal
            elif o.exit_code != 0 or o.signal is not None:
                status = "runtime-error"
                err = _ending(o) + ": " + o.text("stderr", 1000)[-1000:]
            elif o.stdout_total > keep or not compare.outputs_match(actual, case["output"], tol):
                status, err = "failed", "wrong answer"
            else:
                status, err = "passed", ""
            verdicts.append({"index": index, "name": f"case {index}", "passed": status == "passed", "status": status,
                             "error": err, "duration_s": o.duration_s, "expected": case["output"][:1000],
                             "actual": actual[:1000]})
            if status != "passed" and first_bad is None:
                first_bad = verdicts[-1]
        return self._result(_overall(verdicts), last, verdicts, error=first_bad["error"] if first_bad else "")

    def _test_names(self) -> list[str]:
        if self.tests["kind"] == "function":
            return ["check"]
        if self.tests["kind"] == "calls":
            return [name for name, _ in self._groups()]
        return [a.strip()[:200] for a in self.tests["assertions"]]

    def _groups(self) -> list[tuple[str, int]]:
        return [tuple(g) for g in self.tests["groups"]] or [("inputs", len(self.tests["inputs"]))]

    def _call_limits(self, times: list[list[float]]) -> tuple[list[float] | None, float | None]:
        """Per-call limits and the whole run's (EvalPlus: max(floor, factor x reference time) per call; per test
        min(wall, their sum) + 1 s), or (None, None) for one wall-clock limit."""
        floor = self.limits.get("call_time_floor_s")
        if floor is None:
            return None, None
        factor = self.limits.get("call_time_factor", 4.0)
        per_test = [[max(floor, factor * t) for t in ts] for ts in times]
        return [limit for limits in per_test for limit in limits], sum(min(self.limits["wall_time_s"], sum(limits))
                                                                         + 1.0 for limits in per_test)

    def _run_call_tests(self) -> dict:
        """Call tests: the candidate answers each input; answers are compared here with the recorded ones. Each test
        (EvalPlus's base, plus) is recorded apart: one the reference cannot answer is failed as "cannot judge" alone."""
        tests, entry = self.tests, self.tests["entry_point"]
        spans, first = [], 0
        for _, size in self._groups():
            spans.append((first, first + size))
            first += size
        recordings = []  # per test: {"expected", "raised" (by index in the test), "times"} or {"unreplayable": why}
        for begin, end in spans:
            if tests.get("expected") is not None:  # checked by the schema
                recordings.append({"expected": [plain.decode(t) for t in tests["expected"][begin:end]], "raised": {},
                                   "times": [0.0] * (end - begin), "unreplayable": ""})
            else:
                recordings.append(self.w.call_recording(tests["reference_solution"], entry, tests["inputs"][begin:end],
                                                        tests["oracle"] == "not-none", tests.get("prelude") or "",
                                                        tests.get("instance_of") or ""))
        judgeable = [not r.get("unreplayable") for r in recordings]
        plan = [[[entry, text, '["d"]'] for text in tests["inputs"][begin:end]] if ok else []
                for (begin, end), ok in zip(spans, judgeable)]
        o = None
        if any(judgeable):
            call_limits, wall_s = self._call_limits([r["times"] if ok else [] for r, ok in zip(recordings, judgeable)])
            o = self.w.execute(stdin=b"", limits=self.limits, keep_bytes=self.keep, wall_s=wall_s, cpu_s=wall_s,
                               payload={"mode": "calls", "code": self.req["code"],
                                        "calls": [c for p in plan for c in p],
                                        "prelude": tests.get("prelude") or "",
                                        "instance_of": tests.get("instance_of") or "",
                                        "numbers_as_plain": tests["oracle"] in ("lcb", "apps")},
                               call_limits=call_limits)
            if o.setup:
                return self._result("sandbox-error", o, error="sandbox: " + o.text("setup", 2000))
        try:  # the answers are the program's: reading and judging them is bounded in time
            return _judging(self._judge_calls, o, plan, spans, recordings, limit_s=self._judging_limit())
        except record.ReplayFailure as exc:
            return self._failed_tests(exc.status, str(exc), o)

    def _judge_calls(self, o: Outcome | None, plan: list[list], spans: list, recordings: list[dict]) -> dict:
        tests, names = self.tests, self._test_names()
        loaded, answers, durations = self._answers(o, plan) if o is not None else (None, None, None)
        if loaded is not None:
            verdicts = [{"index": i, "name": n, "passed": False, "status": loaded[0], "error": "not run",
                         "duration_s": 0.0} for i, n in enumerate(names)]
            return self._result(loaded[0], o, verdicts, error=loaded[1], judged_by=JUDGED_BY_REPLAY)
        verdicts, notes = [], []
        for index, (name, (begin, end), recording) in enumerate(zip(names, spans, recordings)):
            if recording.get("unreplayable"):
                status, error = "failed", "cannot judge: " + recording["unreplayable"]
                notes.append(f"{name}: {error}")
            else:
                status, error = _judge_answers(answers[index], tests["inputs"][begin:end], recording["expected"],
                                               recording["raised"], begin, tests["atol"], tests["oracle"])
            verdicts.append({"index": index, "name": name, "passed": status == "passed", "status": status,
                             "error": error, "duration_s": durations[index] if durations else 0.0})
        first_bad = next((v for v in verdicts if not v["passed"]), None)
        return self._result(_overall(verdicts), o, verdicts, error=first_bad["error"] if first_bad else "",
                            judged_by=JUDGED_BY_REPLAY, note="; ".join(notes))

    def _failed_tests(self, status: str, why: str, o: Outcome | None = None) -> dict:
        """Every test failed with `status` for the same reason (judged by replay)."""
        verdicts = [{"index": i, "name": n, "passed": False, "status": status, "error": why, "duration_s": 0.0}
                    for i, n in enumerate(self._test_names())]
        return self._result(status, o, verdicts, error=why, judged_by=JUDGED_BY_REPLAY)

    def _judging_limit(self) -> float:
        return max(10.0, self.limits["wall_time_s"])

    def _run_replayed(self, reference: str) -> dict:
        """Record once (trusted), run the candidate on the recorded calls, replay the tests on its answers."""
        recording = self.w.recording(reference, self.tests)
        if recording.get("unreplayable"):
            return self._run_test_code(recording["unreplayable"])
        plan = [list(calls) for calls in recording["calls"]]
        times = [list(t) for t in recording["times"]]
        for _ in range(self.w.replay_rounds):
            flat = [call for calls in plan for call in calls]
            call_limits, wall_s = self._call_limits(times)
            o = self.w.execute(stdin=b"", limits=self.limits, keep_bytes=self.keep, wall_s=wall_s, cpu_s=wall_s,
                               payload={"mode": "calls", "code": self.req["code"], "calls": flat},
                               call_limits=call_limits)
            if o.setup:
                return self._result("sandbox-error", o, error="sandbox: " + o.text("setup", 2000))
            try:  # the answers are the program's: reading and judging them is bounded in time
                result, diverged = _judging(self._judge_replay, o, plan, recording, limit_s=self._judging_limit())
            except record.ReplayFailure as exc:
                return self._failed_tests(exc.status, str(exc), o)
            if result is not None:
                return result
            for test, (index, call) in diverged.items():  # record again with the call the tests made instead
                plan[test] = plan[test][:index] + [call] + plan[test][index + 1:]
                times[test] = times[test][:index] + [0.0] + times[test][index + 1:]
        # A deterministic program settles within a few rounds; answers that keep changing the tests' calls are the
        # program's doing (never a reason to judge it in its own process).
        return self._failed_tests("failed", f"the program's answers kept changing the calls the tests make "
                                  f"({self.w.replay_rounds} runs)", o)

    def _judge_replay(self, o: Outcome, plan: list[list], recording: dict) -> tuple[dict | None, dict]:
        """(the result, {}) when this run's answers settle the tests, or (None, the calls that diverged)."""
        loaded, answers, durations = self._answers(o, plan)
        if loaded is not None:  # the program did not load: nothing was called
            verdicts = [{"index": i, "name": n, "passed": False, "status": loaded[0], "error": "not run",
                         "duration_s": 0.0} for i, n in enumerate(self._test_names())]
            return self._result(loaded[0], o, verdicts, error=loaded[1], judged_by=JUDGED_BY_REPLAY), {}
        outcomes, diverged = replay.replay(self.tests, recording["namespace"], recording["names"], plan, answers)
        if diverged:
            return None, diverged
        verdicts = [{"index": i, "name": n, **outcome, "duration_s": durations[i]}
                    for i, (n, outcome) in enumerate(zip(self._test_names(), outcomes))]
        first_bad = next((v for v in verdicts if not v["passed"]), None)
        return self._result(_overall(verdicts), o, verdicts, error=first_bad["error"] if first_bad else "",
                            judged_by=JUDGED_BY_REPLAY), {}

    def _answers(self, o: Outcome, plan: list[list]):
        """(load failure or None, answers per test (replay.Answer), seconds per test) from the child's lines, read
        strictly: a line that is not the next expected answer ends the answers (the rest are missing)."""
        fate = self._abnormal(o)
        lines = bytes(o.results).split(b"\n")
        complete = len(o.result_lines)
        if complete:
            head = _strict_json(lines[0])
            if head != ["load", "ok"]:
                if (type(head) is list and len(head) == 3 and head[0] == "load"
                        and head[1] in ("compile-error", "runtime-error") and type(head[2]) is str and not fate):
                    return (head[1], head[2][:2000]), None, None
                complete, fate = 0, fate or ("runtime-error", "the program wrote on the judge's descriptor")
        elif not fate:
            fate = ("runtime-error", f"the program ended before it was loaded ({_ending(o)}) "
                    f"{o.text('stderr', self.keep)[-500:]}".strip())
        answers, durations, index, previous = [], [], 0, o.start
        for test, calls in enumerate(plan):
            row, spent = [], 0.0
            for _ in calls:
                answer = None
                if index + 1 < complete:
                    answer = _parse_answer(lines[index + 1], index)
                    if answer is None:
                        complete = index + 1
                        fate = fate or ("runtime-error",
                                        f"the program wrote on the judge's descriptor (line {index + 2})")
                    else:
                        ended = o.result_lines[index + 1]
                        spent += ended - max(previous, o.result_lines[0])
                        previous = ended
                if answer is None:
                    status, error = fate or ("runtime-error", f"the program ended before answering ({_ending(o)})")
                    if o.timed_out_call is not None and index > o.timed_out_call:
                        status, error = "timeout", "not run: an earlier call exceeded its time limit"
                    answer = replay.Answer(missing=True, status=status, error=error)
                row.append(answer)
                index += 1
            answers.append(row)
            durations.append(round(spent, 6))
        return None, answers, durations

    def _run_test_code(self, why: str) -> dict:
        """Test-code mode: the program and the tests in one process (forgeable by a program written against it)."""
        key = os.urandom(16).hex()
        o = self.w.execute(stdin=b"", limits=self.limits, keep_bytes=self.keep,
                           payload={"mode": "testcode", "code": self.req["code"], "tests": self.tests, "key": key})
        return self._from_verdict_events(o, self._test_names(), token=key, authenticated=True, note=why)

    def _run_appended_tests(self) -> dict:
        """C++/JavaScript tests in their own language (test-code mode, see sandbox/inside/languages.py): completing
        them writes "done" with the run's token, which the process reads from descriptor 5 before the program runs."""
        code, tests = self.req["code"], self.tests
        token = os.urandom(languages.TOKEN_BYTES // 2).hex().encode()
        note = f"{self.lang} tests in their own language"
        if self.lang == "cpp":
            declarations = tests.get("declarations") or ""
            program, unit = languages.cpp_sources(code, tests["test_code"], declarations)
            if declarations:
                # tests first: its .preinit_array entry runs first
                sources = {"tests.cpp": unit, "solution.cpp": program}
            else:
                sources = {"solution.cpp": program + "\n" + unit}
                note += "; one translation unit (no declarations given): the program's macros reach the tests"
            binary, error = self._compile_cpp(sources)
            if error:
                return error
            how = {"argv": [binary]}
        else:
            program, module = languages.js_sources(code, tests)
            self._write_source(os.path.join(self.run_dir, "solution.js"), program)
            how, _ = self._program(module)
        o = self.w.execute(stdin=b"", limits=self.limits, keep_bytes=self.keep, payload=token, **how)
        return self._from_verdict_events(o, self._test_names(), token=token.decode(), note=note)

    def _from_verdict_events(self, o: Outcome, names: list[str], token: str, authenticated: bool = False,
                             note: str = "") -> dict:
        events = _parse_verdict(bytes(o.results), token, authenticated)
        by_index, done, load_error, compile_error = {}, False, None, None
        for ev in events:
            kind = ev.get("ev")
            if kind == "test" and isinstance(ev.get("index"), int):
                by_index[ev["index"]] = ev
            elif kind == "done":
                done = True
            elif kind == "load-error":
                load_error = ev
            elif kind == "compile-error":
                compile_error = ev
        mode = {"judged_by": JUDGED_BY_TEST_CODE, "note": note}
        abnormal = self._abnormal(o)
        if abnormal and abnormal[0] == "sandbox-error":
            return self._result(*abnormal[:1], o, error=abnormal[1], **mode)
        if compile_error:
            return self._result("compile-error", o, error=str(compile_error.get("error", ""))[:2000], **mode)
        verdicts = []
        for index, name in enumerate(names):
            ev = by_index.get(index)
            if ev is not None:
                status = ev.get("status") if ev.get("status") in STATUS_OF_TEST else "failed"
                passed = bool(ev.get("passed")) and status == "passed"
                verdicts.append({"index": index, "name": name, "passed": passed, "status": status,
                                 "error": str(ev.get("error", ""))[:2000],
                                 "duration_s": float(ev.get("duration_s", 0.0) or 0.0)})
            else:
                status = abnormal[0] if abnormal else (load_error or {}).get("status", "runtime-error")
                if status not in STATUS_OF_TEST:
                    status = "runtime-error"
                verdicts.append({"index": index, "name": name, "passed": False, "status": status,
                                 "error": "not run", "duration_s": 0.0})
        if abnormal and not done:
            return self._result(abnormal[0], o, verdicts, error=abnormal[1], **mode)
        if load_error:
            status = load_error.get("status", "runtime-error")
            return self._result(status if status in STATUS_OF_TEST else "runtime-error", o, verdicts,
                                error=str(load_error.get("error", ""))[:2000], **mode)
        if not done:
            tail = o.text("stderr", self.keep)[-1000:]
            return self._result("runtime-error", o, verdicts,
                                error=f"program ended before the tests completed ({_ending(o)}) {tail}".strip(), **mode)
        first_bad = next((v for v in verdicts if not v["passed"]), None)
        return self._result(_overall(verdicts), o, verdicts, error=first_bad["error"] if first_bad else "", **mode)


def _judge_answers(answers: list, inputs: list[str], expected: list, raised: dict, offset: int, atol: float,
                   oracle: str) -> tuple[str, str]:
    """(status, error) of one test of call tests: its inputs in order, stopping at the first wrong answer. `raised`:
    the inputs (by index in this test) on which the reference raised; `offset`: the test's first input, for messages."""
    for i, (answer, text, want) in enumerate(zip(answers, inputs, expected)):
        where = f"input {offset + i} {text[:200]}"
        if answer.missing:
            return answer.status, f"{where}: {answer.error}"
        reference_raised = raised.get(i)
        if reference_raised is not None:  # the right answer is to raise the same exception
            if answer.exception is None or answer.exception[0] != reference_raised.split(":", 1)[0]:
                return "failed", f"{where}: expected {reference_raised}"
            continue
        if answer.exception is not None:
            return "runtime-error", f"{where}: {answer.exception[0]}: {answer.exception[1]}"[:2000]
        out = compare.NOT_PLAIN if answer.not_plain else answer.value
        args = plain.decode(text) if oracle in compare.ORACLES_READING_ARGUMENTS else None
        ok, atol = compare.answer_matches(out, want, args, atol, oracle)
        if not ok:
            got = f"a {answer.not_plain}, not plain data" if answer.not_plain else repr(out)[:300]
            return "failed", f"{where}: expected {repr(want)[:300]}, got {got}"
    return "passed", ""


def _strict_json(line: bytes):
    """The JSON value of one line the program wrote, or None. Decimal ints are bounded (huge ones cross as hex:
    parsing a long decimal int takes quadratic time), nesting too (RecursionError)."""
    sys.set_int_max_str_digits(plain.MAX_DECIMAL_DIGITS)
    try:
        return json.loads(line)
    except (ValueError, RecursionError, MemoryError):
        return None
    finally:
        sys.set_int_max_str_digits(0)


def _parse_answer(line: bytes, index: int):
    """The `replay.Answer` in one answer line for call `index`, or None when the line is anything else."""
    item = _strict_json(line)
    if type(item) is not list or len(item) < 3 or item[0] != index or type(item[0]) is not int:
        return None
    kind = item[1]
    try:
        if kind == "r" and len(item) == 4:
            value = plain.untag(item[2])
            after = None if item[3] is None else plain.untag(item[3])
            if after is not None and type(after) is not list:
                return None
            return replay.Answer(value=value, after=after)
        if kind == "x" and len(item) == 4 and type(item[2]) is str and type(item[3]) is str:
            return replay.Answer(exception=(item[2][:200], item[3][:2000]))
        if kind == "n" and len(item) == 3 and type(item[2]) is str:
            return replay.Answer(not_plain=item[2][:200] or "?")
    except plain.NotPlain:
        return None
    return None


def _judging(function, *args, limit_s: float):
    """Run the replay in this process with a wall-clock alarm: a test that the candidate's answers send into a long
    computation fails with a timeout instead of stalling the worker (the alarm repeats until the replay returns)."""
    def on_alarm(signum, frame):
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        raise record.ReplayFailure("timeout", f"judging the answers took longer than {limit_s:g}s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        return function(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _overall(verdicts: list[dict]) -> str:
    statuses = {v["status"] for v in verdicts}
    if statuses <= {"passed"}:
        return "passed"
    if "sandbox-error" in statuses:  # the infrastructure failed: say so, so that callers retry
        return "sandbox-error"
    for status in TEST_STATUS_ORDER:
        if status in statuses:
            return status
    return "failed"


def _parse_verdict(data: bytes, token: str, authenticated: bool = False) -> list[dict]:
    """Events from the verdict channel. Each line starts with the run's token (C++/JavaScript) or, when
    `authenticated` (the Python test-code harness), with the line's MAC under the token as key; other lines are
    ignored."""
    events = []
    key = token.encode()
    for raw in data.splitlines():
        head, _, body = raw.partition(b" ")
        if not token or head != (testcode.mac(key, body).encode() if authenticated else key):
            continue
        body = body.decode("utf-8", "replace")
        try:
            event = json.loads(body)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


# --------------------------------------------------------------------------------------------- the job channel


class Channel:
    """Length-prefixed JSON frames over a pair of file descriptors."""

    def __init__(self, rfd: int, wfd: int):
        self.rfd, self.wfd = rfd, wfd

    def _read_exact(self, n: int) -> bytes | None:
        chunks, got = [], 0
        while got < n:
            chunk = os.read(self.rfd, n - got)
            if not chunk:
                return None
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def recv(self):
        header = self._read_exact(4)
        if header is None:
            return None
        body = self._read_exact(struct.unpack(">I", header)[0])
        return None if body is None else json.loads(body)

    def send(self, obj) -> None:
        body = json.dumps(obj).encode()
        data = struct.pack(">I", len(body)) + body
        while data:
            n = os.write(self.wfd, data)
            data = data[n:]


def _import_random_without_reseed_at_fork() -> None:
    """Preload `random` without the hook by which it reseeds itself from /dev/urandom in every forked child (~45
    page faults, 0.08 ms a run). Every run then starts from the same seeded state: programs that use `random`
    behave the same on every run, as hash randomisation is off (PYTHONHASHSEED=0)."""
    register = os.register_at_fork
    os.register_at_fork = lambda **hooks: None
    try:
        import random
    finally:
        os.register_at_fork = register
    random.seed(0)


def load_judge() -> None:
    """The judge's modules: loaded after the zygote started, so no candidate's process ever holds them."""
    global compare, record, replay, traceable
    compare = load_isolated("judge/compare.py")
    traceable = load_isolated("judge/traceable.py")
    record = load_isolated("judge/record.py", plain=plain)
    replay = load_isolated("judge/replay.py", plain=plain, record=record)


def _parse_args(argv: list[str]) -> dict:
    """--uid N --judge-uid M --record-limit-s S --replay-rounds R [--cgroup DIR] [--root DIR] [--socket PATH] (no
    argparse: it would weigh on every fork)."""
    args = {"uid": None, "judge-uid": None, "record-limit-s": None, "replay-rounds": None, "cgroup": None,
            "root": "/tmp", "socket": None}
    it = iter(argv)
    for flag in it:
        key = flag.lstrip("-")
        if key not in args:
            raise SystemExit(f"worker.py: unknown option {flag}")
        args[key] = next(it, None)
    if None in (args["uid"], args["judge-uid"], args["record-limit-s"], args["replay-rounds"]):
        raise SystemExit("worker.py: --uid, --judge-uid, --record-limit-s and --replay-rounds are required")
    args["uid"], args["judge-uid"] = int(args["uid"]), int(args["judge-uid"])
    args["record-limit-s"], args["replay-rounds"] = float(args["record-limit-s"]), int(args["replay-rounds"])
    return args


def main(argv: list[str]) -> int:
    args = _parse_args(argv)
    if args["socket"]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(args["socket"])
        rfd = wfd = os.dup(sock.fileno())
        sock.close()
    else:
        rfd, wfd = os.dup(0), os.dup(1)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
    os.umask(0o022)
    # Python ignores SIGPIPE and SIGXFSZ; children must get the default actions (ignored stays ignored over exec).
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    os.environ.clear()  # once here, so that children inherit only CHILD_ENV
    os.environ.update(CHILD_ENV)
    worker = Worker(args["uid"], args["judge-uid"], args["cgroup"], args["root"], args["record-limit-s"],
                    args["replay-rounds"])
    os.environ["HOME"] = os.environ["TMPDIR"] = worker.run_dir
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    _import_random_without_reseed_at_fork()
    devnull = os.open(os.devnull, os.O_WRONLY)
    child.warm_up(devnull)
    testcode.warm_up(devnull)
    os.close(devnull)
    worker.start_zygote(close_fds=tuple(sorted({rfd, wfd})))
    load_judge()
    channel = Channel(rfd, wfd)
    channel.send({"ready": True, "uid": os.getuid(), "run_uid": args["uid"], "pid": os.getpid(),
                  "cgroup": bool(args["cgroup"]), "python": sys.version.split()[0]})
    while True:
        try:
            job = channel.recv()
        except OSError as exc:
            if exc.errno in (errno.EBADF, errno.ECONNRESET):
                return 0
            raise
        if job is None:
            return 0
        try:
            result = worker.handle(job)
        except ZygoteGone:
            return 1  # without an answer: the pool restarts this worker and runs the request again
        except Exception as exc:  # noqa: BLE001 - report as a sandbox failure, keep serving
            result = {"status": "sandbox-error", "passed": False, "error": f"worker error: {exc!r}", "tests": []}
        channel.send(result)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
