"""What the sandbox is asked and what a result row records (pure, no Ray).

    from raylib.evaluate.requests import build_request, result_row
    request = build_request(problem, sample.program, limit_s=1.0, memory_mb=1024)
    row = result_row(sample, sandbox.run(request), limit_s=1.0)          # one results.jsonl row
"""

from __future__ import annotations

from raylib.data.problems import Problem
from raylib.data.samples import Sample
from raylib.evaluate.limits import CALL_TESTS_CAP_S
from sandbox.schema import INFRA_STATUS, CallTests, ExecRequest, ExecResult, Limits, StdioTests

__all__ = ["GENERATION_ERROR_STATUS", "HEAD_FIELDS", "INFRA_STATUS", "build_request", "result_row", "row_key"]

GENERATION_ERROR_STATUS = "generation-error"  # the model produced no answer (e.g. its prompt was too long): a failure
_KEPT_OUTPUT = 2000  # characters of stdout/stderr kept per result row
_KEPT_CASE = 500  # characters of a failed stdin/stdout case's expected and actual output kept


def build_request(problem: Problem, program: str, limit_s: float, memory_mb: int, request_id: str = "",
                  call_floor_s: float = 1.0, call_factor: float = 4.0) -> ExecRequest:
    """The sandbox request that runs `program` against `problem`'s tests under a `limit_s` wall/CPU limit.

    Call tests are limited per call instead: judged against a reference (HumanEval+/MBPP+), as EvalPlus does:
    max(`call_floor_s`, `call_factor` x the reference's time on that input), and each test (base, plus) min(60 s,
    their sum) + 1 s; with given answers (LeetCode style), `limit_s` per call."""
    cases = len(problem.tests.cases) if isinstance(problem.tests, StdioTests) else 1
    if isinstance(problem.tests, CallTests):
        floor = call_floor_s if problem.tests.expected is None else limit_s
        limits = Limits(wall_time_s=CALL_TESTS_CAP_S, cpu_time_s=CALL_TESTS_CAP_S, memory_mb=memory_mb,
                        call_time_floor_s=floor, call_time_factor=call_factor)
        return ExecRequest(language=problem.language, code=program, tests=problem.tests, limits=limits,
                           request_id=request_id)
    limits = Limits(wall_time_s=limit_s, cpu_time_s=limit_s, memory_mb=memory_mb,
                    output_bytes=65536 if cases == 1 else 1 << 20)
    return ExecRequest(language=problem.language, code=program, tests=problem.tests, limits=limits,
                       request_id=request_id)


def row_key(task_id: str, sample_id: int, sha: str) -> tuple[str, int, str]:
    return task_id, int(sample_id), sha


def result_row(sample: Sample, result: ExecResult, limit_s: float) -> dict:
    """One results.jsonl row: who (task, sample, program hash), the verdict, per-test details, timings, the program."""
    return {
        "task_id": sample.task_id, "sample_id": sample.sample_id, "program_sha": sample.sha,
        "passed": result.passed, "status": result.status, "error": result.error, "judged_by": result.judged_by,
        "tests": [_test_row(t) for t in result.tests],
        "duration_s": round(result.duration_s, 6), "time_limit_s": limit_s, "exit_code": result.exit_code,
        "stdout": result.stdout[:_KEPT_OUTPUT], "stderr": result.stderr[-_KEPT_OUTPUT:], "program": sample.program,
    }


def _test_row(verdict) -> dict:
    """One test's verdict in a results row; a failed stdin/stdout case keeps (the start of) what was expected and what
    the program printed, for feedback and reflection data."""
    row = {"name": verdict.name, "passed": verdict.passed, "status": verdict.status, "error": verdict.error[:500],
           "duration_s": round(verdict.duration_s, 6)}
    if not verdict.passed and verdict.expected is not None:
        row.update(expected=verdict.expected[:_KEPT_CASE],
                   actual=None if verdict.actual is None else verdict.actual[:_KEPT_CASE])
    return row


# what bookkeeping, pass@k and the judging-mode counts need of a row
HEAD_FIELDS = ("task_id", "sample_id", "program_sha", "passed", "status", "judged_by")
