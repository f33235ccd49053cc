"""Build training data from an evaluation's results: ORM examples, pass-vs-fail pairs and rejection-sampled SFT data.

    python jobs/build_datasets.py --results runs/eval/results.jsonl --dataset humaneval --output runs/data
    python jobs/build_datasets.py --results r.jsonl --dataset mbpp+ --dataset-path MbppPlus.jsonl --pairs-per-task 16
    python jobs/build_datasets.py --results runs/eval/results.jsonl --limit 100 --output runs/data_first100
    python jobs/build_datasets.py --config configs/codeprm_orm_data.yaml      # CodePRM's class-balanced ORM set

Writes OUTPUT/orm.jsonl, OUTPUT/pairs.jsonl and OUTPUT/sft.jsonl (their fields: raylib/train/data/from_results.py)
and config.yaml.
The problems give each example its prompt; samples whose sandbox failed are left out.
"""

import os
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, model_validator  # noqa: E402

from raylib.config import JobConfig, load_config, log_config  # noqa: E402
from raylib.data.problems import DATASETS, check_dataset  # noqa: E402
from raylib.files import DataError  # noqa: E402


class BuildDatasetsConfig(JobConfig):
    results: str = Field(..., description="results.jsonl written by jobs/evaluate.py.")
    dataset: str = Field("humaneval", description=f"The problem set the results are for, one of {DATASETS}.")
    dataset_path: str | None = Field(
        None, description="Problem file; None: the shipped one (humaneval, humaneval+, mbpp, mbpp+).")
    output: str = Field("runs/datasets", description="Output directory.")
    pairs_per_task: int = Field(8, ge=1, description="Most pass-vs-fail pairs per task.")
    sft_per_task: int = Field(4, ge=1, description="Most passing programs per task kept for SFT.")
    orm_per_class: int | None = Field(
        None, ge=1, description="None: orm.jsonl has every distinct program. N: CodePRM's class-balanced ORM set: up "
        "to N passing and N failing programs per problem (min of the two counts), then as many failing as passing "
        "examples overall (raylib.train.data.from_results.balanced_orm_examples; CodeRM used 50).")
    limit: int | None = Field(None, ge=1, description="Only the results of the dataset's first N problems (the rest "
                              "held out, e.g. for selection with --skip N).")
    seed: int = Field(0, description="Seed for which pairs and programs are kept.")

    @model_validator(mode="after")
    def _check(self):
        check_dataset(self.dataset, self.dataset_path)
        return self


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(BuildDatasetsConfig, argv)
    from raylib.data.problems import load_problems
    from raylib.files import write_records
    from raylib.train.data.from_results import (
        balanced_orm_examples,
        orm_examples,
        preference_pairs,
        read_results,
        sft_examples,
    )

    try:
        problems = load_problems(cfg.dataset, cfg.dataset_path)
        rows = read_results(cfg.results)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    unknown = sorted({r["task_id"] for r in rows} - problems.keys())
    if unknown:
        print(f"error: {cfg.results} has results for {len(unknown)} tasks not in {cfg.dataset} (e.g. {unknown[0]!r}): "
              "wrong --dataset?", file=sys.stderr)
        return 2
    if cfg.limit:
        kept = set(list(problems)[:cfg.limit])
        rows = [r for r in rows if r["task_id"] in kept]
    log_config(cfg, cfg.output)
    built = {
        "orm.jsonl": orm_examples(rows, problems) if cfg.orm_per_class is None
        else balanced_orm_examples(rows, problems, cfg.orm_per_class, cfg.seed),
        "pairs.jsonl": preference_pairs(rows, problems, cfg.pairs_per_task, cfg.seed),
        "sft.jsonl": sft_examples(rows, problems, cfg.sft_per_task, cfg.seed),
    }
    for name, examples in built.items():
        write_records(os.path.join(cfg.output, name), examples)
    labels = Counter(e["label"] for e in built["orm.jsonl"])
    print(f"{len(rows)} results -> orm.jsonl {len(built['orm.jsonl'])} ({labels[1]} pass, {labels[0]} fail), "
          f"pairs.jsonl {len(built['pairs.jsonl'])}, sft.jsonl {len(built['sft.jsonl'])} in {cfg.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
