"""Evaluate a code judge on CodePrefBench-style pairs: which of two programs better meets the task's objective
(correctness, efficiency, security, human preference), every task asked in both orders.

    python jobs/pref_bench.py --bench runs/prefs/bench.jsonl --judge pair-rm --model runs/pref/model --output runs/pb
    python jobs/pref_bench.py --bench codeprefbench/ --judge rm --model runs/rm/model --output runs/pb_rm
    python jobs/pref_bench.py --bench bench.jsonl --judge llm --model my-judge judge_settings.engine.backend=openai \\
        judge_settings.engine.openai.base_url=http://127.0.0.1:8000/v1 --output runs/pb_llm
    python jobs/pref_bench.py --help        # every option

--bench: a file in CodePrefBench's format (task_id, instruction, choices, gt_choice, objective; see
raylib/synth/bench.py) or a directory of them (CodePrefBench's OBJECTIVE-alignment.jsonl.gz files);
jobs/synth_prefs.py --method execution writes one (bench.jsonl) from the engine's own results. Judges
(raylib/synth/judges.py): pair-rm, a pairwise classifier from jobs/train_pref.py (decided by its A and B logits);
rm, a scalar reward model from jobs/train_rm.py (both programs scored); llm, CodeFavor's generative judge through
any engine (vLLM, transformers, an OpenAI-compatible endpoint). Tasks stream through an actor pool of judges on Ray
Data. An unreadable or tied verdict counts half.

Writes OUTPUT/verdicts.jsonl (per task: both verdicts and what decided them), bench_summary.json (accuracy overall,
macro over objectives and per objective; position bias; consistency), report.md, accuracy.png, config.yaml and
job.log. Re-running with the same output judges only what is missing. Exit status: 0 done; 2 bad input or config;
3 some verdicts failed on the endpoint - re-run.
"""

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Literal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, model_validator  # noqa: E402

from raylib.config import ConsoleJobConfig, load_config, log_config  # noqa: E402
from raylib.files import DataError  # noqa: E402
from raylib.synth.judges import BenchJudgeSettings  # noqa: E402


class PrefBenchConfig(ConsoleJobConfig):
    bench: str = Field(..., description="A bench file (CodePrefBench format) or a directory of bench files.")
    judge: Literal["pair-rm", "rm", "llm"] = Field("pair-rm", description="pair-rm (jobs/train_pref.py's "
                                                   "classifier), rm (jobs/train_rm.py's reward model) or llm (a "
                                                   "generative judge through judge_settings.engine).")
    model: str = Field(..., description="The judge's model: a checkpoint directory (pair-rm, rm); for llm "
                       "'embedded', a directory, or the name an OpenAI-compatible server serves.")
    judge_settings: BenchJudgeSettings = Field(..., description="The judge's other settings (engine, batch_size, "
                                               "max_length, prompts, ...); kind and model come from --judge and "
                                               "--model.")
    limit: int | None = Field(None, ge=1, description="The first N tasks of the bench only (a later run in the same "
                              "output may take more).")
    remove_comments: bool = Field(True, description="Take comments out of Python programs before judging, except "
                                  "for human-preference tasks (as CodeFavor's evaluation does: a comment can give the "
                                  "answer away).")
    criteria: dict[str, str] = Field(default_factory=dict, description="Criteria per objective for rows without "
                                     "their own, e.g. CodeFavor's exact texts; default: raylib.synth.pairs."
                                     "OBJECTIVE_CRITERIA.")
    actors: int = Field(1, ge=1, description="Judge actors (model replicas) on Ray Data.")
    batch_size: int = Field(32, ge=1, description="Tasks per actor call (each asked in both orders).")
    num_cpus: float = Field(1, gt=0, description="CPUs per judge actor.")
    num_gpus: float | None = Field(None, ge=0, description="GPUs per judge actor; None: on a cluster with GPUs one "
                                   "for pair-rm / rm, engine.tensor_parallel_size for a local LLM, none for an "
                                   "endpoint.")
    output: str = Field("runs/pref_bench", description="Output directory (re-use it to resume).")
    ray_address: str | None = Field(None, description="Ray cluster to join; None: RAY_ADDRESS or a local one.")

    @model_validator(mode="before")
    @classmethod
    def _settings(cls, data):
        if isinstance(data, dict):
            given = data.get("judge_settings") or {}
            given = given.model_dump() if isinstance(given, BenchJudgeSettings) else dict(given)
            picked = {k: data[f] for k, f in (("kind", "judge"), ("model", "model")) if f in data}
            data = {**data, "judge_settings": {**given, **picked}}
        return data


def bench_sha(tasks: list) -> str:
    """What verdicts depend on in a bench (the whole of it: --limit may grow)."""
    h = hashlib.sha256()
    for t in tasks:
        h.update(json.dumps([t.key, t.instruction, t.criteria, list(t.choices), t.gt_choice]).encode())
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(PrefBenchConfig, argv)
    from raylib.console import job_console
    from raylib.files import claim_output, write_json
    from raylib.synth.bench import read_bench, summarize, write_bench_report

    output = Path(cfg.output)
    settings = cfg.judge_settings
    try:
        every = read_bench(cfg.bench, criteria=cfg.criteria)
        tasks = every[:cfg.limit]
        if settings.kind != "llm":
            from raylib.rerank.verifiers.models import check_classifier

            check_classifier(settings.model, (2,) if settings.kind == "pair-rm" else (1, 2))
        prompts = prompts_sha = None
        if settings.kind == "llm":
            from raylib.synth.prompts import load_prompts

            loaded = load_prompts("codefavor_judge", settings.prompts)
            prompts, prompts_sha = loaded.label, loaded.sha
    except (DataError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from raylib.generate.settings import engine_identity

    judge = settings.model_dump(mode="json", exclude={"batch_size", "engine", "prompts"})
    if settings.kind == "llm":
        judge["engine"] = engine_identity(settings.engine)
    identity = {"bench_sha": bench_sha(every), "judge": judge, "prompts": [prompts, prompts_sha],
                "remove_comments": cfg.remove_comments, "criteria": cfg.criteria}
    output.mkdir(parents=True, exist_ok=True)
    changed = claim_output(output / "bench_identity.json", identity)
    if changed:
        print(f"error: {output} holds verdicts of another run ({changed} differ): use another --output",
              file=sys.stderr)
        return 2
    with job_console(output, cfg.verbose) as console:
        log_config(cfg, output, file=console.out)
        from raylib.cluster import init_cluster
        from raylib.synth.runner import judge_bench

        init_cluster(cfg.ray_address)
        verdicts = judge_bench(tasks, settings, output / "verdicts.jsonl", actors=cfg.actors,
                               batch_size=cfg.batch_size, num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus,
                               remove_comments=cfg.remove_comments, progress=console.err)
        failed = sum(1 for line in (output / "verdicts.jsonl").read_text().splitlines()
                     if any(d.get("retry") for d in json.loads(line)["details"]))
        summary = summarize(tasks, verdicts, meta={"judge": settings.kind, "model": settings.model,
                                                   "prompts": prompts, "bench": cfg.bench, "endpoint_failures": failed})
        write_json(output / "bench_summary.json", summary)
        report = write_bench_report(summary, output, f"{settings.kind} {settings.model} on {cfg.bench}")
        print("\n" + report.split("\n\n![")[0], file=console.out)
        print(f"{output}/ bench_summary.json, report.md, accuracy.png, verdicts.jsonl (logs in "
              f"{console.log_path.name})", file=console.out, flush=True)
    if failed:
        print(f"{failed} tasks got no verdict from the endpoint (counted half): re-run with the same --output",
              file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
