"""Preference pairs the sandbox verifies, from an evaluation's results (jobs/evaluate.py's results.jsonl):
correctness pairs (a passing and a failing program of the same problem) and efficiency pairs (two passing programs
whose runtimes, measured again in the sandbox several times, differ by a configured factor).

    from raylib.synth.execution_pairs import correctness_pairs, timing_samples, efficiency_pairs, read_results
    rows = read_results("runs/eval")                                # results.jsonl rows by task
    pairs = correctness_pairs(rows, problems, max_pairs=4, seed=0)
    samples, programs = timing_samples(rows, max_programs=6, repeats=5, seed=0)   # evaluate these again
    pairs, unstable = efficiency_pairs(programs, timing_rows, problems, factor=2.0, min_gap_s=0.005, max_pairs=4,
                                       seed=0)         # unstable: ["task#sample", ...] whose repeats did not all pass

A program's runtime in one run is the sum of its tests' measured durations (the run's whole duration when its tests
carry none). An efficiency pair needs every repeat of the slower program to take at least `factor` times the
longest repeat of the faster one, and `min_gap_s` more: noise alone cannot make a pair. Pure.
"""

from __future__ import annotations

import hashlib
import itertools
import statistics
from pathlib import Path

from raylib.data.problems import Problem
from raylib.data.samples import Sample
from raylib.evaluate.requests import GENERATION_ERROR_STATUS
from raylib.files import DataError, read_records
from raylib.synth.pairs import OBJECTIVE_CRITERIA, make_pair
from sandbox.schema import INFRA_STATUS

__all__ = ["correctness_pairs", "efficiency_pairs", "read_results", "runtime_of", "timing_samples"]

_ROW_FIELDS = ("task_id", "sample_id", "program_sha", "passed", "status", "program")


def read_results(results: str | Path) -> dict[str, list[dict]]:
    """An evaluation's results rows by task, in file order, without sandbox failures and generation errors (they say
    nothing about the program). `results`: results.jsonl or its directory.

    Raises:
        DataError: no such file, a row lacking a field (names file, line, field), or no usable row.
    """
    path = Path(results)
    if not path.exists():
        raise DataError(path, 0, "no such evaluation (expected jobs/evaluate.py's output directory or its "
                        "results.jsonl)")
    path = path / "results.jsonl" if path.is_dir() else path
    by_task: dict[str, list[dict]] = {}
    for line, row in read_records(path):
        missing = [f for f in _ROW_FIELDS if f not in row]
        if missing:
            raise DataError(path, line, f"results row lacks field(s) {missing} (expected a results.jsonl written by "
                            "jobs/evaluate.py)")
        if not isinstance(row["program"], str) or not isinstance(row["tests"] if "tests" in row else [], list):
            raise DataError(path, line, "field 'program' must be a string and 'tests' a list")
        if row["status"] in (INFRA_STATUS, GENERATION_ERROR_STATUS) or not row["program"].strip():
            continue
        by_task.setdefault(row["task_id"], []).append(row)
    if not by_task:
        raise DataError(path, 0, "no evaluated program in the file")
    return by_task


def _rank(seed: int, *parts) -> str:
    return hashlib.sha256(repr((seed, *parts)).encode()).hexdigest()


def _distinct(rows: list[dict], passed: bool) -> list[dict]:
    """The first row of each distinct program that `passed` (or not), leaving out programs whose rows disagree (a
    pass and a timeout under load): such a program is neither surely right nor surely wrong."""
    verdicts: dict[str, set[bool]] = {}
    for row in rows:
        verdicts.setdefault(row["program_sha"], set()).add(bool(row["passed"]))
    seen, out = set(), []
    for row in rows:
        sha = row["program_sha"]
        if verdicts[sha] == {passed} and sha not in seen:
            seen.add(sha)
            out.append(row)
    return out


