"""Train a CodeFavor-style pairwise preference model: task + code A + code B -> which is better (A or B).

    python jobs/train_pref.py --data.train runs/data/pairs.jsonl --output runs/pref
    python jobs/train_pref.py --model embedded --data.train pairs.jsonl train.peft.method=lora
    python jobs/train_pref.py --help        # every option

A two-class sequence classifier (`minilm` by default, `embedded` or any Hugging Face directory) reads the text of
`raylib.train.data.reward.preference_prompt`. Every pair `{"prompt", "chosen", "rejected"}` (pairs.jsonl from
jobs/build_datasets.py) is trained in both orders (chosen as A: label 0; as B: label 1), so position carries no
signal. A validation split (whole tasks held out, both orders of a pair together) reports accuracy (the objective:
raylib/train/objectives/pairwise.py).

Writes OUTPUT/model, OUTPUT/metrics.json, OUTPUT/tensorboard, checkpoints under OUTPUT/ray and config.yaml; the same
command resumes after a kill. Exit status: 0 done; 2 bad input or config; 1 failed run.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field  # noqa: E402

from raylib.config import load_config  # noqa: E402
from raylib.train.settings import LoopConfig, TrainData, TrainJobConfig  # noqa: E402


class PreferenceData(TrainData):
    train: str = Field(..., description="pairs.jsonl: {prompt, chosen, rejected} per line.")
    max_length: int = Field(512, ge=8, description="Longest task + both programs in tokens; a longer one is an error.")


class TrainPrefConfig(TrainJobConfig):
    model: str = Field("minilm", description="Backbone: 'minilm', 'embedded', a Hugging Face directory or hub id.")
    data: PreferenceData = Field(..., description="Training and validation pairs.")
    output: str = Field("runs/pref", description="Output directory (re-use it to resume after a kill).")


def prepare(cfg: TrainPrefConfig) -> tuple[LoopConfig, list, list, str]:
    """(loop config, training and validation examples, a one-line summary): everything checked before any worker
    starts. Raises DataError / ValueError / FileNotFoundError naming what is wrong."""
    from raylib.models import resolve_model
    from raylib.train.data.reward import read_preference_file
    from raylib.train.loop import prepare_tokenizer
    from raylib.train.runner import check_run

    model = resolve_model(cfg.model)
    tokenizer = prepare_tokenizer(model)
    train, validation = cfg.data.splits(lambda path: read_preference_file(path, tokenizer, cfg.data.max_length),
                                        cfg.train.optim.seed)
    loop = LoopConfig(objective="pairwise", model=model, settings=cfg.train)
    steps = check_run(loop, len(train))
    return loop, train, validation, (f"{len(train)} training and {len(validation)} validation examples (both "
                                     f"orders), {steps} steps per epoch")


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(TrainPrefConfig, argv)
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
