"""Clean TACO / APPS problems for training (CodePRM): rule filters, decontamination, then an execution filter that keeps
only reference solutions passing their tests in the sandbox.

    python jobs/clean_problems.py --config configs/clean_taco.yaml --input taco_train.jsonl --output runs/taco_clean
    python jobs/clean_problems.py --input taco.jsonl cleaning.min_tests=5 cleaning.solutions_per_problem=8
    python jobs/clean_problems.py --input taco.jsonl \\
        cleaning.decontamination.against='[{dataset: humaneval}, {dataset: mbpp}, {dataset: stdio, path: lcb.jsonl}]'
    python jobs/clean_problems.py --help        # every option

The input is TACO/APPS-format JSONL (question, solutions and input_output as JSON text, ...). The rules and their
order: raylib/data/clean.py (malformed rows, too few tests, question length, n-gram overlap with the evaluation sets'
statements, solutions that are too long/short, do not parse or repeat, duplicate questions); then the kept problems
go through codeloop's loader (rows it cannot run yet are removed as "unsupported") and up to cleaning.max_attempts
solutions per problem run in the sandbox; the first cleaning.solutions_per_problem that pass are kept, and problems
with none are removed.

Writes OUTPUT/problems.jsonl (the cleaned problems in TACO format: `python jobs/evaluate.py --dataset stdio
--dataset-path OUTPUT/problems.jsonl` reads it), removed.jsonl (one row per removed problem or solution: task_id,
line, solution index or null, reason, detail), clean_summary.json (counts in, kept, and removed by reason), the
sandbox runs in OUTPUT/execution/ (an evaluation as jobs/evaluate.py writes it), config.yaml and job.log. Re-running
with the same output runs only what the sandbox has not run yet. Exit status: 0 done; 2 bad input or config; 3 the
sandbox infrastructure failed for some solutions - re-run.
"""

import hashlib
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field  # noqa: E402

from raylib.config import ConsoleJobConfig, load_config, log_config  # noqa: E402
from raylib.data.clean import CleaningSettings, Removal, TacoRow  # noqa: E402
from raylib.evaluate.limits import TimeLimits  # noqa: E402
from raylib.evaluate.stage import ExecutionPool  # noqa: E402
from raylib.files import DataError  # noqa: E402


class CleanProblemsConfig(ConsoleJobConfig):
    input: str = Field(..., description="TACO/APPS-format JSONL (.jsonl, .jsonl.gz or a .json list).")
    output: str = Field("runs/clean", description="Output directory (re-use it to resume the sandbox runs).")
    limit: int | None = Field(None, ge=1, description="Only the first N input rows.")
    cleaning: CleaningSettings = Field(default_factory=CleaningSettings, description="The rules' settings.")
    execution: ExecutionPool = Field(default_factory=ExecutionPool, description="Sandbox pool of the execution "
                                     "filter.")
    time_limits: TimeLimits = Field(default_factory=lambda: TimeLimits(from_reference=False),
                                    description="Time limits of the execution filter; by default each problem's own "
                                    "time_limit, else default_s (the solutions under test set no limit).")
    infra_retries: int = Field(2, ge=0, description="Rounds re-running solutions whose sandbox failed.")
    ray_address: str | None = Field(None, description="Ray cluster to join; None: RAY_ADDRESS or a local one.")


