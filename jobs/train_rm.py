"""Train a scalar reward model: Bradley-Terry on chosen/rejected pairs, or an outcome reward model on pass/fail.

    python jobs/train_rm.py --data.train runs/data/pairs.jsonl --output runs/rm                    # Bradley-Terry
    python jobs/train_rm.py --objective orm --data.train runs/data/orm.jsonl --output runs/orm    # CodePRM's ORM
    python jobs/train_rm.py --model embedded --data.train pairs.jsonl train.peft.method=lora \\
        train.deepspeed.zero_stage=3
    python jobs/train_rm.py --help        # every option

The model is a sequence classifier with one output (its logit is the score): `minilm` (all-MiniLM-L6-v2, shipped
in a package; the default), `embedded` (SmolLM2 with a score head) or any Hugging Face directory. It reads the task
and the program as a text pair. Data (raylib/train/data/reward.py; jobs/build_datasets.py writes both from
evaluation results): pairs.jsonl `{"prompt", "chosen", "rejected"}` or orm.jsonl `{"prompt", "program", "label"}`.
A validation split (whole tasks held out) reports pairwise accuracy and margin (Bradley-Terry) or accuracy and ROC
AUC (ORM); the objectives: raylib/train/objectives/bradley_terry.py and orm.py.

Writes OUTPUT/model, OUTPUT/metrics.json, OUTPUT/tensorboard, checkpoints under OUTPUT/ray and config.yaml; the same
command resumes after a kill. Exit status: 0 done; 2 bad input or config; 1 failed run.
"""

import os
import sys
from typing import Literal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field  # noqa: E402

from raylib.config import load_config  # noqa: E402
from raylib.train.settings import LoopConfig, TrainData, TrainJobConfig  # noqa: E402


class RewardData(TrainData):
    train: str = Field(..., description="pairs.jsonl (bradley_terry) or orm.jsonl (orm).")
    max_length: int = Field(512, ge=8, description="Longest prompt + program in tokens; a longer one is an error.")


class TrainRMConfig(TrainJobConfig):
    objective: Literal["bradley_terry", "orm"] = Field("bradley_terry", description="Pairs or pass/fail labels.")
    model: str = Field("minilm", description="Backbone: 'minilm', 'embedded', a Hugging Face directory or hub id.")
    data: RewardData = Field(..., description="Training and validation data.")
    output: str = Field("runs/rm", description="Output directory (re-use it to resume after a kill).")


def prepare(cfg: TrainRMConfig) -> tuple[LoopConfig, list, list, str]:
    """(loop config, training and validation examples, a one-line summary): everything checked before any worker
    starts. Raises DataError / ValueError / FileNotFoundError naming what is wrong."""
    from raylib.models import resolve_model
    from raylib.train.data.reward import read_orm_file, read_pair_file
    from raylib.train.loop import prepare_tokenizer
    from raylib.train.runner import check_run

    read = read_pair_file if cfg.objective == "bradley_terry" else read_orm_file
    model = resolve_model(cfg.model)
    tokenizer = prepare_tokenizer(model)
    train, validation = cfg.data.splits(lambda path: read(path, tokenizer, cfg.data.max_length), cfg.train.optim.seed)
    loop = LoopConfig(objective=cfg.objective, model=model, settings=cfg.train)
    steps = check_run(loop, len(train))
    return loop, train, validation, (f"{len(train)} training and {len(validation)} validation examples, {steps} "
                                     "steps per epoch")


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(TrainRMConfig, argv)
    from raylib.files import DataError
    from raylib.train.runner import launch_job

    try:
        loop, train, validation, summary = prepare(cfg)
    except (DataError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return launch_job(loop, train, validation, cfg.output, cfg.ray_address, config=cfg, verbose=cfg.verbose,
                      summary=summary)


if __name__ == "__main__":
    sys.exit(main())
