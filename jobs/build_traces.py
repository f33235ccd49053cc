"""Build LLMExecutor's executor data: trace programs in the sandbox, then write single-step items.

    python jobs/build_traces.py --dataset humaneval --output runs/traces                 # canonical solutions
    python jobs/build_traces.py --dataset mbpp+ --inputs_per_problem 5 --output runs/traces_mbpp
    python jobs/build_traces.py --dataset stdio --dataset_path lcb.jsonl --output runs/traces_stdio
    python jobs/build_traces.py --programs codenetmut/ --output runs/traces_codenet      # NAME.py + NAME.in files
    python jobs/build_traces.py --dataset humaneval --teacher.model Qwen/Qwen2.5-Coder-7B-Instruct --output runs/t
    python jobs/build_traces.py --help        # every option

What is traced (raylib.trace.sources): a problem set's reference solutions on its test inputs (function-style
problems: the entry point's calls with literal arguments; stdin/stdout problems: the cases' inputs), and/or program
files. Each run goes through the sandbox's trace mode (its traceable subset: a program outside it is listed in
refused.jsonl with the line that broke it). Every step becomes an item in LLMExecutor's format (raylib.trace.items):
the SFT variant with an Analysis (a teacher model's, given --teacher.model, else a template's) and the SWA variant
without one. Splits are by program (every input and step of a program lands in one split).

Writes OUTPUT/traces.jsonl (every run and its trace), OUTPUT/sft/{train,validation,test}.jsonl and
OUTPUT/swa/{...}.jsonl (items; `messages` makes them jobs/sft.py data), OUTPUT/refused.jsonl, OUTPUT/build_summary.json,
config.yaml and job.log. Re-running with the same output resumes (traces and teacher answers are kept as they
arrive). Exit status: 0 done; 2 bad input or config; 3 some runs could not be traced (sandbox failures) - re-run.
"""

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Literal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, model_validator  # noqa: E402

from raylib.config import ConsoleJobConfig, Section, load_config, log_config  # noqa: E402
from raylib.data.problems import DATASETS, check_dataset, subset  # noqa: E402
from raylib.files import DataError  # noqa: E402
from raylib.generate.engines.base import EngineConfig, engine_model_from  # noqa: E402
from raylib.trace.runner import TracingSettings  # noqa: E402


class TeacherSettings(Section):
    model: str | None = Field(None, description="The model that writes each SFT item's Analysis; None: a template.")
    engine: EngineConfig = Field(default_factory=EngineConfig, description="Its engine (backend, dtype, length, "
                                 "endpoint); engine.model is taken from teacher.model.")
    max_tokens: int = Field(256, ge=16, description="Longest Analysis, tokens.")
    num_cpus: float = Field(1, gt=0, description="CPUs the teacher's engine actor reserves.")

    @model_validator(mode="before")
    @classmethod
    def _engine_model(cls, data):
        return engine_model_from(data)


class BuildTracesConfig(ConsoleJobConfig):
    dataset: str | None = Field(None, description=f"Problem set whose reference solutions are traced: one of "
                                f"{DATASETS}; None: --programs only.")
    dataset_path: str | None = Field(None, description="Problem file; None: the shipped one (humaneval, humaneval+, "
                                     "mbpp, mbpp+).")
    programs: str | None = Field(None, description="CodeNetMut-style programs: a directory of NAME.py (+ NAME.in, "
                                 "NAME.K.in inputs) or a JSONL of {id, code, inputs}.")
    limit: int | None = Field(None, ge=1, description="The first N problems of --dataset only.")
    inputs_per_problem: int = Field(3, ge=1, description="Test inputs traced per problem or program.")
    variants: list[Literal["sft", "swa"]] = Field(["sft", "swa"], description="Item variants written.")
    splits: dict[str, float] = Field({"train": 0.8, "validation": 0.1, "test": 0.1}, description="Split name -> "
                                     "share of programs.")
    seed: int = Field(0, description="Which programs go to which split.")
    tracing: TracingSettings = Field(default_factory=TracingSettings, description="Sandbox actors and trace limits.")
    teacher: TeacherSettings = Field(default_factory=TeacherSettings, description="The Analysis writer.")
    output: str = Field("runs/traces", description="Output directory (re-use it to resume).")
    ray_address: str | None = Field(None, description="Ray cluster to join; None: RAY_ADDRESS or a local one.")

    @model_validator(mode="after")
    def _check(self):
        if not self.dataset and not self.programs:
            raise ValueError("give --dataset, --programs or both")
        if self.dataset:
            check_dataset(self.dataset, self.dataset_path)
        if not self.splits or any(share <= 0 for share in self.splits.values()):
            raise ValueError("splits must name at least one split, each with a positive share")
        return self