def correctness_pairs(by_task: dict[str, list[dict]], problems: dict[str, Problem], *, max_pairs: int,
                      seed: int = 0, source: str = "") -> list[dict]:
    """Per problem, up to `max_pairs` (passing, failing) pairs of distinct programs, drawn by a seeded hash."""
    pairs = []
    for task, rows in by_task.items():
        combos = list(itertools.product(_distinct(rows, True), _distinct(rows, False)))
        combos.sort(key=lambda c: _rank(seed, task, c[0]["program_sha"], c[1]["program_sha"]))
        for good, bad in combos[:max_pairs]:
            provenance = {"method": "execution", "results": source, "chosen_sample": good["sample_id"],
                          "rejected_sample": bad["sample_id"], "rejected_status": bad["status"],
                          "rejected_error": str(bad.get("error", ""))[:300]}
            pairs.append(make_pair(task_id=task, instruction=problems[task].prompt,
                                   criteria=OBJECTIVE_CRITERIA["correctness"], chosen=good["program"],
                                   rejected=bad["program"], objective="correctness", provenance=provenance))
    return pairs


def timing_samples(by_task: dict[str, list[dict]], *, max_programs: int, repeats: int, seed: int = 0
                   ) -> tuple[list[Sample], dict[str, list[dict]]]:
    """(samples to evaluate again: `repeats` copies of each of up to `max_programs` distinct passing programs per
    problem, sample ids k * repeats + r; {task: those programs' rows}). Problems with fewer than two passing
    programs are left out."""
    samples, programs = [], {}
    for task, rows in by_task.items():
        chosen = sorted(_distinct(rows, True), key=lambda r: _rank(seed, task, r["program_sha"]))[:max_programs]
        if len(chosen) < 2:
            continue
        programs[task] = chosen
        samples += [Sample(task, k * repeats + r, row["program"]) for k, row in enumerate(chosen)
                    for r in range(repeats)]
    return samples, programs


def runtime_of(row: dict) -> float:
    """One run's runtime, seconds: the sum of its tests' durations, or the run's duration when they carry none."""
    total = sum(float(t.get("duration_s") or 0.0) for t in row.get("tests") or [])
    return total if total > 0 else float(row.get("duration_s") or 0.0)


def efficiency_pairs(programs: dict[str, list[dict]], timing_rows: list[dict], problems: dict[str, Problem], *,
                     repeats: int, factor: float, min_gap_s: float, max_pairs: int, seed: int = 0,
                     source: str = "") -> tuple[list[dict], list[str]]:
    """(pairs: the faster program chosen over the slower, where every repeat of the slower took >= `factor` x and
    >= `min_gap_s` more than the longest repeat of the faster; up to `max_pairs` per problem, the largest ratios
    first; "task_id#sample_id" of the programs left out because a repeat did not pass again).

    `timing_rows`: the results rows of `timing_samples`' samples (sample id k * repeats + r: program k, repeat r)."""
    runs: dict[tuple[str, int], list[dict]] = {}
    for row in timing_rows:
        runs.setdefault((row["task_id"], int(row["sample_id"]) // repeats), []).append(row)
    pairs, unstable = [], []
    for task, rows in programs.items():
        times = {}
        for k, row in enumerate(rows):
            repeated = runs.get((task, k), [])
            if len(repeated) < repeats or not all(r["passed"] for r in repeated):
                unstable.append(f"{task}#{row['sample_id']}")
                continue
            times[k] = [runtime_of(r) for r in repeated]
        candidates = []
        for fast, slow in itertools.permutations(times, 2):
            longest_fast, shortest_slow = max(times[fast]), min(times[slow])
            if shortest_slow >= factor * longest_fast and shortest_slow - longest_fast >= min_gap_s:
                ratio = statistics.median(times[slow]) / max(statistics.median(times[fast]), 1e-9)
                candidates.append((ratio, fast, slow))
        candidates.sort(key=lambda c: (-c[0], _rank(seed, task, c[1], c[2])))
        for ratio, fast, slow in candidates[:max_pairs]:
            provenance = {"method": "execution", "results": source, "chosen_sample": rows[fast]["sample_id"],
                          "rejected_sample": rows[slow]["sample_id"], "chosen_runtimes_s": times[fast],
                          "rejected_runtimes_s": times[slow], "ratio": round(ratio, 3)}
            pairs.append(make_pair(task_id=task, instruction=problems[task].prompt,
                                   criteria=OBJECTIVE_CRITERIA["efficiency"], chosen=rows[fast]["program"],
                                   rejected=rows[slow]["program"], objective="efficiency", provenance=provenance))
    return pairs, unstable
