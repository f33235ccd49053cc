"""Reranking as one library call: score every problem's candidates with the named verifiers (streaming through
their actor pools), label them with the hidden tests (an existing evaluation, or one run here), then report how
often each verifier's pick is right.

    from raylib.rerank.pipeline import rerank
    from raylib.rerank.settings import VerifierSettings
    result = rerank(problems, samples, ["public-tests", "orm"], "runs/rerank",
                    settings=VerifierSettings(reward_model={"model": "runs/orm/model"}), results="runs/eval")
    result.summary["verifiers"]["orm"]["top1"]

Writes OUTPUT/scores.jsonl (per sample and verifier: task_id, sample_id, program_sha, verifier, score, details;
written as problems finish, rewritten in (problem, sample, verifier) order at the end), rerank_summary.json,
report.md and best_of_k.png; without `results`, the hidden-test evaluation in OUTPUT/evaluation/ (as
jobs/evaluate.py writes it). Calling it again on the same output directory scores only what is missing, and a
finished run's files are the same whether or not it was interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import TextIO

from raylib.data.problems import Problem, problems_sha
from raylib.data.samples import Sample
from raylib.evaluate.requests import row_key
from raylib.evaluate.results_file import ResultsFile
from raylib.files import DataError, JsonlStore, read_records, write_json
from raylib.rerank.base import RETRY, Score
from raylib.rerank.selection import chain_order
from raylib.rerank.settings import CONSUMES_PRIOR, VerifierSettings, check_settings, parse_chain, ranking_chain
from sandbox.schema import INFRA_STATUS

__all__ = ["RerankSummary", "ScoresFile", "claim_rerank_output", "hidden_test_labels", "rerank"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RerankSummary:
    """What a rerank run produced: rerank_summary.json's content and where the outputs are."""

    summary: dict
    output: Path

    def top1(self, verifier: str) -> float:
        return self.summary["verifiers"][verifier]["top1"]


class ScoresFile(JsonlStore):
    """scores.jsonl, keyed by (task_id, sample_id, program hash, verifier). A score the infrastructure could not
    produce (details `retry`: a sandbox failure, an endpoint error) is not done: the next run scores it again."""

    def key_of_row(self, row: dict) -> tuple:
        return (*row_key(row["task_id"], row["sample_id"], row["program_sha"]), row["verifier"])

    @staticmethod
    def key_of(sample: Sample, verifier: str) -> tuple:
        return (*ResultsFile.key_of(sample), verifier)

    def is_done(self, row: dict) -> bool:
        return not row.get("details", {}).get(RETRY)


def claim_rerank_output(output: str | Path, dataset: str, dataset_problems: dict[str, Problem],
                        names: list[str], settings: VerifierSettings) -> str | None:
    """Tie the output directory to one problem set and, per verifier, one set of its settings: returns what differs
    from the runs that wrote it, or None (then OUTPUT/rerank_identity.json records this run). A verifier the
    directory has not seen yet may be added (its scores join the others')."""
    identity = {"dataset": dataset, "problems_sha": problems_sha(dataset_problems),
                **{f"verifier {name}": _section(settings, name) for name in names}}
    path = Path(output) / "rerank_identity.json"
    before = json.loads(path.read_text()) if path.exists() else {}
    changed = [key for key, value in identity.items() if key in before and before[key] != value]
    if changed:
        return ", ".join(changed)
    write_json(path, {**before, **identity})
    return None


_SECTIONS = {"public-tests": "public_tests", "clustering": "clustering", "orm": "reward_model",
             "pairwise": "pairwise", "judge": "judge", "judge-pairwise": "judge", "rvbs": "rvbs"}
_LAYOUT = {"workers_per_actor", "actors", "batch_size", "cpus_per_actor", "gpus_per_actor"}  # not what scores mean


def _section(settings: VerifierSettings, name: str) -> dict | None:
    """What a verifier's scores depend on (its settings less how its actors are laid out)."""
    field = _SECTIONS.get(name)
    return getattr(settings, field).model_dump(mode="json", exclude=_LAYOUT) if field else None


