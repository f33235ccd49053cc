"""codeloop's execution sandbox: run untrusted, model-written programs fast, isolated, with unforgeable verdicts.

    from sandbox import run, ExecRequest, FunctionTests
    result = run(ExecRequest(language="python", code=program,
                             tests=FunctionTests(test_code=humaneval_test, entry_point="add")))
    result.status, result.passed, result.tests

`run(request)` / `run_batch(requests)` use one process-wide `Sandbox` (a pool of pre-started workers, one per CPU);
build your own `Sandbox(SandboxConfig(...))` to choose the backend and size. `python -m sandbox.server` serves the
same over HTTP.

What it protects against (each has an attack test in tests/test_sandbox_attacks.py):
  - escaping the time limits (infinite loops, sleeping, blocking on stdin): wall-clock and CPU limits, then every
    process of the run's uid is killed - also children that called setsid or double-forked;
  - exhausting the host: fork bombs (RLIMIT_NPROC on a distinct non-root uid per worker), memory bombs in one or
    many processes (RLIMIT_AS plus a per-run memory cgroup), disk fills (RLIMIT_FSIZE, a size-capped private
    tmpfs), output floods (bounded buffers; the run is stopped past a cap);
  - reading secrets: programs see a read-only system (/usr), the interpreter and nothing of /root, /home, the
    project or the host's environment variables; they write only to their own fresh working directory;
  - the network: a new, empty network namespace (no loopback services of the host, no outside);
  - other processes: new pid/ipc/uts namespaces; the worker is root-owned, the program is not, so it cannot signal,
    trace or read the worker (or its parent on the host);
  - forging a Python verdict: verdicts travel on a channel separate from stdout/stderr/exit status, each line
    tagged with a MAC of its content under a per-run key (a program that dup2s its own pipe over the channel
    learns nothing it can reuse); early exits (sys.exit, os._exit, atexit), printed "PASSED" lines and
    always-equal objects fail (returned values must be plain data; subclasses of plain types pass only when they
    change no comparison or content method, as namedtuples and the stdlib's unpatched Counter do) - also when returned by lambdas, exec-made functions, partials, callable objects or
    helpers the tests call, and after the program patched the builtins or the `json` module (the harness has its
    own builtins and serialiser and is not importable from the program); program names that shadow builtins
    (`def abs`) and made-up modules never reach the tests.

What it does not protect against:
  - a program written to target this harness specifically (introspecting the test harness's own memory in its
    process to learn the nonce, or patching stdlib modules the tests import): Python function and assertion tests
    run in the program's process, as in every HumanEval/MBPP harness. stdin/stdout verdicts are computed outside
    the program's process and are not affected;
  - C++ and JavaScript function/assertion tests run in the program's process with their completion token in the
    program's own source and memory: a program written to find it can forge a pass (stdin/stdout tests cannot be
    forged this way);
  - instances of the program's own classes that assertion tests construct themselves (MBPP's `Pair(1, 2)`) compare
    by the program's rules: only what functions return is held to plain data;
  - kernel exploits (the isolation is namespaces + rlimits + cgroups on a shared kernel: for hostile multi-tenant
    use put the workers in VMs, e.g. the docker backend on gVisor/Kata);
  - CPU contention between workers and timing side channels.
"""

from __future__ import annotations

import atexit
import threading

from sandbox.isolation import IsolationReport, detect_isolation
from sandbox.pool import IsolationError, Sandbox, SandboxConfig
from sandbox.schema import (
    STATUSES,
    AssertionTests,
    CallTests,
    ExecRequest,
    ExecResult,
    FunctionTests,
    Limits,
    StdioCase,
    StdioTests,
    TestVerdict,
)

__all__ = [
    "STATUSES", "AssertionTests", "CallTests", "ExecRequest", "ExecResult", "FunctionTests", "IsolationError", "IsolationReport",
    "Limits", "Sandbox", "SandboxConfig", "StdioCase", "StdioTests", "TestVerdict", "default_sandbox",
    "detect_isolation", "run", "run_batch",
]

_default: Sandbox | None = None
_default_lock = threading.Lock()


def default_sandbox() -> Sandbox:
    """The process-wide sandbox used by `run`/`run_batch` (started on first use, closed at exit)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Sandbox(SandboxConfig())
            atexit.register(_default.close)
        return _default


def run(request: ExecRequest | dict) -> ExecResult:
    """Run one program (and its tests) in the sandbox. The one entry point; see ExecRequest/ExecResult."""
    return default_sandbox().run(request)


def run_batch(requests) -> list[ExecResult]:
    """Run many requests in parallel; results in request order."""
    return default_sandbox().run_batch(requests)
