"""Write a sample file made from each problem's reference solution: canonical (passes) and broken variants (fail).

    python jobs/reference_samples.py --dataset humaneval --output runs/demo/samples.jsonl
    python jobs/reference_samples.py --dataset mbpp --dataset-path mbpp.jsonl --variants '[canonical, exception]'

A sanity check for any evaluator (canonical samples must pass, broken ones fail) and the input of `make demo`.
Variants: canonical, and the broken ones in raylib.data.samples.BROKEN_VARIANTS (wrong-result, exception, syntax-error,
infinite-loop). Each row also carries a `variant` field, which evaluators ignore.
"""

import os
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, field_validator, model_validator  # noqa: E402

from raylib.config import JobConfig, load_config  # noqa: E402
from raylib.data.problems import DATASETS, check_dataset  # noqa: E402
from raylib.data.samples import BROKEN_VARIANTS  # noqa: E402
from raylib.files import DataError  # noqa: E402


class ReferenceSamplesConfig(JobConfig):
    dataset: str = Field("humaneval", description=f"Problem set, one of {DATASETS}.")
    dataset_path: str | None = Field(
        None, description="Problem file; None: the shipped one (humaneval, humaneval+, mbpp, mbpp+).")
    output: str = Field("runs/reference_samples.jsonl", description="Sample file to write.")
    variants: list[str] = Field(["canonical", "wrong-result"], description=f"canonical and/or {list(BROKEN_VARIANTS)}.")

    @field_validator("variants")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = [x for x in v if x != "canonical" and x not in BROKEN_VARIANTS]
        if unknown or not v:
            raise ValueError(f"unknown variants {unknown}; expected canonical or one of {list(BROKEN_VARIANTS)}")
        return v

    @model_validator(mode="after")
    def _dataset(self):
        check_dataset(self.dataset, self.dataset_path)
        return self


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(ReferenceSamplesConfig, argv)
    from raylib.data.problems import load_problems
    from raylib.data.samples import reference_samples
    from raylib.files import write_records

    try:
        problems = load_problems(cfg.dataset, cfg.dataset_path)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = reference_samples(problems, tuple(cfg.variants))
    write_records(cfg.output, rows)
    counts = Counter(row["variant"] for row in rows)
    print(f"wrote {len(rows)} samples for {len(problems)} {cfg.dataset} problems to {cfg.output}: {dict(counts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
