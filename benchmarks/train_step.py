"""Training throughput: codeloop's SFT job on Ray Train vs a bare `torchrun` + DeepSpeed script.

    python benchmarks/train_step.py                          # 28M-param Llama, HumanEval solutions, ZeRO-2, 2 ranks
    python benchmarks/train_step.py --model embedded --steps 8 --micro-batch 2      # SmolLM2-135M itself
    python benchmarks/train_step.py --zero-stage 3 --repeats 3

Both sides train the same model on the same examples in the same order with the same DeepSpeed config:
  bare      `torchrun --nproc_per_node W` of this file (--phase bare): gloo process group, the model from
            `from_pretrained`, torch AdamW + linear decay, `deepspeed.initialize`, then forward/backward/step over
            the batches (its own padding code), nothing else: no checkpoint, no validation, no Ray;
  codeloop  `python jobs/sft.py` on a fresh local Ray cluster: W Ray Train workers, the real job with its data
            checks, TensorBoard logging, and the final checkpoint (Hugging Face model + DeepSpeed state).
The driver encodes the data once the way jobs/sft.py does (HumanEval prompt + canonical solution, loss on the
solution) and hands the bare side the token ids and each rank's micro-batches from `raylib.train.batching.rank_batches`,
the plan codeloop's workers follow. The DeepSpeed config is `raylib.train.settings.deepspeed_config` for the job's
settings.

Printed per run: tokens/s after start-up (tokens of every rank / wall time of the training loop; codeloop's
excludes its checkpoint, as the bare side has none), start-up (process launch to the first step: Ray, workers, model
and DeepSpeed set-up), the time after the last step (codeloop: checkpoint, Ray Train shutdown) and the ratio
codeloop / bare. Target: >= 0.9 after start-up. The sides alternate (bare, codeloop, bare, ...) so drift on a
noisy machine hits both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def build_small_llama(path: Path, tokenizer_dir: str, hidden: int, layers: int) -> Path:
    """A Llama of SmolLM2's family, narrower and shallower, with its tokenizer (random weights, seeded)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 8 // 3,
                         num_hidden_layers=layers, num_attention_heads=hidden // 64,
                         num_key_value_heads=max(1, hidden // 192),
                         head_dim=64, max_position_embeddings=2048, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def prepare(args, work: Path) -> tuple[Path, Path, dict]:
    """Model directory, the job's config file and the bare side's spec (examples, per-rank plans, DeepSpeed config)."""
    import yaml

    from jobs.sft import SFTConfig, encode
    from raylib.data.problems import load_problems
    from raylib.models import resolve_model
    from raylib.train.batching import rank_batches, steps_per_epoch
    from raylib.train.loop import prepare_tokenizer
    from raylib.train.settings import deepspeed_config

    if args.model == "small":
        model = build_small_llama(work / "model", resolve_model("embedded"), args.hidden, args.layers)
    else:
        model = Path(resolve_model(args.model))
    data = work / "humaneval_sft.jsonl"
    with open(data, "w") as f:
        for problem in load_problems("humaneval").values():
            f.write(json.dumps({"prompt": problem.prompt, "completion": problem.reference_solution}) + "\n")
    job = {
        "model": str(model),
        "data": {"train": str(data), "format": "prompt_completion", "max_length": 2048},
        "train": {"scaling": {"workers": args.workers, "cpus_per_worker": 1},
                  "deepspeed": {"zero_stage": args.zero_stage},
                  "optim": {"lr": 1e-4, "max_steps": args.steps, "micro_batch_size": args.micro_batch,
                            "schedule": "linear", "seed": 0},
                  "log_every": 1},
    }
    config_file = work / "sft.yaml"
    config_file.write_text(yaml.safe_dump(job))
    cfg = SFTConfig.model_validate(job)
    tokenizer = prepare_tokenizer(str(model))
    train, _ = encode(cfg, tokenizer)
    optim = cfg.train.optim
    lengths = [len(e["input_ids"]) for e in train]
    spe = steps_per_epoch(len(train), optim.micro_batch_size, args.workers, optim.grad_accum)
    plans = [[] for _ in range(args.workers)]
    for step in range(args.steps):  # the same walk as train_func: epoch by epoch, each epoch's own plan
        epoch = step // spe
        for rank in range(args.workers):
            plan = rank_batches(lengths, optim.micro_batch_size, args.workers, rank, optim.grad_accum, epoch,
                                optim.seed, optim.group_by_length)
            start = (step - epoch * spe) * optim.grad_accum
            plans[rank].append(plan[start:start + optim.grad_accum])
    spec = {"model": str(model), "pad_id": tokenizer.pad_token_id, "lr": optim.lr, "seed": optim.seed,
            "steps": args.steps, "deepspeed": deepspeed_config(cfg.train, args.workers),
            "examples": [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in train], "plans": plans}
    return model, config_file, spec


# ------------------------------------------------------------------------------------------------ the bare side


def phase_bare(args) -> None:
    """One torchrun rank: plain torch.distributed + DeepSpeed over the plan in --spec; rank 0 writes --result."""
    import deepspeed
    import torch
    import torch.distributed as dist
    from transformers import AutoModelForCausalLM

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    spec = json.loads(Path(args.spec).read_text())
    torch.manual_seed(spec["seed"])
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32)
    model.config.pad_token_id = spec["pad_id"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec["lr"])
    steps = spec["steps"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / steps))
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler,
                                           config=spec["deepspeed"], dist_init_required=False)
    examples, pad_id = spec["examples"], spec["pad_id"]
    tokens = 0
    engine.train()
    started, started_at = time.perf_counter(), time.time()
    for step, micro_batches in enumerate(spec["plans"][rank]):
        for micro in micro_batches:
            rows = [examples[i] for i in micro]
            width = max(len(r["input_ids"]) for r in rows)
            input_ids = torch.tensor([r["input_ids"] + [pad_id] * (width - len(r["input_ids"])) for r in rows])
            labels = torch.tensor([r["labels"] + [-100] * (width - len(r["labels"])) for r in rows])
            mask = torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in rows])
            loss = engine(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            engine.backward(loss)
            engine.step()
            tokens += int(mask.sum())
        if rank == 0:
            print(f"step {step + 1}/{steps} loss {loss.item():.4f}", flush=True)
    seconds = time.perf_counter() - started
    total = torch.tensor([tokens], dtype=torch.float64)
    dist.all_reduce(total)
    if rank == 0:
        Path(args.result).write_text(json.dumps({"tokens": total.item(), "train_seconds": seconds,
                                                 "training_started_at": started_at,
                                                 "threads": torch.get_num_threads()}))
    dist.destroy_process_group()


# ------------------------------------------------------------------------------------------------------ driver


def run_bare(args, work: Path, index: int) -> dict:
    spec_file, result = work / "spec.json", work / f"bare_{index}.json"
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--standalone", f"--nproc_per_node={args.workers}", __file__, "--phase", "bare",
               "--spec", str(spec_file), "--result", str(result)]
    return _timed(command, work / f"bare_{index}.log", lambda: json.loads(result.read_text()))


