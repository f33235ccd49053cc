"""Supervised fine-tuning of a causal LM on Ray Train + DeepSpeed (loss on the assistant part only).

    python jobs/sft.py --data.train runs/data/sft.jsonl --output runs/sft                  # embedded SmolLM2, ZeRO-2
    python jobs/sft.py --config configs/sft_rejection_sampling.yaml train.peft.method=lora train.peft.merge=true
    python jobs/sft.py --data.train reflection.jsonl --distillation.weight 1.0 --output runs/reflection
    ray job submit --working-dir . -- python jobs/sft.py --data.train /shared/sft.jsonl --output /shared/runs/sft \\
        --model /shared/models/base train.scaling.use_gpu=true train.scaling.workers=8 train.deepspeed.zero_stage=3
    python jobs/sft.py --help        # every option

Data (raylib/train/data/sft.py): chat `{"messages": [...]}`, `{"prompt", "completion"}`, or ReflectionCoder
reflection sequences (raylib/train/data/reflection.py; their execution blocks are left out of the loss, and
`distillation.weight` > 0 trains the reflection objective: the self-distillation term with dynamic block masking,
raylib/train/objectives/reflection.py). jobs/build_datasets.py writes sft.jsonl from evaluation results (rejection
sampling). Every line is checked and encoded here before any worker starts.

Writes OUTPUT/model (a Hugging Face directory, or the PEFT adapter; OUTPUT/merged with train.peft.merge),
OUTPUT/metrics.json, OUTPUT/tensorboard, OUTPUT/ray/train/checkpoint_* and config.yaml. Run the same command again
after a kill and it resumes from the latest checkpoint. Exit status: 0 done; 2 bad input or config; 1 failed run.
"""

import os
import sys
from typing import Literal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, model_validator  # noqa: E402

from raylib.config import load_config  # noqa: E402
from raylib.train.settings import DistillationSettings, LoopConfig, TrainData, TrainJobConfig  # noqa: E402


class SFTData(TrainData):
    train: str = Field(..., description="Training JSONL (chat, prompt/completion or reflection).")
    validation_fraction: float = Field(0.0, ge=0, lt=1, description="Share of tasks held out when no validation file.")
    max_length: int = Field(2048, ge=8, description="Longest example in tokens; a longer one is an error.")
    format: Literal["auto", "chat", "prompt_completion", "reflection"] = Field(
        "auto", description="Example format; auto tells them apart per line.")
    packing: bool = Field(False, description="Pack several examples per row (block-diagonal attention).")


class SFTConfig(TrainJobConfig):
    model: str = Field("embedded", description="Model to fine-tune: 'embedded', a Hugging Face directory or hub id.")
    data: SFTData = Field(..., description="Training and validation data.")
    output: str = Field("runs/sft", description="Output directory (re-use it to resume after a kill).")
    distillation: DistillationSettings = Field(default_factory=DistillationSettings,
                                               description="ReflectionCoder self-distillation.")

    @model_validator(mode="after")
    def _check(self):
        if self.distillation.weight > 0 and self.data.packing:
            raise ValueError("distillation needs one example per row: set data.packing=false")
        if self.data.packing and self.train.peft.method == "prefix":
            raise ValueError("data.packing with train.peft.method=prefix: the packed rows' block-diagonal mask "
                             "does not cover prefix tuning's virtual tokens; turn packing off")
        if self.distillation.weight > 0 and self.data.format not in ("auto", "reflection"):
            raise ValueError(f"distillation needs reflection data, not data.format={self.data.format}")
        return self


def encode(cfg: SFTConfig, tokenizer) -> tuple[list, list]:
    """Encoded (train, validation) examples; raises DataError / ValueError naming what is wrong."""
    from raylib.files import DataError
    from raylib.train.data.sft import pack_examples, read_sft_file

    train, validation = cfg.data.splits(lambda path: read_sft_file(path, tokenizer, cfg.data.max_length,
                                                                   cfg.data.format), cfg.train.optim.seed)
    if cfg.distillation.weight > 0:
        lacking = next((i for i, e in enumerate(train) if "distillation_labels" not in e), None)
        if lacking is not None:
            raise DataError(cfg.data.train, 0, f"distillation.weight > 0 needs reflection examples; example "
                                               f"{lacking + 1} is not one")
    if cfg.data.packing:
        train = pack_examples(train, cfg.data.max_length)
        validation = pack_examples(validation, cfg.data.max_length) if validation else []
    return train, validation


def prepare(cfg: SFTConfig) -> tuple[LoopConfig, list, list, str]:
    """(loop config, training and validation examples, a one-line summary): everything checked before any worker
    starts. Raises DataError / ValueError / FileNotFoundError naming what is wrong."""
    from raylib.models import resolve_model
    from raylib.train.loop import prepare_tokenizer
    from raylib.train.runner import check_run

    distill = cfg.distillation.weight > 0
    model = resolve_model(cfg.model)
    reflection = cfg.data.format == "reflection" or distill or _has_reflection(cfg.data.train)
    tokenizer = prepare_tokenizer(model, reflection_tokens=reflection)
    train, validation = encode(cfg, tokenizer)
    loop = LoopConfig(objective="reflection" if distill else "lm", model=model, reflection_tokens=reflection,
                      distillation=cfg.distillation if distill else None, settings=cfg.train)
    steps = check_run(loop, len(train))
    return loop, train, validation, (f"{len(train)} training rows, {len(validation)} validation rows, {steps} steps "
                                     "per epoch")


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(SFTConfig, argv)
    from raylib.files import DataError
    from raylib.train.runner import launch_job

    try:
        loop, train, validation, summary = prepare(cfg)
    except (DataError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return launch_job(loop, train, validation, cfg.output, cfg.ray_address, config=cfg, verbose=cfg.verbose,
                      summary=summary)


def _has_reflection(path: str) -> bool:
    """Whether the file's first record is a reflection sample (then the tokenizer needs its special tokens)."""
    from raylib.files import read_records

    for _, row in read_records(path):
        messages = row.get("messages")
        return isinstance(messages, list) and bool(messages) and isinstance(messages[0], dict) \
            and isinstance(messages[0].get("content"), list)
    return False


if __name__ == "__main__":
    sys.exit(main())
