"""What isolation this host offers, and the bubblewrap command line that builds it.

`detect_isolation()` probes once (a real `bwrap` run, a memory-cgroup mkdir, the uid) and returns an
`IsolationReport`; `sandbox.pool.Sandbox` refuses to start without isolation unless the caller sets
`unsafe_allow_unisolated=True`.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import os
import shutil
import subprocess
import sys

SANDBOX_DIR = os.path.dirname(os.path.abspath(__file__))
WORKER_MOUNT = "/opt/codeloop/sandbox"
WORKER_SCRIPT = "inside/worker.py"  # relative to the sandbox directory
CGROUP_MOUNT = "/sys/fs/cgroup/codeloop"
# The environment a worker starts with (it scrubs its own before any program runs). LD_BIND_NOW: resolve every
# symbol at start; lazy binding would write the GOT (a copy-on-write fault) in each forked child.
WORKER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LD_BIND_NOW": "1"}
# Capabilities the worker keeps inside bwrap: switch to the run uid, kill it, clean up its files. (Not
# CAP_SYS_RESOURCE: bubblewrap 0.8 then keeps every capability.)
WORKER_CAPS = ("SETUID", "SETGID", "KILL", "DAC_OVERRIDE", "FOWNER", "CHOWN")  # Docker's spelling; bwrap's: CAP_X
# The worker's judging budget, decided here and passed on its command line (the host's timeouts depend on it).
RECORD_LIMIT_S = 120.0  # a reference solution under its own tests (once per problem and worker)
REPLAY_ROUNDS = 8  # recordings extended by calls that depend on the candidate's answers, then test-code mode


@dataclasses.dataclass
class IsolationReport:
    backend: str  # "bwrap", "docker" or "unsafe-process"
    level: str  # "full", "partial" or "none"
    namespaces: bool  # mount/pid/net/ipc/uts namespaces
    uid_separation: bool  # runs as a distinct non-root uid per worker
    memory_cgroup: bool  # aggregate memory limit per run
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def label(self) -> str:
        parts = [self.backend]
        if self.uid_separation:
            parts.append("uid")
        if self.memory_cgroup:
            parts.append("cgroup")
        return "+".join(parts)

    def describe(self) -> str:
        text = f"sandbox isolation: {self.level} ({self.label})"
        return text + ("; " + "; ".join(self.notes) if self.notes else "")


@dataclasses.dataclass(frozen=True)
class Interpreter:
    """The CPython that runs workers and, in-process, the Python programs."""

    executable: str
    prefix: str  # its installation directory (bound read-only into the sandbox)
    version: str


@functools.lru_cache(maxsize=None)
def _probe(executable: str) -> Interpreter | None:
    try:
        out = subprocess.run([executable, "-I", "-S", "-c",
                              "import sys; print(sys.base_prefix); print(sys.version.split()[0])"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2:
        return None
    return Interpreter(os.path.realpath(executable), os.path.realpath(lines[0]), lines[1])


def _version_key(interpreter: Interpreter) -> tuple[int, ...]:
    return tuple(int(part) for part in interpreter.version.split(".")[:2] if part.isdigit())


def host_interpreter() -> Interpreter:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidate = os.path.join(os.path.realpath(sys.base_prefix), "bin", version)
    executable = candidate if os.path.exists(candidate) else os.path.realpath(sys.executable)
    return Interpreter(executable, os.path.realpath(sys.base_prefix), sys.version.split()[0])


@functools.lru_cache(maxsize=None)
def find_interpreter(preference: str = "host") -> Interpreter:
    """Resolve SandboxConfig.python: "host" (this interpreter), a path, or "newest": the newest CPython >= 3.12
    installed here (pyenv or system), else this one."""
    if preference == "host":
        return host_interpreter()
    if preference != "newest":
        found = _probe(preference)
        if found is None:
            raise ValueError(f"sandbox python {preference!r} is not a runnable CPython")
        return found
    candidates = set(glob.glob(os.path.join(os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv")), "versions",
                                            "3.*", "bin", "python3.[1-9]*")))
    for name in ("python3.14", "python3.13", "python3.12"):
        path = shutil.which(name, path="/usr/local/bin:/usr/bin")
        if path:
            candidates.add(path)
    found = [i for i in (_probe(c) for c in sorted(candidates) if not c.endswith("-config")) if i is not None]
    found = [i for i in found if (3, 12) <= _version_key(i) < (4, 0)]
    if not found:
        return host_interpreter()
    return max(found, key=_version_key)


def bwrap_argv(uid: int, judge_uid: int, cgroup_dir: str | None, tmp_size_mb: int,
               interpreter: Interpreter | None = None) -> list[str]:
    """The bwrap command that starts one worker: read-only system dirs, nothing of /root, /home or the project
    except the worker code, private /tmp, new pid/net/ipc/uts/cgroup namespaces, minimal capabilities."""
    interpreter = interpreter or host_interpreter()
    argv = ["bwrap", "--ro-bind", "/usr", "/usr"]
    # Directories bwrap creates for mount points default to 0700: open them so the run uid can traverse.
    prefix = interpreter.prefix
    parents = {"/etc", "/etc/ssl", os.path.dirname(WORKER_MOUNT)}
    if not prefix.startswith("/usr/"):
        parent = os.path.dirname(prefix)
        while parent not in ("/", ""):
            parents.add(parent)
            parent = os.path.dirname(parent)
    for path in sorted(parents):
        argv += ["--perms", "0755", "--dir", path]
    for top in ("bin", "lib", "lib64", "lib32", "sbin"):
        path = "/" + top
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    if not prefix.startswith("/usr/"):
        argv += ["--ro-bind", prefix, prefix]
    for path in ("/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
                 "/etc/ssl/openssl.cnf"):
        argv += ["--ro-bind-try", path, path]
    argv += ["--ro-bind", SANDBOX_DIR, WORKER_MOUNT]
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(tmp_size_mb * 1024 * 1024), "--tmpfs", "/tmp"]
    argv += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    argv += ["--hostname", "sandbox", "--die-with-parent", "--new-session", "--clearenv"]
    for name, value in WORKER_ENV.items():
        argv += ["--setenv", name, value]
    if os.getuid() == 0:
        argv += ["--cap-drop", "ALL"]
        for cap in WORKER_CAPS:
            argv += ["--cap-add", f"CAP_{cap}"]
    if cgroup_dir:
        argv += ["--bind", cgroup_dir, CGROUP_MOUNT]
    return argv + worker_command(interpreter.executable, f"{WORKER_MOUNT}/{WORKER_SCRIPT}", uid, judge_uid, "/tmp",
                                 cgroup=CGROUP_MOUNT if cgroup_dir else None)


def worker_command(python: str, script: str, uid: int, judge_uid: int, root: str, cgroup: str | None = None,
                   socket: str | None = None) -> list[str]:
    """The command line that starts `inside/worker.py` (under bwrap, in a container or unisolated)."""
    argv = [python, "-I", "-S", "-B", script, "--uid", str(uid), "--judge-uid", str(judge_uid), "--root", root,
            "--record-limit-s", str(RECORD_LIMIT_S), "--replay-rounds", str(REPLAY_ROUNDS)]
    if cgroup:
        argv += ["--cgroup", cgroup]
    if socket:
        argv += ["--socket", socket]
    return argv


def memory_cgroup_root() -> str | None:
    """This process's memory cgroup directory if we may create children in it (v1 or v2), else None."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            base = os.path.join("/sys/fs/cgroup/memory", path.lstrip("/"))
            if os.path.exists(os.path.join(base, "memory.limit_in_bytes")):
                return base if os.access(base, os.W_OK) else None
    for line in lines:  # cgroup v2: unified hierarchy
        if line.startswith("0::"):
            base = os.path.join("/sys/fs/cgroup", line[3:].lstrip("/"))
            try:
                with open(os.path.join(base, "cgroup.subtree_control")) as f:
                    if "memory" in f.read().split() and os.access(base, os.W_OK):
                        return base
            except OSError:
                return None
    return None