def hidden_test_labels(results: str | Path, samples: list[Sample], dataset_sha: str | None = None
                       ) -> dict[tuple, bool]:
    """{(task_id, sample_id, program sha): passed} from an evaluation's results.jsonl (or its directory).

    Args:
        dataset_sha: `problems_sha` of the whole dataset: when the evaluation's directory records another
            (evaluation_identity.json: say HumanEval+ verdicts for a HumanEval rerank), they are refused.

    Raises:
        DataError: the file lacks some of `samples` (names how many and the first), a row lacks a field, or the
            verdicts are of other problems.
    """
    path = Path(results)
    path = path / "results.jsonl" if path.is_dir() else path
    identity = path.parent / "evaluation_identity.json"
    if dataset_sha and identity.exists():
        recorded = json.loads(identity.read_text())
        if recorded.get("problems_sha") != dataset_sha:
            raise DataError(path, 0, f"these verdicts are of other problems (dataset {recorded.get('dataset')!r}, "
                            f"problems_sha {recorded.get('problems_sha')}; this run's is {dataset_sha})")
    if not path.exists():
        raise DataError(path, 0, "no such results file (expected an evaluation's results.jsonl or its directory)")
    labels = {}
    for line, row in read_records(path):
        missing = [f for f in ("task_id", "sample_id", "program_sha", "passed", "status") if f not in row]
        if missing:
            raise DataError(path, line, f"results row lacks field(s) {missing}")
        if row["status"] != INFRA_STATUS:
            labels[row_key(row["task_id"], row["sample_id"], row["program_sha"])] = bool(row["passed"])
    absent = [s for s in samples if ResultsFile.key_of(s) not in labels]
    if absent:
        raise DataError(path, 0, f"no verdict for {len(absent)} of the {len(samples)} samples (first: "
                        f"{absent[0].task_id} sample {absent[0].sample_id}; a changed program counts as absent): "
                        "evaluate this sample file there, or leave out --results to evaluate here")
    return labels


def rerank(problems: dict[str, Problem], samples: list[Sample], verifiers: str | list[str], output: str | Path, *,
           settings: VerifierSettings | None = None, results: str | Path | None = None, evaluation: dict | None = None,
           problems_per_batch: int = 4, sandbox: dict | None = None, dataset_sha: str | None = None,
           ray_address: str | None = None,
           meta: dict | None = None, title: str = "", progress: bool | TextIO = True) -> RerankSummary:
    """Score `samples` with `verifiers` and report how well each picks a passing one.

    Args:
        problems: {task_id: Problem}; every sample's task must be among them.
        samples: the candidates (`raylib.data.samples.read_samples`).
        verifiers: names, e.g. "public-tests,orm" (raylib.rerank.settings.VERIFIER_NAMES).
        output: the output directory (re-use it to resume).
        settings: each verifier's settings (default `VerifierSettings()`).
        results: an evaluation of these samples (its directory or results.jsonl) to label them with; None: evaluate
            them here, into OUTPUT/evaluation.
        evaluation: keyword arguments for `raylib.evaluate.pipeline.evaluate` when it runs here (execution,
            time_limits, infra_retries).
        problems_per_batch: problems per actor call.
        sandbox: extra sandbox.SandboxConfig fields for the execution verifiers.
        dataset_sha: `problems_sha` of the whole dataset, to check `results` against (see hidden_test_labels).
        ray_address: cluster to join; None: RAY_ADDRESS or a new local one.
        meta: extra keys for rerank_summary.json.
        title: the report's title.
        progress: show a progress bar (on stderr, or on the stream given).

    Raises:
        ValueError: unknown verifiers, a verifier without what it needs, samples of unknown tasks.
        DataError: `results` lacks some samples, or holds verdicts of other problems.
        InfrastructureError: the evaluation here could not run.
    """
    names = parse_chain(verifiers)
    settings = settings or VerifierSettings()
    check_settings(names, settings)
    if not samples:
        raise ValueError("nothing to rerank: no samples")
    unknown = {s.task_id for s in samples} - problems.keys()
    if unknown:
        raise ValueError(f"samples of tasks that are not among the problems: {sorted(unknown)[:5]}")
    output = Path(output)
    if results is not None:
        labels = hidden_test_labels(results, samples, dataset_sha)
    else:
        from raylib.cluster import InfrastructureError
        from raylib.evaluate.pipeline import evaluate

        done = evaluate(problems, output / "evaluation", samples=samples, ray_address=ray_address,
                        progress=progress, title=title, **(evaluation or {}))
        if not done.complete:
            raise InfrastructureError(f"{done.infra_errors} samples could not be evaluated (sandbox infrastructure); "
                                      "re-run with the same output to retry them")
        labels = hidden_test_labels(output / "evaluation", samples)

    by_task: dict[str, list[Sample]] = {}
    for sample in sorted(samples, key=lambda s: s.sample_id):
        by_task.setdefault(sample.task_id, []).append(sample)
    order = [t for t in problems if t in by_task]
    store = ScoresFile(output / "scores.jsonl")
    try:
        _score_pending(order, by_task, names, settings, problems, store, problems_per_batch, sandbox, ray_address,
                       progress)
        keys = [ScoresFile.key_of(s, name) for t in order for s in by_task[t] for name in names]
        stale = store.lines.keys() - set(keys)  # scores of samples or verifiers this run does not have: kept aside
        if stale:
            store.set_aside(sorted(stale, key=str), ".stale")
        store.rewrite([k for k in keys if k in store.lines])
        rows = {k: json.loads(store.lines[k]) for k in keys if k in store.lines}
    finally:
        store.close()

    from raylib.rerank.metrics import summarize_rerank
    from raylib.rerank.report import best_of_k, write_rerank_report

    chain = ranking_chain(names)
    per_problem = {}
    for task in order:
        passed = [labels[ResultsFile.key_of(s)] for s in by_task[task]]
        values = {name: [rows.get(ScoresFile.key_of(s, name), {}).get("score") for s in by_task[task]]
                  for name in names}
        per_problem[task] = {name: (values[name], passed) for name in names}
        if len(chain) > 1:
            per_problem[task][",".join(names)] = (chain_order([values[n] for n in chain]), passed)
    curves = best_of_k(per_problem)
    summary = {"verifiers": summarize_rerank(per_problem, problems), "verifier_order": names,
               "problems": len(order), "samples": len(samples), "best_of_k": curves, **(meta or {})}
    write_json(output / "rerank_summary.json", summary)
    write_rerank_report(summary, curves, output, title=title or str(output))
    return RerankSummary(summary=summary, output=output)


