"""codeloop's execution sandbox: run untrusted, model-written programs fast, isolated, with unforgeable verdicts.

    from sandbox import run, ExecRequest, FunctionTests
    result = run(ExecRequest(language="python", code=program,
                             tests=FunctionTests(test_code=humaneval_test, entry_point="add", reference_solution=ref)))
    result.status, result.passed, result.tests

`run(request)` / `run_batch(requests)` use one process-wide `Sandbox` (a pool of pre-started workers, one per CPU);
build your own `Sandbox(SandboxConfig(...))` to choose the backend and size. `python -m sandbox.server` serves the
same over HTTP.

The trust boundary shows in the tree: sandbox/inside/ runs in the isolation (the worker, candidates' processes),
sandbox/judge/ decides verdicts in processes no candidate runs in. How each kind of test is judged (`ExecResult.
judged_by`):
  - "replay" - Python function/assertion tests with a `reference_solution`, and call tests (HumanEval+/MBPP+): a
    trusted run of the reference records the calls the tests make; the program's process receives only those
    arguments and answers with plain data (sandbox/inside/plain.py); the dataset's tests then run again in the
    worker's own process on those answers. What the program never holds - the tests, the expected values, the
    reference, the comparison - it cannot reach, whatever it does to its own interpreter (frames, gc, trace and
    profile hooks, finalizers, threads, patched modules or builtins): the most it can do is answer, as its function
    would. Helpers the tests call come from the reference, `random` is seeded the same in recording and replay, and
    tests whose later calls depend on the program's answers are recorded again with them (or, past a bound, judged
    in test-code mode, which the result says);
  - "outside" - stdin/stdout tests (each case in a child that never received an expected output; compared by the
    worker) and plain runs (the exit status);
  - "test-code" - Python tests without a reference solution, tests that reach the program other than through
    plain-data calls (its classes, its constants), and C++/JavaScript tests in their own language: the program and
    the tests share a process, as in the openai harness. Its guards stop programs not written against the harness
    (early exits, printed verdicts, always-equal objects, patched builtins/json); a program written against it CAN
    forge a pass. summary.json counts these samples apart and says so.

What it protects against (each has an attack test in tests/test_sandbox_attacks.py or tests/test_sandbox_forgery.py):
  - escaping the time limits (infinite loops, sleeping, blocking on stdin): wall-clock and CPU limits (per call in
    replay mode when asked, as EvalPlus does), then every process of the run's uid is killed - also children that
    called setsid or double-forked;
  - exhausting the host: fork bombs (RLIMIT_NPROC on a distinct non-root uid per worker), memory bombs in one or
    many processes (RLIMIT_AS plus a memory cgroup for the run), disk fills (RLIMIT_FSIZE, a size-capped private
    tmpfs), output floods (bounded buffers; the run is stopped past a cap);
  - reading secrets: programs see a read-only system (/usr), the interpreter and nothing of /root, /home, the
    project or the host's environment variables; they write only to their own fresh working directory;
  - the network: a new, empty network namespace (no loopback services of the host, no outside);
  - other processes: new pid/ipc/uts namespaces; the worker and its judge children run as other uids than the
    program, so it cannot signal, trace or read them (or the worker's parent on the host);
  - one run reaching another: every candidate is forked from a zygote that never received a request, and gets its
    program and inputs on descriptors; no POSIX message queue can be made (RLIMIT_MSGQUEUE 0) and SysV IPC objects
    are removed after each run; the working directory is removed;
  - abstaining: "sandbox-error" (left out of pass@k, retried) comes only from a descriptor that is closed before the
    program runs; any exit code, signal or crash of the program is the program's result.

Trace mode (`ExecRequest.trace`) returns a program's line-level trace on the same descriptor as answers; the
program must stay in a subset of Python the worker checks before the run (sandbox/judge/traceable.py), in which it
has no name for the tracer, `os` or a file object, so it cannot write or alter trace events
(tests/test_sandbox_trace.py).

What it does not protect against:
  - forged passes in test-code mode (above);
  - in trace mode, a memory-safety bug of the interpreter reachable from the traceable subset;
  - instances of the program's own classes that assertion tests construct themselves (MBPP's `Pair(1, 2)`): such
    tests run in test-code mode;
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
    "STATUSES", "AssertionTests", "CallTests", "ExecRequest", "ExecResult", "FunctionTests", "IsolationError",
    "IsolationReport", "Limits", "Sandbox", "SandboxConfig", "StdioCase", "StdioTests", "TestVerdict",
    "default_sandbox", "detect_isolation", "run", "run_batch",
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