@functools.lru_cache(maxsize=1)
def _bwrap_works() -> tuple[bool, str]:
    if shutil.which("bwrap") is None:
        return False, "bubblewrap (bwrap) is not installed (apt-get install bubblewrap)"
    interpreter = host_interpreter()
    argv = bwrap_argv(60999, 60998, None, 16, interpreter)
    argv = argv[: argv.index(interpreter.executable)] + [interpreter.executable, "-I", "-S", "-c",
                                                         "import os; print(os.getuid())"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap failed to start: {exc}"
    if proc.returncode != 0:
        return False, f"bwrap failed: {proc.stderr.strip()[:300]}"
    return True, ""


def docker_client():
    """A client of the local Docker engine (what the docker backend runs its containers with)."""
    import docker  # lazy: only the docker backend needs docker-py

    return docker.from_env(timeout=120)


def image_exists(image: str) -> bool:
    """Whether the Docker engine has `image` (built offline by sandbox/docker/build_image.sh)."""
    import docker

    try:
        docker_client().images.get(image)
        return True
    except docker.errors.DockerException:
        return False


def _docker_report(image: str) -> IsolationReport:
    try:
        docker_client().ping()
    except Exception as exc:  # noqa: BLE001 - no engine, no docker-py, no permission: all mean "not available"
        return IsolationReport("docker", "none", False, False, False,
                               [f"no Docker engine reachable ({exc}); run sandbox/docker/ensure_docker.sh"])
    if not image_exists(image):
        return IsolationReport("docker", "none", False, False, False,
                               [f"image {image} is missing; build it with sandbox/docker/build_image.sh"])
    return IsolationReport("docker", "full", True, True, True,
                           ["one container per worker: own read-only root, network none, memory and pid limits"])


def detect_isolation(backend: str = "auto", docker_image: str = "codeloop-sandbox:1") -> IsolationReport:
    """Probe the host. backend "auto" picks bwrap when it works, else reports no isolation."""
    root = os.getuid() == 0
    cgroup = memory_cgroup_root() is not None
    if backend in ("auto", "bwrap"):
        ok, why = _bwrap_works()
        if ok:
            notes = []
            if not root:
                notes.append("not root: all runs share this uid (no per-worker uid, no uid-wide kill)")
            if not cgroup:
                notes.append("no writable memory cgroup: memory is bounded per process (RLIMIT_AS) only")
            level = "full" if (root and cgroup) else "partial"
            return IsolationReport("bwrap", level, True, root, cgroup, notes)
        if backend == "bwrap":
            return IsolationReport("bwrap", "none", False, False, False, [why])
        return IsolationReport("unsafe-process", "none", False, root, cgroup, [why])
    if backend == "docker":
        return _docker_report(docker_image)
    return IsolationReport("unsafe-process", "none", False, root, cgroup, ["isolation disabled by configuration"])