def run_codeloop(args, work: Path, config_file: Path, index: int) -> dict:
    output = work / f"codeloop_{index}"
    command = [sys.executable, str(REPO / "jobs" / "sft.py"), "--config", str(config_file), "--output", str(output)]
    return _timed(command, work / f"codeloop_{index}.log", lambda: json.loads((output / "metrics.json").read_text()))


def _timed(command: list[str], log: Path, read_result) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("RAY_ADDRESS", None)  # codeloop starts its own local cluster, so nothing else shares the cores
    launched = time.time()
    with open(log, "w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO).returncode
    ended = time.time()
    if code != 0:
        sys.exit(f"{command[0]} ... failed with exit status {code}; its output: {log}")
    result = read_result()
    first_step = result["training_started_at"]
    return {"tokens": result["tokens"], "train_seconds": result["train_seconds"],
            "tokens_per_s": result["tokens"] / result["train_seconds"], "startup_s": first_step - launched,
            "after_s": ended - first_step - result["train_seconds"], "wall_s": ended - launched}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phase", choices=["driver", "bare"], default="driver")
    parser.add_argument("--model", default="small", help="'small' (a Llama built here, SmolLM2's tokenizer), "
                                                         "'embedded' (SmolLM2-135M) or a Hugging Face directory")
    parser.add_argument("--hidden", type=int, default=384, help="hidden size of the small model")
    parser.add_argument("--layers", type=int, default=6, help="layers of the small model")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per run")
    parser.add_argument("--micro-batch", type=int, default=4, help="examples per rank per step")
    parser.add_argument("--workers", type=int, default=2, help="data-parallel ranks (one CPU each)")
    parser.add_argument("--zero-stage", type=int, default=2, choices=[0, 1, 2, 3])
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side, alternating")
    parser.add_argument("--workdir", help="keep models, data, logs and outputs here (default: a temporary dir)")
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "bare":
        return phase_bare(args)

    with tempfile.TemporaryDirectory(prefix="codeloop-train-bench-") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        model, config_file, spec = prepare(args, work)
        (work / "spec.json").write_text(json.dumps(spec))
        tokens_per_step = sum(len(spec["examples"][i]["input_ids"]) for plan in spec["plans"] for step in plan
                              for micro in step for i in micro) / args.steps
        print(f"model {model} ({_param_count(model) / 1e6:.1f}M parameters), {len(spec['examples'])} HumanEval "
              f"examples, {args.steps} steps x {args.workers} ranks x micro-batch {args.micro_batch} "
              f"(~{tokens_per_step:.0f} tokens/step), ZeRO-{args.zero_stage}, fp32, gloo", flush=True)
        rows = []
        for index in range(args.repeats):
            bare = run_bare(args, work, index)
            print(f"run {index + 1} bare      {_line(bare)}", flush=True)
            ours = run_codeloop(args, work, config_file, index)
            print(f"run {index + 1} codeloop  {_line(ours)}", flush=True)
            if ours["tokens"] != bare["tokens"]:
                sys.exit(f"the sides trained on different token counts: codeloop {ours['tokens']}, "
                         f"bare {bare['tokens']}")
            rows.append((bare, ours))
        ratios = [ours["tokens_per_s"] / bare["tokens_per_s"] for bare, ours in rows]
        end_to_end = [bare["wall_s"] / ours["wall_s"] for bare, ours in rows]
        print("\n| run | bare tok/s | codeloop tok/s | ratio after start-up | start-up bare / codeloop (s) "
              "| after last step bare / codeloop (s) | end to end ratio |")
        print("|---|---|---|---|---|---|---|")
        for index, ((bare, ours), ratio, e2e) in enumerate(zip(rows, ratios, end_to_end)):
            print(f"| {index + 1} | {bare['tokens_per_s']:.0f} | {ours['tokens_per_s']:.0f} | {ratio:.3f} "
                  f"| {bare['startup_s']:.1f} / {ours['startup_s']:.1f} "
                  f"| {bare['after_s']:.1f} / {ours['after_s']:.1f} "
                  f"| {e2e:.2f} |")
        verdict = "met" if statistics.median(ratios) >= 0.9 else "NOT met"
        print(f"\nratio codeloop / bare after start-up: median {statistics.median(ratios):.3f} "
              f"(runs {', '.join(f'{r:.3f}' for r in ratios)}); target >= 0.9: {verdict}")


def _param_count(model: Path) -> int:
    from safetensors import safe_open

    total = 0
    for file in Path(model).glob("*.safetensors"):
        with safe_open(str(file), "pt") as f:
            for name in f.keys():
                count = 1
                for n in f.get_slice(name).get_shape():
                    count *= n
                total += count
    return total


def _line(row: dict) -> str:
    return (f"{row['tokens_per_s']:8.0f} tokens/s ({row['tokens']:.0f} tokens in {row['train_seconds']:.1f} s), "
            f"start-up {row['startup_s']:.1f} s, after the last step {row['after_s']:.1f} s, "
            f"wall {row['wall_s']:.1f} s")


if __name__ == "__main__":
    main()