def _score_pending(order: list[str], by_task: dict[str, list[Sample]], names: list[str], settings: VerifierSettings,
                   problems: dict[str, Problem], store: ScoresFile, problems_per_batch: int, sandbox: dict | None,
                   ray_address: str | None, progress: bool | TextIO) -> None:
    """Score every problem that lacks a score of some sample and verifier, with a progress bar over problems. Only
    the verifiers with missing scores run; one that builds on another (rvbs) reads that one's stored scores when it
    does not run again."""
    from raylib.console import progress_bar

    done = store.done

    def missing(task: str, name: str) -> bool:
        return any(ScoresFile.key_of(s, name) not in done for s in by_task[task])

    pending = [t for t in order if any(missing(t, n) for n in names)]
    if len(pending) < len(order):
        log.info("resuming: %d of %d problems already scored in %s", len(order) - len(pending), len(order),
                 store.path)
    if not pending:
        return
    import ray

    from raylib.cluster import init_cluster
    from raylib.rerank.stage import decode_scores, score_column, scoring_stages

    run = [n for n in names if any(missing(t, n) for t in pending)]
    prior_of = {name: names[names.index(name) - 1] for name in run if name in CONSUMES_PRIOR}
    stored = [p for p in prior_of.values() if p not in run]  # priors read back from scores.jsonl
    init_cluster(ray_address)
    bar = progress_bar(len(order), "scoring", progress, initial=len(order) - len(pending), unit="problem")
    items = [{"task_id": t, "programs": json.dumps([s.program for s in by_task[t]]),
              **{score_column(p): _stored_scores(store, by_task[t], p) for p in stored}} for t in pending]
    dataset = ray.data.from_items(items, override_num_blocks=max(1, math.ceil(len(items) / problems_per_batch)))
    stages = scoring_stages(dataset, run, settings, {t: problems[t] for t in pending}, problems_per_batch, sandbox,
                            prior_of)
    for batch in stages.iter_batches(batch_size=None, batch_format="pyarrow"):
        task_ids = batch.column("task_id").to_pylist()
        columns = {name: batch.column(score_column(name)).to_pylist() for name in run}
        rows = []
        for i, task in enumerate(task_ids):
            for name in run:
                for sample, score in zip(by_task[task], decode_scores(columns[name][i])):
                    rows.append({"task_id": task, "sample_id": sample.sample_id, "program_sha": sample.sha,
                                 "verifier": name, "score": score.value, "details": score.details})
        store.append(rows)
        bar.update(len(task_ids))
    bar.close()


def _stored_scores(store: ScoresFile, samples: list[Sample], name: str) -> str:
    """A verifier's stored scores of a task's samples, as a scoring stage's column holds them."""
    from raylib.rerank.stage import encode_scores

    rows = [json.loads(store.lines[ScoresFile.key_of(s, name)]) for s in samples]
    return encode_scores([Score(row["score"], row["details"]) for row in rows])