def load_runs(cfg: BuildTracesConfig) -> tuple[list[dict], list[str]]:
    from raylib.trace.sources import runs_from_problems, runs_from_program_files

    runs, left_out = [], []
    if cfg.dataset:
        from raylib.data.problems import load_problems

        problems = subset(load_problems(cfg.dataset, cfg.dataset_path), 0, cfg.limit)
        runs, left_out = runs_from_problems(problems, cfg.inputs_per_problem, cfg.dataset)
    if cfg.programs:
        runs += runs_from_program_files(cfg.programs, cfg.inputs_per_problem)
    ids = Counter(run["trace_id"] for run in runs)
    twice = [t for t, n in ids.items() if n > 1]
    if twice:
        raise ValueError(f"run {twice[0]!r} comes from both --dataset and --programs: rename the program file")
    return runs, left_out


def analyses_by_teacher(cfg: BuildTracesConfig, rows: list[dict], output: Path, progress) -> dict[str, str]:
    """{item_id: the teacher's Analysis} for every step of every traced run."""
    from raylib.generate.texts import sample_outputs
    from raylib.trace.items import step_states, teacher_prompt

    prompts = {}
    for row in rows:
        for index, (step, before, next_line) in enumerate(step_states(row["trace"])):
            prompts[f"{row['trace_id']}@{index}"] = teacher_prompt(row["code"], step["line"], before, step["vars"],
                                                                  next_line)
    engine = cfg.teacher.engine.model_copy(update={"model": cfg.teacher.model}).model_dump()
    texts = sample_outputs(prompts, engine, n=1, temperature=0.0, max_tokens=cfg.teacher.max_tokens,
                           path=output / "teacher.jsonl", num_cpus=cfg.teacher.num_cpus, progress=progress,
                           desc="teacher")
    return {key: answers[0].strip() for key, answers in texts.items() if answers and answers[0].strip()}


def write_items(cfg: BuildTracesConfig, rows: list[dict], analyses: dict[str, str] | None, output: Path) -> dict:
    from raylib.files import write_records
    from raylib.trace.items import items_from_trace, split_of

    counts: dict = {}
    for variant in cfg.variants:
        by_split: dict[str, list[dict]] = {name: [] for name in cfg.splits}
        for row in rows:
            given = None
            if analyses is not None and variant == "sft":
                given = [analyses.get(f"{row['trace_id']}@{k}") for k in range(len(row["trace"]["steps"]))]
            items = items_from_trace(row["program_id"], row["code"], row["trace"], source=row["source"],
                                     variant=variant, trace_id=row["trace_id"], analyses=given)
            by_split[split_of(row["program_id"], cfg.splits, cfg.seed)] += items
        for name, items in by_split.items():
            write_records(output / variant / f"{name}.jsonl", items)
        counts[variant] = {name: {"programs": len({i["program_id"] for i in items}), "items": len(items),
                                  "kinds": dict(Counter(i["kind"] for i in items))}
                           for name, items in by_split.items()}
    return counts


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(BuildTracesConfig, argv)
    from raylib.cluster import init_cluster
    from raylib.console import job_console
    from raylib.files import write_json, write_records
    from raylib.trace.runner import trace_runs

    output = Path(cfg.output)
    try:
        runs, left_out = load_runs(cfg)
    except (DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with job_console(output, cfg.verbose) as console:
        log_config(cfg, output, file=console.out)
        init_cluster(cfg.ray_address)
        store = trace_runs(runs, cfg.tracing, output / "traces.jsonl", progress=console.err)
        every = [json.loads(line) for line in store.lines.values()]
        rows = [r for r in every if r["trace"] is not None and r["trace"]["steps"]]
        refused = [{"trace_id": r["trace_id"], "program_id": r["program_id"], "error": r["error"]}
                   for r in every if r["trace"] is None and r["status"] != "sandbox-error"]
        failed = [r["trace_id"] for r in every if r["status"] == "sandbox-error"]
        write_records(output / "refused.jsonl", refused)
        analyses = analyses_by_teacher(cfg, rows, output, console.err) if cfg.teacher.model else None
        counts = write_items(cfg, rows, analyses, output)
        summary = {"runs": len(runs), "traced": len(rows), "refused": len(refused), "sandbox_failures": len(failed),
                   "left_out_problems": left_out, "truncated": sum(r["trace"]["truncated"] for r in rows),
                   "analysis": ("teacher " + cfg.teacher.model) if cfg.teacher.model else "template",
                   "teacher_analyses": len(analyses) if analyses is not None else 0, "items": counts}
        write_json(output / "build_summary.json", summary)
        print(f"\n{len(runs)} runs: {len(rows)} traced ({summary['truncated']} truncated), {len(refused)} refused "
              f"(not traceable: refused.jsonl), {len(left_out)} problems without a usable input", file=console.out)
        for variant, splits in counts.items():
            for name, c in splits.items():
                kinds = ", ".join(f"{k} {n}" for k, n in sorted(c["kinds"].items()))
                print(f"  {variant}/{name}.jsonl: {c['items']} items from {c['programs']} programs ({kinds})",
                      file=console.out)
        print(f"{output}/ traces.jsonl, sft/, swa/, refused.jsonl, build_summary.json (logs in "
              f"{console.log_path.name})", file=console.out, flush=True)
        if failed:
            print(f"error: {len(failed)} runs could not be traced (the sandbox failed); re-run with the same --output",
                  file=console.err)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
