"""What a checkpoint is worth, by code: each metric a function of a checkpoint directory (a full Hugging Face model
or a PEFT adapter) and the problems.

    from raylib.tune.metrics import METRICS, checkpoint_metric
    checkpoint_metric("runs/sft/model", "reference_nll", problems)       # mean NLL per token of the references
    checkpoint_metric("runs/sft/model", "pass@1", problems, output="runs/sel/trial0", generation=settings)

| metric        | mode | what                                                                                   |
|---------------|------|----------------------------------------------------------------------------------------|
| pass@k        | max  | generate with the checkpoint, run the samples in the sandbox (raylib.evaluate.pipeline) |
| reference_nll | min  | mean negative log-likelihood per token of each problem's reference solution after its   |
|               |      | prompt: a cheap proxy that needs no generation and no sandbox                           |

torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from raylib.data.problems import Problem

__all__ = ["METRICS", "checkpoint_metric", "metric_mode", "reference_nll"]

METRICS = ("pass@k", "reference_nll")
_PASS_AT = re.compile(r"^pass@(\d+)$")


def metric_mode(metric: str) -> str:
    """"max" or "min" for a metric name (pass@1, pass@10, reference_nll); ValueError for an unknown one."""
    if _PASS_AT.match(metric):
        return "max"
    if metric == "reference_nll":
        return "min"
    raise ValueError(f"unknown metric {metric!r}; expected pass@K (e.g. pass@1) or reference_nll")


def reference_nll(model_dir: str | Path, problems: dict[str, Problem], max_length: int = 2048) -> float:
    """Mean negative log-likelihood per token of the reference solutions' code after their prompts (the tokens of
    `reference_solution` past `completion_prefix`, or the whole solution after the prompt when it does not start
    with it), over every problem that has a reference; the checkpoint may be an adapter."""
    import torch

    from raylib.train.adapters import load_trained
    from raylib.train.loop import prepare_tokenizer

    tokenizer = prepare_tokenizer(str(model_dir))
    model = load_trained(model_dir, "causal_lm").eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for problem in problems.values():
            if not problem.reference_solution:
                continue
            prefix = problem.completion_prefix or problem.prompt
            body = (problem.reference_solution[len(prefix):] if prefix and problem.reference_solution.startswith(prefix)
                    else problem.reference_solution)
            context = list(tokenizer(prefix)["input_ids"])
            target = list(tokenizer(body, add_special_tokens=False)["input_ids"])
            ids = (context + target)[-max_length:]
            scored = min(len(target), len(ids) - 1)
            if scored <= 0:
                continue
            logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
            losses = torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="none")
            total += float(losses[-scored:].sum())
            tokens += scored
    if not tokens:
        raise ValueError("no problem has a reference solution to score")
    return total / tokens


def checkpoint_metric(model_dir: str | Path, metric: str, problems: dict[str, Problem], *, output: str | Path = "",
                      generation=None, execution=None, progress=False) -> float:
    """The checkpoint's value of `metric` on `problems` (see the table above). pass@k needs `output` (where the
    evaluation writes: resumable) and `generation` (a GenerationSettings; its engine's model is replaced by the
    checkpoint, an adapter merged into its base first)."""
    metric_mode(metric)
    if metric == "reference_nll":
        return reference_nll(model_dir, problems)
    from raylib.evaluate.pipeline import evaluate

    k = int(_PASS_AT.match(metric).group(1))
    model = _mergeable(Path(model_dir), Path(output))
    settings = generation.model_copy(deep=True)
    settings.engine.model = str(model)
    if settings.sampling.n < k:
        raise ValueError(f"{metric} needs at least {k} samples per problem; generation has n={settings.sampling.n}")
    result = evaluate(problems, output, generation=settings, execution=execution, progress=progress)
    value = result.pass_at_k.get(k)
    if value is None or math.isnan(value):
        raise ValueError(f"the evaluation in {output} gives no {metric}")
    return value


def _mergeable(model_dir: Path, output: Path) -> Path:
    """A directory engines can load: the checkpoint itself, or its adapter merged into the base (once, in OUTPUT)."""
    if not (model_dir / "adapter_config.json").exists():
        return model_dir
    from raylib.train.adapters import merge_adapter

    merged = output / "merged_model"
    if not (merged / "config.json").exists():
        merge_adapter(model_dir, merged, "causal_lm")
    return merged
