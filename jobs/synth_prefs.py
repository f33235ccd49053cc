"""Make code-preference pairs (CodeFavor): from commits (Commit-Instruct), from a critic's revisions of weak
solutions (Critic-Evol), or from execution (passing vs failing, faster vs slower, verified in the sandbox).

    python jobs/synth_prefs.py --method commit-instruct --commits editpackft.jsonl --llm.model my-model \\
        llm.engine.backend=openai llm.engine.openai.base_url=http://127.0.0.1:8000/v1 --output runs/prefs_ci
    python jobs/synth_prefs.py --method critic-evol --samples runs/gen/samples.jsonl --dataset humaneval \\
        --output runs/prefs_ce                      # second attempts must parse and keep every test the first passed
    python jobs/synth_prefs.py --method critic-evol --samples weak.jsonl --output runs/ce2  # {instruction, response}
    python jobs/synth_prefs.py --method execution --results runs/eval --output runs/prefs_exec
    python jobs/synth_prefs.py --help        # every option

Inputs: --commits, EditPackFT rows (old_contents, new_contents, message; lang, license, commit optional); --samples, a
generation job's samples.jsonl with --dataset (its problems' prompts and tests), or rows {instruction, solution |
response} without tests; --results, an evaluation's directory (jobs/evaluate.py; its dataset is read from
evaluation_identity.json unless --dataset is given). The LLM runs on any engine (llm.engine: vllm, hf, or an
OpenAI-compatible endpoint with llm.engine.openai.concurrency requests in flight); its prompts are versioned files
(raylib/synth/prompts/*.yaml; llm.prompts for your own).

Writes OUTPUT/pairs.jsonl (raylib/synth/pairs.py's schema: jobs/train_pref.py and jobs/train_rm.py read it as their
--data.train), dropped.jsonl (every item that made no pair, with the stage and reason), synth_summary.json (counts),
config.yaml, job.log, the LLM's answers in OUTPUT/answers/ and sandbox runs in OUTPUT/checks/ or OUTPUT/timing/;
--method execution also writes bench.jsonl (the pairs as a CodePrefBench-format bench for jobs/pref_bench.py).
Re-running with the same output asks the LLM and the sandbox only what is missing. Exit status: 0 done; 2 bad input
or config; 3 the endpoint or the sandbox infrastructure failed for some items - re-run.
"""

import json
import os
import sys
from pathlib import Path
from typing import Literal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, model_validator  # noqa: E402

from raylib.config import ConsoleJobConfig, load_config, log_config  # noqa: E402
from raylib.data.problems import DATASETS  # noqa: E402
from raylib.evaluate.limits import TimeLimits  # noqa: E402
from raylib.evaluate.stage import ExecutionPool  # noqa: E402
from raylib.files import DataError  # noqa: E402
from raylib.synth.synthesize import ExecutionPairSettings, LLMSettings  # noqa: E402

_NEEDS = {"commit-instruct": "commits", "critic-evol": "samples", "execution": "results"}


