"""Rerank candidate programs without their hidden tests: score each problem's samples with one or more verifiers,
then measure how often each verifier's pick passes the hidden tests.

    python jobs/rerank.py --dataset humaneval --samples S.jsonl --verifier public-tests --output runs/rerank
    python jobs/rerank.py --dataset humaneval --samples S.jsonl --verifier public-tests,orm --model runs/orm/model \\
        --results runs/eval --output runs/rerank_orm                 # reuse an evaluation of S.jsonl for the labels
    python jobs/rerank.py --dataset mbpp+ --samples S.jsonl --verifier self-consistency,clustering --output runs/r
    python jobs/rerank.py --dataset humaneval --samples S.jsonl --verifier orm,rvbs --model runs/orm/model \\
        --selector runs/selector --output runs/rvbs                  # LLMExecutor's RVBS over the ORM's scores
    python jobs/rerank.py --help        # every option and every verifier's settings

Verifiers (raylib/rerank/settings.py has the table): public-tests, clustering, self-consistency (no model needed),
orm and pairwise (--model: a checkpoint of jobs/train_rm.py / jobs/train_pref.py or any HF sequence classifier),
judge and judge-pairwise (an LLM over vLLM or an OpenAI-compatible endpoint: verifiers.judge.engine.*), rvbs
(--selector from jobs/train_selector.py, after another verifier). Several, comma-separated, are each reported alone
and as a chain (ranked by the first, ties broken by the next).

Writes OUTPUT/scores.jsonl (per sample and verifier), rerank_summary.json (per verifier and chain: top1, pass@1,
pass@n, rank@k, overall and by difficulty/tag), report.md, best_of_k.png, config.yaml and job.log; without
--results, the hidden-test evaluation in OUTPUT/evaluation/. Re-running with the same output directory scores only
what is missing. The work is `raylib.rerank.pipeline.rerank`.
Exit status: 0 done; 2 bad input or config; 3 the infrastructure failed - re-run.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, model_validator  # noqa: E402

from raylib.config import ConsoleJobConfig, load_config, log_config  # noqa: E402
from raylib.data.problems import DATASETS, check_dataset  # noqa: E402
from raylib.evaluate.limits import TimeLimits  # noqa: E402
from raylib.evaluate.stage import ExecutionPool  # noqa: E402
from raylib.files import DataError  # noqa: E402
from raylib.rerank.settings import VerifierSettings, check_settings, parse_chain  # noqa: E402


class RerankConfig(ConsoleJobConfig):
    dataset: str = Field("humaneval", description=f"Problem set, one of {DATASETS}.")
    dataset_path: str | None = Field(
        None, description="Problem file; None: the shipped one (humaneval, humaneval+, mbpp, mbpp+).")
    samples: str = Field(..., description="Sample file (task_id + completion or solution, as jobs/evaluate.py reads).")
    verifier: str = Field("public-tests", description="Verifier name(s), comma-separated: public-tests, clustering, "
                          "self-consistency, orm, pairwise, judge, judge-pairwise, rvbs.")
    model: str | None = Field(None, description="Shortcut for the checkpoint of orm (verifiers.reward_model.model) "
                              "and pairwise (verifiers.pairwise.model).")
    selector: str | None = Field(None, description="Shortcut for verifiers.rvbs.selector.")
    results: str | None = Field(None, description="An evaluation of the same samples (its output directory or "
                                "results.jsonl) for the hidden-test labels; None: evaluate them here.")
    limit: int | None = Field(None, ge=1, description="The first N problems only.")
    output: str = Field("runs/rerank", description="Output directory (re-use it to resume).")
    extract_code: bool = Field(False, description="Take code out of chat-style samples first.")
    skip_invalid: bool = Field(False, description="Skip (and report) invalid sample lines instead of stopping.")
    verifiers: VerifierSettings = Field(default_factory=VerifierSettings, description="Each verifier's settings.")
    problems_per_batch: int = Field(4, ge=1, description="Problems per verifier actor call.")
    time_limits: TimeLimits = Field(default_factory=TimeLimits, description="Hidden-test time limits (without "
                                    "--results).")
    execution: ExecutionPool = Field(default_factory=ExecutionPool, description="Hidden-test execution pool and the "
                                     "sandbox (its `sandbox` settings apply to the execution verifiers too).")
    infra_retries: int = Field(2, ge=0, le=10, description="Rounds re-running samples whose sandbox failed.")
    ray_address: str | None = Field(None, description="Ray cluster to join; None: RAY_ADDRESS or a local one.")

    @model_validator(mode="after")
    def _check(self):
        check_dataset(self.dataset, self.dataset_path)
        names = parse_chain(self.verifier)
        if self.model:
            self.verifiers.reward_model.model = self.verifiers.reward_model.model or self.model
            self.verifiers.pairwise.model = self.verifiers.pairwise.model or self.model
        if self.selector:
            self.verifiers.rvbs.selector = self.selector
        check_settings(names, self.verifiers)
        return self


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(RerankConfig, argv)
    from raylib.cluster import InfrastructureError
    from raylib.console import job_console
    from raylib.data.problems import load_problems, problems_sha
    from raylib.data.samples import read_samples
    from raylib.evaluate.pipeline import claim_evaluation_output
    from raylib.rerank.pipeline import claim_rerank_output, rerank
    from raylib.rerank.report import difficulty_table, rerank_table

    output = Path(cfg.output)
    names = parse_chain(cfg.verifier)
    try:
        dataset = load_problems(cfg.dataset, cfg.dataset_path)
        problems = dict(list(dataset.items())[:cfg.limit]) if cfg.limit else dataset
        samples, skipped = read_samples(cfg.samples, problems, extract=cfg.extract_code, skip_invalid=cfg.skip_invalid)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for err in skipped[:20]:
        print(f"skipped: {err}", file=sys.stderr)
    if not samples:
        print(f"error: no valid samples in {cfg.samples}", file=sys.stderr)
        return 2
    changed = claim_rerank_output(output, cfg.dataset, dataset, names, cfg.verifiers)
    if not changed and not cfg.results:  # the hidden tests run here, into OUTPUT/evaluation, as jobs/evaluate.py would
        changed = claim_evaluation_output(output / "evaluation", cfg.dataset, dataset, cfg.time_limits, cfg.execution,
                                          cfg.extract_code)
    if changed:
        print(f"error: {output} holds scores from other problems or verifier settings (changed: {changed}); use a "
              "new --output, or delete it to start over", file=sys.stderr)
        return 2
    with job_console(output, cfg.verbose) as console:
        log_config(cfg, output, file=console.out)
        print(f"{cfg.dataset}: {len(samples)} samples for {len({s.task_id for s in samples})} tasks from "
              f"{cfg.samples}; verifiers {', '.join(names)}", file=console.out, flush=True)
        evaluation = {"execution": cfg.execution, "time_limits": cfg.time_limits, "infra_retries": cfg.infra_retries}
        try:
            result = rerank(problems, samples, names, output, settings=cfg.verifiers, results=cfg.results,
                            evaluation=evaluation, problems_per_batch=cfg.problems_per_batch,
                            sandbox=cfg.execution.sandbox, dataset_sha=problems_sha(dataset),
                            ray_address=cfg.ray_address,
                            meta={"dataset": cfg.dataset, "samples_file": cfg.samples},
                            title=f"{cfg.dataset}: {Path(cfg.samples).name}", progress=console.err)
        except (DataError, ValueError, FileNotFoundError) as err:
            print(f"error: {err}", file=console.err)
            return 2
        except InfrastructureError as err:
            print(f"error: {err}", file=console.err)
            return 3
        print("\n" + rerank_table(result.summary), file=console.out)
        by_difficulty = difficulty_table(result.summary)
        if by_difficulty:
            print("\n" + by_difficulty, file=console.out)
        print(f"\nscores in {output}/ (scores.jsonl, rerank_summary.json, report.md, best_of_k.png; logs in "
              f"{console.log_path.name})", file=console.out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
