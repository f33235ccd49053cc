"""Per-problem time limits: EvalPlus's rule over the reference solutions' measured runtimes.

    from raylib.evaluate.limits import time_limit
    limit = time_limit(reference_s=0.02, floor_s=1.0, factor=4.0, default_s=10.0)     # 1.0 (EvalPlus's rule)
"""

from __future__ import annotations

from sandbox.schema import ExecResult

__all__ = ["CALL_TESTS_CAP_S", "reference_seconds", "time_limit"]

CALL_TESTS_CAP_S = 60.0  # EvalPlus's cap on one run's wall time (its EVALPLUS_TIMEOUT_PER_TASK)


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
