"""Evaluation building blocks (pure, no Ray): sandbox requests, time limits, result rows and the resumable results file.

    from raylib.evaluation import ResultsFile, build_request, result_row, time_limit
    limit = time_limit(reference_s=0.02, floor_s=1.0, factor=4.0, default_s=10.0)     # 1.0 (EvalPlus's rule)
    request = build_request(problem, sample.program, limit, memory_mb=1024)
    store = ResultsFile("out/results.jsonl")      # reads what an earlier (maybe killed) run wrote
    todo = [s for s in samples if store.key_of(s) not in store.done]

A result's key is (task_id, sample_id, program hash): a re-run with the same output directory skips every key already
evaluated, re-evaluates a sample whose program changed, and never writes a key twice. Rows whose status is
"sandbox-error" (the infrastructure failed, not the program) are not done: the next run evaluates them again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from raylib.problems import Problem
from raylib.samples import Sample
from sandbox.schema import INFRA_STATUS, CallTests, ExecRequest, ExecResult, Limits, StdioTests

__all__ = ["GENERATION_ERROR_STATUS", "INFRA_STATUS", "ResultsFile", "build_request", "read_appended_lines", "reference_seconds", "rewrite_lines", "result_row", "row_key", "time_limit"]

GENERATION_ERROR_STATUS = "generation-error"  # the model produced no answer (e.g. its prompt was too long): a failure
_KEPT_OUTPUT = 2000  # characters of stdout/stderr kept per result row


def time_limit(reference_s: float | None, floor_s: float, factor: float, default_s: float,
               dataset_limit_s: float | None = None) -> float:
    """Per-execution time limit of a problem: max(floor, factor x reference runtime) when the reference solution was
    timed (as EvalPlus does), else the dataset's own limit, else `default_s`."""
    if reference_s is not None:
        return round(max(floor_s, factor * reference_s), 3)
    return dataset_limit_s if dataset_limit_s is not None else default_s


def reference_seconds(result: ExecResult) -> float | None:
    """The runtime a reference solution's run sets limits by: the slowest single execution (one stdio case, or the
    whole function-test run); None when the reference did not pass (its time says nothing)."""
    if not result.passed:
        return None
    durations = [t.duration_s for t in result.tests] if result.tests and all(t.duration_s for t in result.tests) else []
    return max(durations) if durations else result.duration_s


CALL_TESTS_CAP_S = 60.0  # EvalPlus's cap on one run's wall time (its EVALPLUS_TIMEOUT_PER_TASK)


def build_request(problem: Problem, program: str, limit_s: float, memory_mb: int, request_id: str = "",
                  call_floor_s: float = 1.0, call_factor: float = 4.0) -> ExecRequest:
    """The sandbox request that runs `program` against `problem`'s tests under a `limit_s` wall/CPU limit.

    Call tests (HumanEval+/MBPP+) are limited per call instead, as EvalPlus does: max(`call_floor_s`,
    `call_factor` x the reference's time on that input), and each test (base, plus) min(60 s, their sum) + 1 s."""
    cases = len(problem.tests.cases) if isinstance(problem.tests, StdioTests) else 1
    if isinstance(problem.tests, CallTests):
        limits = Limits(wall_time_s=CALL_TESTS_CAP_S, cpu_time_s=CALL_TESTS_CAP_S, memory_mb=memory_mb,
                        call_time_floor_s=call_floor_s, call_time_factor=call_factor)
        return ExecRequest(language=problem.language, code=program, tests=problem.tests, limits=limits,
                           request_id=request_id)
    limits = Limits(wall_time_s=limit_s, cpu_time_s=limit_s, memory_mb=memory_mb,
                    output_bytes=65536 if cases == 1 else 1 << 20)
    return ExecRequest(language=problem.language, code=program, tests=problem.tests, limits=limits, request_id=request_id)


def row_key(task_id: str, sample_id: int, sha: str) -> tuple[str, int, str]:
    return task_id, int(sample_id), sha


def result_row(sample: Sample, result: ExecResult, limit_s: float) -> dict:
    """One results.jsonl row: who (task, sample, program hash), the verdict, per-test details, timings, the program."""
    return {
        "task_id": sample.task_id, "sample_id": sample.sample_id, "program_sha": sample.sha,
        "passed": result.passed, "status": result.status, "error": result.error, "judged_by": result.judged_by,
        "tests": [{"name": t.name, "passed": t.passed, "status": t.status, "error": t.error[:500],
                   "duration_s": round(t.duration_s, 6)} for t in result.tests],
        "duration_s": round(result.duration_s, 6), "time_limit_s": limit_s, "exit_code": result.exit_code,
        "stdout": result.stdout[:_KEPT_OUTPUT], "stderr": result.stderr[-_KEPT_OUTPUT:], "program": sample.program,
    }


