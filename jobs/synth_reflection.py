"""Make ReflectionCoder's reflection sequences: a model (any engine) writes code for each problem, the sandbox runs it
on the problem's tests, and after a failure the execution result goes back to the model as an execution block; it
reflects and writes fixed code, until the code passes or --max_rounds answers are spent.

    python jobs/synth_reflection.py --dataset mbpp --limit 50 --output runs/reflection      # the embedded model
    python jobs/synth_reflection.py --dataset jsonl --dataset_path problems.jsonl --max_rounds 4 --llm.model NAME \\
        llm.engine.backend=openai llm.engine.openai.base_url=http://127.0.0.1:8000/v1 --output runs/reflection
    python jobs/synth_reflection.py --config configs/synth_reflection.yaml
    python jobs/sft.py --config configs/reflectioncoder_sft.yaml --data.train runs/reflection/reflection.jsonl
    python jobs/synth_reflection.py --help        # every option

Only sequences that end in passing code are kept, each as one training sample in the reflection format that
jobs/sft.py trains on (`--data.format reflection`; raylib/synth/reflection_seq.py describes it): the task; the
attempts, each code block followed by its execution block and each fix preceded by its reflection text; then the
task again as a one-off request, answered with the passing code. A problem solved at the first try has no reflection
and is dropped unless --keep_first_try. The programs are judged by the problem's own tests: build sequences on
training problems, not on the ones you evaluate on.

Writes OUTPUT/reflection.jsonl (the samples), dropped.jsonl (every problem without one, with the round and reason:
never passed within max_rounds, no code in an answer, no reflection in an answer, passed at the first try, the engine
refused the prompt), reflection_summary.json (problems, kept, dropped_by_reason, first_try_passed, kept_by_rounds,
passed_by_round), config.yaml, job.log, the model's answers in OUTPUT/answers/round{r}.jsonl and the sandbox runs in
OUTPUT/execution/ (an evaluation as jobs/evaluate.py writes it). Re-running with the same output asks the model and
the sandbox only what is missing (a larger --max_rounds goes on from there). Exit status: 0 done; 2 bad input or
config; 3 the endpoint or the sandbox infrastructure failed for some problems - re-run.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, model_validator  # noqa: E402

from raylib.config import ConsoleJobConfig, load_config, log_config  # noqa: E402
from raylib.data.problems import DATASETS  # noqa: E402
from raylib.evaluate.limits import TimeLimits  # noqa: E402
from raylib.evaluate.stage import ExecutionPool  # noqa: E402
from raylib.files import DataError  # noqa: E402
from raylib.synth.reflection_seq import MAX_EXECUTION_CHARS  # noqa: E402
from raylib.synth.synthesize import LLMSettings  # noqa: E402


class SynthReflectionConfig(ConsoleJobConfig):
    dataset: str = Field("humaneval", description=f"The problems, one of {DATASETS}.")
    dataset_path: str | None = Field(None, description="Problem file; None: the shipped one (humaneval, humaneval+, "
                                     "mbpp, mbpp+).")
    limit: int | None = Field(None, ge=1, description="The first N problems only.")
    max_rounds: int = Field(3, ge=2, description="Most answers per problem (the first code, then one fix per failed "
                            "run); a problem whose code still fails after them is dropped.")
    keep_first_try: bool = Field(False, description="Keep problems solved at the first try as sequences without "
                                 "reflection (code, execution, the one-off answer); ReflectionCoder's sequences all "
                                 "reflect, so by default they are dropped.")
    max_execution_chars: int = Field(MAX_EXECUTION_CHARS, ge=200, description="Longest execution block, characters.")
    llm: LLMSettings = Field(default_factory=LLMSettings, description="The model that writes the code; "
                             "temperature None: 0.2.")
    execution: ExecutionPool = Field(default_factory=ExecutionPool, description="Sandbox pool of the test runs.")
    time_limits: TimeLimits = Field(default_factory=TimeLimits, description="Time limits of the test runs.")
    output: str = Field("runs/reflection", description="Output directory (re-use it to resume).")
    ray_address: str | None = Field(None, description="Ray cluster to join; None: RAY_ADDRESS or a local one.")

    @model_validator(mode="after")
    def _dataset(self):
        from raylib.data.problems import check_dataset

        check_dataset(self.dataset, self.dataset_path)
        return self


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(SynthReflectionConfig, argv)
    from raylib.data.problems import load_problems, problems_sha, subset
    from raylib.synth.prompts import load_prompts

    try:
        everything = load_problems(cfg.dataset, cfg.dataset_path)
        problems = subset(everything, limit=cfg.limit)
        prompts = load_prompts("reflection", cfg.llm.prompts)
    except (DataError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from raylib.cluster import InfrastructureError, init_cluster
    from raylib.console import job_console
    from raylib.files import claim_output, write_json, write_records
    from raylib.generate.settings import engine_identity
    from raylib.synth.reflection_loop import reflection_sequences

    output = Path(cfg.output)
    identity = {"method": "reflection", "dataset": cfg.dataset, "problems_sha": problems_sha(everything),
                "llm": {**cfg.llm.model_dump(mode="json", exclude={"num_cpus", "num_gpus", "engine", "prompts"}),
                        "engine": engine_identity(cfg.llm.engine), "prompts": [prompts.label, prompts.sha]},
                "execution": {"time_limits": cfg.time_limits.model_dump(mode="json", exclude={"reference_on"}),
                              "memory_mb": cfg.execution.memory_mb},
                "max_execution_chars": cfg.max_execution_chars}  # the blocks the model was shown
    output.mkdir(parents=True, exist_ok=True)
    changed = claim_output(output / "synth_identity.json", identity)
    if changed:
        print(f"error: {output} holds the work of another run ({changed} differ): use another --output",
              file=sys.stderr)
        return 2

    with job_console(output, cfg.verbose) as console:
        log_config(cfg, output, file=console.out)
        init_cluster(cfg.ray_address)
        try:
            made = reflection_sequences(problems, cfg.llm, output, max_rounds=cfg.max_rounds, dataset=cfg.dataset,
                                        keep_first_try=cfg.keep_first_try, max_execution_chars=cfg.max_execution_chars,
                                        evaluation={"execution": cfg.execution, "time_limits": cfg.time_limits,
                                                    "ray_address": cfg.ray_address},
                                        progress=console.err)
        except InfrastructureError as err:
            print(f"error: {err}", file=console.out)
            return 3
        write_records(output / "reflection.jsonl", made.kept)
        write_records(output / "dropped.jsonl", made.dropped)
        summary = {"dataset": cfg.dataset, "prompts": prompts.label, **made.counts()}
        write_json(output / "reflection_summary.json", summary)
        lines = [f"{summary['kept']} reflection sequences from {summary['problems']} problems (at most "
                 f"{cfg.max_rounds} rounds); {summary['dropped']} dropped"
                 + (f", {summary['unanswered']} not answered by the endpoint" if made.unanswered else "")]
        lines += [f"  kept:     {n:5d}  after {rounds} rounds" for rounds, n in summary["kept_by_rounds"].items()]
        lines += [f"  dropped:  {n:5d}  {reason}" for reason, n in summary["dropped_by_reason"].items()]
        print("\n".join(lines), file=console.out)
        print(f"{output}/ reflection.jsonl, dropped.jsonl, reflection_summary.json (logs in {console.log_path.name})",
              file=console.out, flush=True)
    if made.unanswered:
        print(f"the endpoint did not answer for {len(made.unanswered)} problems (first: {made.unanswered[0]}; errors "
              f"in {output}/answers/): re-run with the same --output to ask them again", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