class SynthPrefsConfig(ConsoleJobConfig):
    method: Literal["commit-instruct", "critic-evol", "execution"] = Field(..., description="How pairs are made.")
    commits: str | None = Field(None, description="commit-instruct: EditPackFT-style JSONL of commits.")
    samples: str | None = Field(None, description="critic-evol: a generation job's samples.jsonl (with --dataset), "
                                "or rows {instruction, solution | response} (no tests).")
    results: str | None = Field(None, description="execution: an evaluation's output directory or results.jsonl.")
    dataset: str | None = Field(None, description=f"The problems of --samples / --results, one of {DATASETS}; "
                                "execution: None reads it from the evaluation's evaluation_identity.json.")
    dataset_path: str | None = Field(None, description="Problem file; None: the shipped one (humaneval, humaneval+, "
                                     "mbpp, mbpp+).")
    languages: list[str] | None = Field(None, description="commit-instruct: keep commits in these languages only "
                                        "(CodeFavor: [python]); None: all.")
    licenses: list[str] | None = Field(None, description="commit-instruct: keep commits under these licenses only "
                                       "(CodeFavor: [apache-2.0, mit, bsd-3-clause, bsd-2-clause]); None: all.")
    limit: int | None = Field(None, ge=1, description="The first N commits, attempts or problems only.")
    extract_code: bool = Field(False, description="critic-evol with --dataset: take code out of chat-style samples "
                               "first (as jobs/evaluate.py --extract_code).")
    llm: LLMSettings = Field(default_factory=LLMSettings, description="The model that writes the data.")
    pairs: ExecutionPairSettings = Field(default_factory=ExecutionPairSettings, description="execution: how many "
                                         "pairs, and how runtimes must differ.")
    execution: ExecutionPool = Field(default_factory=ExecutionPool, description="Sandbox pool of the test and timing "
                                     "runs.")
    time_limits: TimeLimits = Field(default_factory=TimeLimits, description="Time limits of the test and timing runs.")
    seed: int = Field(0, description="Which pairs are kept when there are more than allowed; the bench's A/B order.")
    output: str = Field("runs/prefs", description="Output directory (re-use it to resume).")
    ray_address: str | None = Field(None, description="Ray cluster to join; None: RAY_ADDRESS or a local one.")

    @model_validator(mode="after")
    def _inputs(self):
        needed = _NEEDS[self.method]
        if getattr(self, needed) is None:
            raise ValueError(f"--method {self.method} needs --{needed}")
        extra = [f"--{name}" for name in _NEEDS.values() if name != needed and getattr(self, name) is not None]
        if extra:
            raise ValueError(f"--method {self.method} does not read {', '.join(extra)}")
        return self


