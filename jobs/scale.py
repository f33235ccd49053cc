"""Test-time scaling with execution feedback: run a strategy (revision, self-refine, best-of-n, self-consistency, beam,
sample-debug) on every problem at once, the engines batching across problems.

    python jobs/scale.py --dataset humaneval --strategy revision --budget 32 --output runs/scale/revision
    python jobs/scale.py --dataset humaneval --strategy revision --feedback public-tests --budget 8 --limit 20 \\
        --output runs/scale/revision-public
    python jobs/scale.py --dataset mbpp --strategy best-of-n --mode verifier --verifier public-tests --budget 16 \\
        --output runs/scale/bon
    python jobs/scale.py --dataset humaneval --strategy sample-debug --budget 8 --debug_rounds 2 --output runs/scale/sd
    python jobs/scale.py --dataset humaneval --protocol fttt --hard_subset runs/fttt/hard_humaneval.json \\
        --strategy revision --budget 32 --output runs/fttt/revision          # FTTT's protocol on its hard subset
    python jobs/scale.py --dataset gsm8k --dataset_path gsm8k/test.jsonl --strategy self-consistency --budget 16 \\
        --output runs/scale/gsm8k-sc
    python jobs/scale.py --dataset humaneval --strategy fttt --budget 32 --output runs/scale/fttt  # test-time training
    python jobs/scale.py --help        # every option

Writes OUTPUT/attempts.jsonl (task_id, attempt, solution = the whole program run, passed, status, the feedback given,
tokens, ...), scale_summary.json (strategy, budget, problems, solved, precision, avg_trials, curve), report.md and
scaling.png (solved against attempts; runs in sibling folders of one root are also drawn together in the root's
scaling.png), config.yaml and job.log. Re-running with the same output continues the run (the loops resume from
attempts.jsonl). The work is `raylib.scale.runner.run_scaling`. Exit status: 0 done; 2 bad input or config; 3 some
problems could not be finished (sandbox infrastructure) - re-run.
"""

import os
import sys
from pathlib import Path
from typing import Literal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, model_validator  # noqa: E402

from raylib.config import ConsoleJobConfig, load_config, log_config  # noqa: E402
from raylib.data.math_problems import MATH_DATASETS  # noqa: E402
from raylib.data.problems import DATASETS, check_dataset, subset  # noqa: E402
from raylib.evaluate.limits import TimeLimits  # noqa: E402
from raylib.evaluate.stage import ExecutionPool  # noqa: E402
from raylib.files import DataError  # noqa: E402
from raylib.generate.settings import GenerationSettings, GenerationShortcuts  # noqa: E402
from raylib.rerank.settings import VERIFIER_NAMES, VerifierSettings  # noqa: E402
from raylib.scale.strategies import TTT_STRATEGIES, ScaleSettings  # noqa: E402
from raylib.scale.ttt import TTTSettings  # noqa: E402


