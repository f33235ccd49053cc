"""Per-problem time limits: EvalPlus's rule over the reference solutions' measured runtimes (pure, no Ray).

    from raylib.evaluate.limits import TimeLimits, ReferenceTimes, time_limit
    limit = time_limit(reference_s=0.02, floor_s=1.0, factor=4.0, default_s=10.0)     # 1.0 (EvalPlus's rule)
    cache = ReferenceTimes("out/reference_times.json")     # measured runtimes, kept across runs
    todo = cache.to_time(problems, used, TimeLimits())      # the references still to time
    limits = cache.limits(problems, used, TimeLimits())     # {task_id: seconds}

Call tests are not timed here. Those judged against a reference (HumanEval+, MBPP+): the sandbox limits each call by
the reference's own time on that input, and a whole run by CALL_TESTS_CAP_S. Those with given answers (LeetCode-style
LiveCodeBench / TACO problems): each call gets the problem's limit (the dataset's, else `default_s`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field

from raylib.config import Section
from raylib.files import write_json
from sandbox.schema import INFRA_STATUS, CallTests, ExecResult

__all__ = ["CALL_TESTS_CAP_S", "ReferenceTimes", "TimeLimits", "reference_seconds", "time_limit"]


class TimeLimits(Section):
    """How each problem's time limit is set."""

    floor_s: float = Field(1.0, gt=0, description="Smallest per-execution limit, seconds (EvalPlus: 1).")
    factor: float = Field(4.0, ge=1, description="Limit = max(floor, factor x the reference solution's runtime) "
                          "(EvalPlus: 4).")
    default_s: float = Field(10.0, gt=0, description="Limit for problems without a timed reference solution or "
                             "dataset limit.")
    from_reference: bool = Field(True, description="Time each problem's reference solution once (cached in "
                                 "reference_times.json).")
    reference_on: Literal["auto", "driver", "cluster"] = Field(
        "auto", description="Where references are timed: driver (in this process, while the cluster starts), "
        "cluster (the execution actor pool), auto (driver for up to 2,000 executions when it has a sandbox, else "
        "cluster).")

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


class ReferenceTimes:
    """The measured reference runtimes of an output directory (reference_times.json): {task_id: seconds or None
    (the reference failed its own tests)}. A reference is timed once; later runs of the directory reuse it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.times: dict[str, float | None] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def to_time(self, problems: dict, used: set[str], settings: TimeLimits) -> list[str]:
        """The used tasks whose reference should be timed and is not yet."""
        if not settings.from_reference:
            return []
        return [t for t in sorted(used) if t not in self.times and problems[t].reference_solution
                and not isinstance(problems[t].tests, CallTests)]

    def record(self, results: dict[str, ExecResult]) -> list[str]:
        """Add timed references ({task_id: ExecResult}) and save; returns a warning per reference that fails its own
        tests. Results whose sandbox failed are left out (timed again next run)."""
        warnings = []
        for task_id, result in results.items():
            if result.status == INFRA_STATUS:
                continue
            self.times[task_id] = reference_seconds(result)
            if self.times[task_id] is None:
                warnings.append(f"{task_id}: reference solution does not pass its tests ({result.status}: "
                                f"{result.error[:100]}); using the default limit")
        write_json(self.path, dict(sorted(self.times.items())))
        return warnings

    def limits(self, problems: dict, used: set[str], settings: TimeLimits) -> dict[str, float]:
        """{task_id: per-execution limit} for the used tasks (call tests judged against a reference: CALL_TESTS_CAP_S
        per run; with given answers: per call)."""
        return {t: CALL_TESTS_CAP_S if _reference_judged_calls(problems[t].tests)
                else time_limit(self.times.get(t), settings.floor_s, settings.factor, settings.default_s,
                                problems[t].time_limit_s) for t in used}


def _reference_judged_calls(tests) -> bool:
    return isinstance(tests, CallTests) and tests.expected is None
