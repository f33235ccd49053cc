"""Train the RVBS selector (LLMExecutor): a random forest (or LightGBM) over answer groups of a base verifier's scores.

    python jobs/train_selector.py --data runs/data/candidates.jsonl --output runs/selector
    python jobs/train_selector.py --data runs/rerank --base-verifier orm --results runs/eval/results.jsonl \\
        --output runs/selector
    python jobs/train_selector.py --data candidates.jsonl --kind lightgbm --folds 10
    python jobs/train_selector.py --help        # every option

Data, either:
  - a JSONL of per-candidate rows {"task_id", "answer" (the text candidates are grouped on; without it, "program"
    normalised by raylib.rerank.selection.normalise_code), "score" (the base verifier's), "passed" (bool)}, or
  - a rerank output directory: its scores.jsonl rows {"task_id", "sample_id", "verifier", "score", "details"} of
    --base-verifier, joined on (task_id, sample_id) with --results rows {"task_id", "sample_id", "passed", "program"}
    (tasks where the base verifier gave some candidate no score are left out).

Each task's candidates are grouped by answer; each group is one row of raylib.rerank.selection.group_features,
labelled 1 when its programs pass. Cross-validation over whole tasks reports group accuracy / ROC AUC and how often
the chosen group passes (beside picking the base verifier's best and the largest group); then the selector is fitted
on everything. Writes OUTPUT/selector.joblib, OUTPUT/selector.json (feature names, kind, versions), metrics.json and
config.yaml. Exit status: 0 done; 2 bad input or config.
"""

import os
import sys
from pathlib import Path
from typing import Literal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field  # noqa: E402

from raylib.config import JobConfig, load_config, log_config  # noqa: E402
from raylib.files import DataError  # noqa: E402


class TrainSelectorConfig(JobConfig):
    data: str = Field(..., description="Per-candidate JSONL, or a rerank output directory (with --base-verifier "
                      "and --results).")
    base_verifier: str | None = Field(None, description="With a rerank directory: the verifier whose scores the "
                                      "groups are built from.")
    results: str | None = Field(None, description="With a rerank directory: results.jsonl of jobs/evaluate.py "
                                "(pass labels and programs).")
    kind: Literal["random_forest", "lightgbm"] = Field("random_forest", description="The classifier.")
    folds: int = Field(5, ge=2, description="Cross-validation folds (whole tasks; at most one per task).")
    seed: int = Field(0, description="The classifier's random_state.")
    output: str = Field("runs/selector", description="Output directory.")


def read_tasks(cfg: TrainSelectorConfig) -> tuple[dict, int]:
    """{task_id: [(answer, score, passed), ...]} and how many tasks were left out for unknown scores."""
    from raylib.rerank.selector import read_candidate_rows, read_rerank_output

    if not Path(cfg.data).is_dir():
        return read_candidate_rows(cfg.data), 0
    if not cfg.base_verifier or not cfg.results:
        raise ValueError(f"{cfg.data} is a rerank output directory: give --base-verifier and --results too")
    return read_rerank_output(cfg.data, cfg.base_verifier, cfg.results)


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(TrainSelectorConfig, argv)
    from raylib.files import write_json
    from raylib.rerank.selector import cross_validate, group_table, save_selector, train_selector

    try:
        tasks, skipped = read_tasks(cfg)
        rows, labels, row_tasks, best_scores = group_table(tasks)
        if len(set(labels)) < 2:
            raise ValueError(f"{cfg.data}: every group is labelled {labels[0]}; a selector needs passing and failing "
                             "groups")
        cv = cross_validate(rows, labels, row_tasks, best_scores, cfg.kind, cfg.seed, cfg.folds)
    except (DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    log_config(cfg, cfg.output)
    model = train_selector(rows, labels, cfg.kind, cfg.seed)
    metrics = {**cv, "tasks_skipped_unknown_scores": skipped, "positive_groups": sum(labels)}
    save_selector(model, Path(cfg.output) / "selector.joblib",
                  {"base_verifier": cfg.base_verifier, "data": cfg.data, "seed": cfg.seed, "metrics": metrics})
    write_json(Path(cfg.output) / "metrics.json", metrics)
    auc = "n/a" if cv["group_auc"] is None else f"{cv['group_auc']:.3f}"
    print(f"{cv['tasks']} tasks, {cv['groups']} groups ({sum(labels)} correct); {cv['folds']}-fold CV: group accuracy "
          f"{cv['group_accuracy']:.3f}, AUC {auc}; chosen group passes {cv['select_accuracy']:.3f} (base verifier's "
          f"best {cv['base_accuracy']:.3f}, largest group {cv['majority_accuracy']:.3f}) -> {cfg.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