class ScaleConfig(ConsoleJobConfig, GenerationShortcuts):
    dataset: str = Field("humaneval", description=f"Problem set: one of {DATASETS} or a math set {MATH_DATASETS} "
                         "(math sets need --dataset_path).")
    dataset_path: str | None = Field(None, description="Problem file; None: the shipped one (humaneval, humaneval+, "
                                     "mbpp, mbpp+).")
    skip: int = Field(0, ge=0, description="Leave out the first N problems (e.g. those a baseline trained on).")
    limit: int | None = Field(None, ge=1, description="Then the first N problems only.")
    strategy: Literal["revision", "self-refine", "best-of-n", "self-consistency", "beam", "sample-debug",
                      "fttt", "fttt+", "optune"] = Field("revision", description="The loop run on each problem "
                                                              "(raylib.scale.strategies).")
    budget: int | None = Field(None, ge=1, le=1024, description="Attempts per problem (answers judged, samples "
                               "drawn, or the beam width); None: 32 for fttt, fttt+ and optune (FTTT's), else 8.")
    mode: Literal["oracle", "verifier"] = Field("oracle", description="best-of-n and beam: oracle or verifier.")
    verifier: str = Field("public-tests", description=f"Verifier of verifier mode and sample-debug: one of "
                          f"{VERIFIER_NAMES} but rvbs.")
    feedback: Literal["binary", "public-tests", "traceback"] = Field("binary", description="revision's feedback "
                                                                      "turn.")
    samples_per_call: int = Field(4, ge=1, le=256, description="Samples asked of the engine at once (best-of-n, "
                                  "self-consistency).")
    debug_rounds: int = Field(2, ge=0, le=16, description="sample-debug: fixes per sample on public-test feedback.")
    protocol: Literal["codeloop", "fttt"] = Field("codeloop", description="codeloop: codeloop's prompts; fttt: FTTT's "
                                                  "HumanEval/MBPP templates, the program from the first fenced block.")
    hard_subset: str | None = Field(None, description="FTTT's hard subset: an index file of the problems the model "
                                    "fails greedily; made (by a greedy pass beside it) when missing, reused after. "
                                    "The run then covers those problems only.")
    ttt: TTTSettings = Field(default_factory=TTTSettings, description="fttt: the per-problem LoRA adapter and its "
                             "optimizer (FTTT's defaults: rank 4, alpha 16, dropout 0.05 on q_proj/v_proj, AdamW "
                             "1e-5). Sampling runs on transformers, one model copy per generation replica.")
    optune: str | None = Field(None, description="--strategy optune: the learned optimizer jobs/train_optune.py "
                               "wrote (its OUTPUT/optune).")
    concurrency: int = Field(256, ge=1, le=4096, description="Problems whose loops are in flight at once.")
    generation: GenerationSettings = Field(default_factory=GenerationSettings,
                                           description="Engine, sampling (max_tokens, seed), prompts, actors.")
    execution: ExecutionPool = Field(default_factory=ExecutionPool, description="Sandbox actors.")
    time_limits: TimeLimits = Field(default_factory=TimeLimits, description="Per-problem time limits.")
    verifiers: VerifierSettings = Field(default_factory=VerifierSettings, description="Verifier settings (checkpoints "
                                        "of orm/pairwise, the judge's engine, limits).")
    output: str = Field("runs/scale", description="Output directory (re-use it to resume).")
    ray_address: str | None = Field(None, description="Ray cluster to join; None: RAY_ADDRESS or a local one.")

    @model_validator(mode="after")
    def _check(self):
        if self.dataset in MATH_DATASETS:
            if not self.dataset_path:
                raise ValueError(f"{self.dataset} is read from a file in its public format: give --dataset_path")
            self.scale().check_answers_only()
        else:
            check_dataset(self.dataset, self.dataset_path)
        if self.verifier not in VERIFIER_NAMES or self.verifier == "rvbs":
            raise ValueError(f"verifier must be one of {[v for v in VERIFIER_NAMES if v != 'rvbs']}")
        self.scale()  # the strategy's own checks, before any work
        return self

    def scale(self) -> ScaleSettings:
        budget = self.budget or (32 if self.strategy in TTT_STRATEGIES else 8)
        return ScaleSettings(strategy=self.strategy, budget=budget, mode=self.mode, verifier=self.verifier,
                             feedback=self.feedback, temperature=self.temperature,
                             top_p=None if self.generation.sampling.top_p == 1.0 else self.generation.sampling.top_p,
                             samples_per_call=self.samples_per_call, debug_rounds=self.debug_rounds, ttt=self.ttt,
                             optune=self.optune)


def load_tasks(cfg: ScaleConfig):
    """The problems as raylib.scale.tasks (CodeTasks or MathTasks), --skip and --limit applied; DataError on a bad
    file."""
    from raylib.scale.tasks import CodeTasks, MathTasks

    if cfg.dataset in MATH_DATASETS:
        from raylib.data.math_problems import load_math_problems

        return MathTasks(subset(load_math_problems(cfg.dataset, cfg.dataset_path), cfg.skip, cfg.limit), cfg.dataset)
    from raylib.data.problems import load_problems

    problems = subset(load_problems(cfg.dataset, cfg.dataset_path), cfg.skip, cfg.limit)
    return CodeTasks(problems, cfg.generation.prompt, cfg.protocol)


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(ScaleConfig, argv)
    from raylib.console import job_console
    from raylib.scale.runner import hard_subset, run_scaling

    output = Path(cfg.output)
    try:
        tasks = load_tasks(cfg)
    except (DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with job_console(output, cfg.verbose) as console:
        log_config(cfg, output, file=console.out)
        run_args = dict(dataset=cfg.dataset, execution=cfg.execution, verifiers=cfg.verifiers,
                        time_limits=cfg.time_limits, concurrency=cfg.concurrency, ray_address=cfg.ray_address,
                        progress=console.err)
        try:
            if cfg.hard_subset:
                hard = hard_subset(cfg.hard_subset, tasks, cfg.generation, **run_args)
                print(f"hard subset ({cfg.hard_subset}): {len(hard)} of {len(tasks.problems)} problems failed "
                      "greedily", file=console.out, flush=True)
                tasks.problems = {t: tasks.problems[t] for t in hard}
                if not hard:
                    print("nothing to run: the model solves every problem greedily", file=console.out)
                    return 0
            summary = run_scaling(tasks, cfg.scale(), cfg.generation, output, **run_args)
        except ValueError as err:
            print(f"error: {err}", file=console.err)
            return 2
        print("\n" + (output / "report.md").read_text(), file=console.out)
        print(f"{output}/ attempts.jsonl, scale_summary.json, report.md, scaling.png (logs in "
              f"{console.log_path.name})", file=console.out, flush=True)
        if summary["unfinished"]:
            print(f"error: {len(summary['unfinished'])} problems could not be finished (the sandbox failed); re-run "
                  "with the same --output to finish them", file=console.err)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
