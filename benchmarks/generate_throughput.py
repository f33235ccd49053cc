"""Generation throughput: codeloop's Ray Data pipeline vs a bare `vllm.LLM.generate` call (and transformers).

    python benchmarks/generate_throughput.py                      # SmolLM2-135M (embedded), HumanEval, greedy
    python benchmarks/generate_throughput.py --problems 64 --max-tokens 128 --threads 2 --hf-problems 16

The same prompts (HumanEval, codeloop's instruct prompts rendered to token ids once), the same model, the same
sampling settings (greedy, so both produce the same tokens) and the same CPU threads go through:
  bare      `vllm.LLM(...)` then one `llm.generate(all prompts)` in a fresh process;
  codeloop  `raylib.generate.stage.generation_stage` on a local Ray cluster (engine actor, batches of requests);
  hf        transformers `generate`, batched with left padding (on the first --hf-problems prompts).
Each runs in its own process. Printed: output tokens/s after start-up (bare: the generate call; codeloop: from the
moment its actor's engine was ready to the last row), end to end (with engine start, and for codeloop the Ray
pipeline start), and the ratios codeloop / bare. Target: >= 0.9 after start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def prompts_and_settings(args):
    from transformers import AutoTokenizer

    from raylib.data.problems import load_problems
    from raylib.generate.engines.base import GenerationRequest, render_prompt
    from raylib.generate.prompts import PromptSettings, build_prompt
    from raylib.generate.settings import GenerationSettings
    from raylib.models import resolve_model

    problems = dict(list(load_problems("humaneval").items())[:args.problems])
    settings = GenerationSettings.model_validate({
        "engine": {"model": args.model, "max_model_len": 2048, "cpu_threads": args.threads},
        "sampling": {"n": 1, "temperature": 0.0, "max_tokens": args.max_tokens},
        "batch_size": args.batch_size,
    })
    path = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    prompts = []
    for problem in problems.values():
        p = build_prompt(problem, PromptSettings())
        ids, _ = render_prompt(tokenizer, GenerationRequest(messages=list(p.messages),
                                                            response_prefix=p.response_prefix))
        prompts.append((ids, list(p.stop)))
    return problems, settings, path, prompts


def phase_bare(args) -> dict:
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    _, _, path, prompts = prompts_and_settings(args)
    started = time.time()
    from vllm import LLM, SamplingParams

    llm = LLM(model=path, dtype="float32", max_model_len=2048, enforce_eager=True, seed=0)
    ready = time.time()
    params = SamplingParams(n=1, temperature=0.0, max_tokens=args.max_tokens, stop=prompts[0][1])
    outputs = llm.generate([{"prompt_token_ids": ids} for ids, _ in prompts], params, use_tqdm=False)
    done = time.time()
    texts = [o.outputs[0].text for o in outputs]
    return {"start_s": ready - started, "generate_s": done - ready, "total_s": done - started,
            "tokens": sum(len(o.outputs[0].token_ids) for o in outputs), "texts": texts}


def phase_codeloop(args) -> dict:
    from raylib.cluster import init_cluster, shutdown_cluster
    from raylib.generate.loop import pending_requests
    from raylib.generate.stage import generation_stage

    problems, settings, _, _ = prompts_and_settings(args)
    init_cluster("local", num_cpus=2, include_dashboard=False)
    started = time.time()
    rows = []
    for batch in generation_stage(pending_requests(problems, 1, set()), problems, settings).iter_batches(
            batch_size=None, batch_format="pyarrow"):
        rows.extend(json.loads(line) for line in batch.column("sample").to_pylist())
    done = time.time()
    shutdown_cluster()
    rows.sort(key=lambda r: list(problems).index(r["task_id"]))
    return {"started_at": started, "done_at": done, "total_s": done - started,
            "tokens": sum(r["output_tokens"] for r in rows),
            "texts": [r["raw_output"][len("```python\n"):] for r in rows],
            "errors": sum(1 for r in rows if r["error"])}


def phase_hf(args) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    _, _, path, prompts = prompts_and_settings(args)
    prompts = prompts[:args.hf_problems]
    started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    ready = time.time()
    tokens = 0
    for i in range(0, len(prompts), args.hf_batch):
        chunk = [ids for ids, _ in prompts[i:i + args.hf_batch]]
        width = max(map(len, chunk))
        input_ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(c)) + c for c in chunk])
        mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in chunk])
        with torch.inference_mode():
            out = model.generate(input_ids, attention_mask=mask, max_new_tokens=args.max_tokens, do_sample=False,
                                 stop_strings=prompts[0][1], tokenizer=tokenizer, pad_token_id=tokenizer.pad_token_id)
        for row in out[:, width:].tolist():
            tokens += sum(1 for t in row if t != tokenizer.pad_token_id)
    done = time.time()
    return {"start_s": ready - started, "generate_s": done - ready, "tokens": tokens, "prompts": len(prompts)}


def run_phase(name: str, argv: list[str]) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, __file__, "--phase", name, *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"phase {name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result, proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--problems", type=int, default=164)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16, help="codeloop requests per actor call (its default)")
    parser.add_argument("--hf-problems", type=int, default=32)
    parser.add_argument("--hf-batch", type=int, default=16)
    parser.add_argument("--phase", choices=["bare", "codeloop", "hf"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        result = {"bare": phase_bare, "codeloop": phase_codeloop, "hf": phase_hf}[args.phase](args)
        print(json.dumps(result))
        return
    argv = [a for a in sys.argv[1:]]
    print(f"model {args.model}, {args.problems} HumanEval prompts, greedy, max_tokens {args.max_tokens}, "
          f"{args.threads} threads, codeloop batch {args.batch_size}", flush=True)
    bare, _ = run_phase("bare", argv)
    codeloop, log = run_phase("codeloop", argv)
    ready = [float(m) for m in re.findall(r"engine for .* ready in [\d.]+ s \(at ([\d.]+)\)", log)]
    if not ready:
        sys.exit("codeloop phase: no 'engine ready' line in its output")
    steady_s = codeloop["done_at"] - max(ready)
    same = sum(a == b for a, b in zip(bare["texts"], codeloop["texts"]))
    bare_tps, bare_e2e = bare["tokens"] / bare["generate_s"], bare["tokens"] / bare["total_s"]
    cl_tps, cl_e2e = codeloop["tokens"] / steady_s, codeloop["tokens"] / codeloop["total_s"]
    print(f"outputs identical: {same}/{len(bare['texts'])}; "
          f"tokens bare {bare['tokens']}, codeloop {codeloop['tokens']}; "
          f"codeloop errors {codeloop['errors']}")
    print(f"bare vLLM      : {bare_tps:7.1f} tok/s after start-up ({bare['generate_s']:.1f} s), "
          f"{bare_e2e:7.1f} tok/s end to end (engine start {bare['start_s']:.1f} s)")
    print(f"codeloop (Ray) : {cl_tps:7.1f} tok/s after start-up ({steady_s:.1f} s), "
          f"{cl_e2e:7.1f} tok/s end to end ({codeloop['total_s']:.1f} s incl. actor + engine start "
          f"{codeloop['total_s'] - steady_s:.1f} s)")
    if args.hf_problems:
        hf, _ = run_phase("hf", argv)
        print(f"transformers   : {hf['tokens'] / hf['generate_s']:7.1f} tok/s on the first {hf['prompts']} prompts "
              f"(batch {args.hf_batch}, load {hf['start_s']:.1f} s)")
    print(f"ratio codeloop / bare vLLM: {cl_tps / bare_tps:.3f} after start-up (target >= 0.9), "
          f"{cl_e2e / bare_e2e:.3f} end to end")


if __name__ == "__main__":
    main()