def read_appended_lines(path: Path) -> list[str]:
    """The complete lines of a JSONL file that a killed process may have been appending to; a torn last line
    (no newline yet) is cut off the file. Missing file: no lines."""
    if not path.exists():
        return []
    data = path.read_bytes()
    good = data.rfind(b"\n") + 1  # everything after the last newline is a torn write
    if good < len(data):
        with open(path, "r+b") as f:
            f.truncate(good)
    return data[:good].decode("utf-8").split("\n")[:-1]  # not splitlines(): rows may hold U+2028


def rewrite_lines(path: Path, lines: list[str]) -> None:
    """Replace a JSONL file with `lines` atomically (temporary file, fsync, rename): a kill leaves the old file or
    the new one."""
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# what bookkeeping, pass@k and the judging-mode counts need of a row
HEAD_FIELDS = ("task_id", "sample_id", "program_sha", "passed", "status", "judged_by")


def _head(row: dict) -> dict:
    """The HEAD_FIELDS of a row (`judged_by` may be absent: rows written before it existed)."""
    return {**{f: row[f] for f in HEAD_FIELDS if f != "judged_by"}, "judged_by": row.get("judged_by", "")}


class ResultsFile:
    """results.jsonl, written incrementally and resumable after a crash or kill at any point.

    Rows are appended (one write + flush per batch) as results arrive. On open, rows from an earlier run are read
    back; a torn last line (the process died mid-write) is cut off. `finalize` rewrites the file once, atomically, in
    sample order with one row per current sample; rows of samples no longer in the sample file move aside.
    Rows are kept as their JSON text plus a small head (HEAD_FIELDS): the driver never re-parses whole rows.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: dict[tuple, dict] = {}  # key -> head
        self._lines: dict[tuple, str] = {}  # key -> the row's JSON text
        self._done: set[tuple] = set()
        self.stale_rows = 0  # rows `finalize` moved to results.stale.jsonl
        self._read_back()
        self._file = open(self.path, "a", encoding="utf-8")

    def _read_back(self) -> None:
        for line in read_appended_lines(self.path):
            try:
                row = json.loads(line)
                head = _head(row)
                key = row_key(row["task_id"], row["sample_id"], row["program_sha"])
            except (ValueError, KeyError, TypeError):
                continue  # unreadable (hand-edited?) rows are re-evaluated, not trusted
            self.rows[key], self._lines[key] = head, line
            if head["status"] != INFRA_STATUS:
                self._done.add(key)

    @property
    def done(self) -> set[tuple]:
        """Keys evaluated for good (infrastructure failures excluded); a copy: take it once, not per sample."""
        return set(self._done)

    @staticmethod
    def key_of(sample: Sample) -> tuple:
        return row_key(sample.task_id, sample.sample_id, sample.sha)

    def append(self, rows: list[dict], lines: list[str] | None = None) -> int:
        """Append rows whose key is not already done; returns how many were written.

        Args:
            rows: result rows, or just their heads (HEAD_FIELDS) when `lines` holds the rows' JSON text.
            lines: the rows as JSON text (one per row), written as they are.
        """
        if lines is None:
            lines = [json.dumps(r, ensure_ascii=False) for r in rows]
        fresh = []
        for row, line in zip(rows, lines):
            key = row_key(row["task_id"], row["sample_id"], row["program_sha"])
            if key in self._done:
                continue  # a retried task may deliver a row twice: count it once
            if row["status"] != INFRA_STATUS:
                self._done.add(key)
            self.rows[key] = _head(row)
            self._lines[key] = line
            fresh.append(line)
        if fresh:
            self._file.write("".join(line + "\n" for line in fresh))
            self._file.flush()
        return len(fresh)

    def finalize(self, samples: list[Sample], problem_order: dict[str, int]) -> list[dict]:
        """Rewrite the file with exactly one row per sample that has one, in (problem, sample_id) order; returns
        their heads (HEAD_FIELDS) in that order. Rows of samples not in `samples` (the sample file changed) move to
        results.stale.jsonl beside it, never deleted."""
        self._file.close()
        ordered = sorted(samples, key=lambda s: (problem_order.get(s.task_id, 1 << 30), s.task_id, s.sample_id))
        keys = [k for k in map(self.key_of, ordered) if k in self.rows]
        stale = self.rows.keys() - set(keys)
        self.stale_rows = len(stale)
        if stale:
            with open(self.path.with_name(self.path.stem + ".stale.jsonl"), "a", encoding="utf-8") as f:
                f.write("".join(self._lines[k] + "\n" for k in sorted(stale, key=str)))
                f.flush()
                os.fsync(f.fileno())
        rewrite_lines(self.path, [self._lines[k] for k in keys])
        self._file = open(self.path, "a", encoding="utf-8")
        return [self.rows[k] for k in keys]

    def close(self) -> None:
        self._file.close()