def load_inputs(cfg: SynthPrefsConfig) -> tuple[list, dict | None, dict | None, list[dict]]:
    """(items, problems, results by task, skipped commits), everything checked before any model or actor starts."""
    from raylib.data.problems import check_dataset, load_problems, problems_sha, subset

    problems = by_task = None
    skipped: list[dict] = []
    dataset = cfg.dataset
    recorded: dict = {}
    if cfg.method == "execution":
        results = Path(cfg.results)
        if not results.exists():
            raise DataError(results, 0, "no such evaluation (expected jobs/evaluate.py's output directory or its "
                            "results.jsonl)")
        identity = (results if results.is_dir() else results.parent) / "evaluation_identity.json"
        try:
            recorded = json.loads(identity.read_text()) if identity.exists() else {}
        except ValueError as err:
            raise DataError(identity, 0, f"not valid JSON: {err}") from None
        if dataset is None:
            if not isinstance(recorded.get("dataset"), str):
                raise DataError(identity, 0, "no dataset recorded here (or no evaluation_identity.json): give "
                                "--dataset")
            dataset = recorded["dataset"]
    if dataset is not None:
        check_dataset(dataset, cfg.dataset_path)
        problems = load_problems(dataset, cfg.dataset_path)
    if cfg.method == "commit-instruct":
        from raylib.synth.commit_instruct import read_commits
        from raylib.synth.prompts import load_prompts

        load_prompts("commit_instruct", cfg.llm.prompts)
        items, skipped = read_commits(cfg.commits, cfg.languages, cfg.licenses)
        return items[:cfg.limit], None, None, skipped
    if cfg.method == "critic-evol":
        from raylib.synth.critic_evol import attempts_from_samples, read_attempt_rows
        from raylib.synth.prompts import load_prompts

        load_prompts("critic_evol", cfg.llm.prompts)
        if problems is None:
            attempts, skipped = read_attempt_rows(cfg.samples)
            return attempts[:cfg.limit], None, None, skipped
        from raylib.data.samples import read_samples

        samples, _ = read_samples(cfg.samples, problems, extract=cfg.extract_code)
        return attempts_from_samples(samples, problems)[:cfg.limit], problems, None, skipped
    if problems is None:
        raise ValueError("--method execution needs the problems: --dataset")
    from raylib.synth.execution_pairs import read_results

    by_task = read_results(cfg.results)
    if recorded.get("problems_sha", problems_sha(problems)) != problems_sha(problems):
        raise DataError(cfg.results, 0, f"these results are of other problems than {dataset} "
                        + (f"from {cfg.dataset_path}" if cfg.dataset_path else "(the shipped file)"))
    unknown = sorted(by_task.keys() - problems.keys())
    if unknown:
        raise DataError(cfg.results, 0, f"results of tasks that are not among the {dataset} problems: {unknown[:3]}")
    tasks = list(subset({t: None for t in problems if t in by_task}, limit=cfg.limit))
    return tasks, problems, {t: by_task[t] for t in tasks}, skipped


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(SynthPrefsConfig, argv)
    from raylib.files import write_json, write_records

    output = Path(cfg.output)
    try:
        items, problems, by_task, skipped = load_inputs(cfg)
    except (DataError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from raylib.cluster import InfrastructureError, init_cluster
    from raylib.console import job_console
    from raylib.data.problems import problems_sha
    from raylib.files import claim_output
    from raylib.generate.settings import engine_identity
    from raylib.synth import synthesize

    identity = {"method": cfg.method, "input": str(Path(getattr(cfg, _NEEDS[cfg.method])).resolve()),
                "dataset": cfg.dataset, "problems_sha": problems_sha(problems) if problems else None, "llm": None}
    if cfg.method != "execution":  # the LLM's answers are kept: they must be this model's (pairs are made anew)
        from raylib.synth.prompts import load_prompts

        prompts = load_prompts(cfg.method.replace("-", "_"), cfg.llm.prompts)
        identity["llm"] = {**cfg.llm.model_dump(mode="json", exclude={"num_cpus", "num_gpus", "engine", "prompts"}),
                           "engine": engine_identity(cfg.llm.engine), "prompts": [prompts.label, prompts.sha]}
    output.mkdir(parents=True, exist_ok=True)
    changed = claim_output(output / "synth_identity.json", identity)
    if changed:
        print(f"error: {output} holds the work of another run ({changed} differ): use another --output",
              file=sys.stderr)
        return 2

    evaluation = {"execution": cfg.execution, "time_limits": cfg.time_limits, "ray_address": cfg.ray_address}
    with job_console(output, cfg.verbose) as console:
        log_config(cfg, output, file=console.out)
        init_cluster(cfg.ray_address)
        try:
            if cfg.method == "commit-instruct":
                made = synthesize.commit_instruct(items, cfg.llm, output, progress=console.err)
            elif cfg.method == "critic-evol":
                made = synthesize.critic_evol(items, cfg.llm, output, problems=problems, evaluation=evaluation,
                                              progress=console.err)
            else:
                made = synthesize.from_execution(by_task, problems, cfg.pairs, output, source=str(cfg.results),
                                                 seed=cfg.seed, evaluation=evaluation, progress=console.err)
        except InfrastructureError as err:
            print(f"error: {err}", file=console.out)
            return 3
        write_records(output / "pairs.jsonl", made.pairs)
        write_records(output / "dropped.jsonl", [*({"stage": "input", **s} for s in skipped), *made.dropped])
        summary = {"method": cfg.method, **made.counts(), "skipped_input": len(skipped)}
        if cfg.method == "execution":
            from raylib.synth.pairs import bench_rows

            write_records(output / "bench.jsonl", bench_rows(made.pairs, cfg.seed))
        write_json(output / "synth_summary.json", summary)
        lines = [f"{summary['pairs']} pairs from {summary['items']} items ({cfg.method}); {summary['dropped']} "
                 f"dropped, {len(skipped)} input rows skipped"
                 + (f", {len(made.unanswered)} not answered by the endpoint" if made.unanswered else "")]
        lines += [f"  dropped: {n:5d}  {reason}" for reason, n in summary["dropped_by_reason"].items()]
        lines += [f"  pairs:   {n:5d}  {objective}" for objective, n in summary["pairs_by_objective"].items()]
        print("\n".join(lines), file=console.out)
        print(f"{output}/ pairs.jsonl, dropped.jsonl, synth_summary.json"
              + (", bench.jsonl" if cfg.method == "execution" else "") + f" (logs in {console.log_path.name})",
              file=console.out, flush=True)
    if made.unanswered:
        print(f"the endpoint did not answer for {len(made.unanswered)} items (first: {made.unanswered[0]}; errors in "
              f"{output}/answers/): re-run with the same --output to ask them again", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