def file_sha(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def loadable(rows: list[TacoRow]) -> tuple[list[TacoRow], dict, list[Removal]]:
    """(the rows codeloop's loader runs, their problems, removals): each row, in TACO format as problems.jsonl will
    hold it, goes through the loader's own converter (raylib.data.problems.problem_from_row); rows it skips are
    "unsupported" (a kind of test the sandbox cannot run), rows it refuses "unloadable"."""
    from raylib.data.clean import taco_record
    from raylib.data.problems import Unsupported, problem_from_row

    kept, problems, removed = [], {}, []
    for row in rows:
        try:
            problems[row.task_id] = problem_from_row(taco_record(row), "stdio", line=row.line)
        except Unsupported as exc:
            removed.append(Removal(row.task_id, "unsupported", str(exc), line=row.line))
        except DataError as err:
            removed.append(Removal(row.task_id, "unloadable", err.message, line=row.line))
        else:
            kept.append(row)
    return kept, problems, removed


def execution_filter(rows: list[TacoRow], cfg: CleanProblemsConfig, directory: Path,
                     progress) -> tuple[list[TacoRow], list[Removal], dict]:
    """Run each kept solution in the sandbox (OUTPUT/execution/, resumable) and keep the passing ones; returns (rows,
    removals, execution counts). InfrastructureError when some could not run."""
    from raylib.cluster import InfrastructureError
    from raylib.data.clean import execution_samples, keep_passing
    from raylib.evaluate.pipeline import evaluate
    from raylib.files import read_records

    rows, problems, removed = loadable(rows)
    samples = execution_samples(rows)
    if not samples:
        return rows, removed, {"samples": 0, "passed": 0}
    done = evaluate(problems, directory, samples=samples, execution=cfg.execution, time_limits=cfg.time_limits,
                    infra_retries=cfg.infra_retries, ray_address=cfg.ray_address, progress=progress,
                    title="TACO cleaning: execution filter")
    if not done.complete:
        raise InfrastructureError(f"{done.infra_errors} solutions could not run (sandbox infrastructure); re-run with "
                                  "the same --output to retry them")
    results = {(r["task_id"], r["sample_id"]): r for _, r in read_records(directory / "results.jsonl")}
    kept, out = keep_passing(rows, results, cfg.cleaning.solutions_per_problem)
    passed = sum(1 for s in samples if results[(s.task_id, s.sample_id)]["passed"])
    return kept, removed + out, {"samples": len(samples), "passed": passed}


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(CleanProblemsConfig, argv)
    from raylib.data.clean import NgramIndex, evaluation_texts, read_rows
    from raylib.files import claim_output

    output = Path(cfg.output)
    decontamination = cfg.cleaning.decontamination
    try:
        rows, removed = read_rows(cfg.input, cfg.limit)
        index = (NgramIndex(evaluation_texts(decontamination.against), decontamination.n)
                 if decontamination.against else None)
        input_sha = file_sha(cfg.input)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not rows and not removed:
        print(f"error: {cfg.input}: no rows", file=sys.stderr)
        return 2
    output.mkdir(parents=True, exist_ok=True)
    identity = {"input_sha": input_sha, "time_limits": cfg.time_limits.model_dump(exclude={"reference_on"}),
                "memory_mb": cfg.execution.memory_mb}
    changed = claim_output(output / "clean_identity.json", identity)
    if changed:
        print(f"error: {output} holds the sandbox runs of another input or limits ({changed} differ): use another "
              "--output", file=sys.stderr)
        return 2

    from raylib.cluster import InfrastructureError
    from raylib.console import job_console, progress_bar
    from raylib.data.clean import clean, removed_by_reason, taco_record
    from raylib.files import write_json, write_records

    problems_in, solutions_in = len(rows) + len(removed), sum(len(r.solutions) for r in rows)
    with job_console(output, cfg.verbose) as console:
        log_config(cfg, output, file=console.out)
        bar = progress_bar(len(rows), "cleaning", console.err, unit="problem")
        rows, out = clean(rows, cfg.cleaning, index, progress=bar.update)
        bar.close()
        removed += out
        try:
            rows, out, ran = execution_filter(rows, cfg, output / "execution", console.err)
        except InfrastructureError as err:
            print(f"error: {err}", file=console.err)
            return 3
        removed += out
        write_records(output / "problems.jsonl", [taco_record(r) for r in rows])
        write_records(output / "removed.jsonl", [r.as_row() for r in removed])
        by_reason = removed_by_reason(removed)
        kept_solutions = sum(len(r.solutions) for r in rows)
        write_json(output / "clean_summary.json", {
            "input_file": cfg.input, "input": {"problems": problems_in, "solutions": solutions_in},
            "kept": {"problems": len(rows), "solutions": kept_solutions}, "removed_by_reason": by_reason,
            "execution": ran})
        lines = [f"{problems_in} problems ({solutions_in} solutions) in -> {len(rows)} problems "
                 f"({kept_solutions} solutions) kept; {ran['passed']} of {ran['samples']} solutions run passed"]
        lines += [f"  removed problems:  {n:6d}  {reason}" for reason, n in by_reason["problems"].items()]
        lines += [f"  removed solutions: {n:6d}  {reason}" for reason, n in by_reason["solutions"].items()]
        print("\n".join(lines), file=console.out)
        print(f"{output}/ problems.jsonl, removed.jsonl, clean_summary.json (sandbox runs in execution/, logs in "
              f"{console.log_path.name})", file=console.out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
