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
| pairs_accuracy| max  | a reward model (1 or 2 outputs) on a pairs file ({prompt, chosen, rejected}): the share |
|               |      | of pairs whose chosen program it scores higher (ties: half)                             |
| pairs_auc     | max  | the same scores: ROC AUC of chosen (positive) against rejected (negative) programs      |
| preference_accuracy | max | a pairwise preference classifier (CodeFavor) asked each pair in both orders: the   |
|               |      | share of its votes for the chosen program (ties: half)                                  |

torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from raylib.data.problems import Problem

__all__ = ["METRICS", "PAIRS_METRICS", "checkpoint_metric", "metric_mode", "pairs_metric", "problems_of",
           "reference_nll"]

METRICS = ("pass@k", "reference_nll", "pairs_accuracy", "pairs_auc", "preference_accuracy")
PAIRS_METRICS = ("pairs_accuracy", "pairs_auc", "preference_accuracy")  # measured on a pairs file, not on problems
_PASS_AT = re.compile(r"^pass@(\d+)$")


def problems_of(spec: dict) -> dict[str, Problem]:
    """The problems a trial measures on: {"dataset", "dataset_path"?, "skip"?, "limit"?}: the dataset's problems in
    file order, less the first `skip` (e.g. those a sweep trained on), then the first `limit` of the rest."""
    from raylib.data.problems import load_problems, subset

    return subset(load_problems(spec["dataset"], spec.get("dataset_path")), spec.get("skip") or 0, spec.get("limit"))


def metric_mode(metric: str) -> str:
    """"max" or "min" for a metric name (pass@1, pass@10, reference_nll); ValueError for an unknown one."""
    if _PASS_AT.match(metric):
        return "max"
    if metric == "reference_nll":
        return "min"
    if metric in PAIRS_METRICS:
        return "max"
    raise ValueError(f"unknown metric {metric!r}; expected pass@K (e.g. pass@1), reference_nll or one of "
                     f"{PAIRS_METRICS} (with a pairs file)")


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


def pairs_metric(model_dir: str | Path, metric: str, pairs: str | Path, max_length: int = 1024) -> float:
    """A reward or preference model's pairs_accuracy, pairs_auc or preference_accuracy on a pairs file (see the table
    above); the file's rows are checked (file, line, field)."""
    from raylib.files import DataError, read_records
    from raylib.rerank.settings import ModelVerifierSettings, PairwiseSettings
    from raylib.train.objectives.bradley_terry import pairwise_accuracy
    from raylib.train.objectives.orm import roc_auc

    rows = []
    for line, row in read_records(pairs):
        bad = [f for f in ("prompt", "chosen", "rejected") if not isinstance(row.get(f), str)]
        if bad:
            raise DataError(pairs, line, f"a pair needs string fields prompt, chosen and rejected; {bad} missing or "
                            "not strings")
        rows.append(row)
    if not rows:
        raise DataError(pairs, 0, "no pairs in the file")
    if metric == "preference_accuracy":
        from raylib.rerank.verifiers.models import PairwisePreference

        model = PairwisePreference(PairwiseSettings(model=str(model_dir), max_length=max_length))
        return model.preference_votes([(r["prompt"], r["chosen"], r["rejected"]) for r in rows])
    from raylib.rerank.verifiers.models import RewardModel

    model = RewardModel(ModelVerifierSettings(model=str(model_dir), max_length=max_length))
    chosen = model.values([(r["prompt"], r["chosen"]) for r in rows])
    rejected = model.values([(r["prompt"], r["rejected"]) for r in rows])
    if metric == "pairs_accuracy":
        return pairwise_accuracy(chosen, rejected)
    return roc_auc(chosen + rejected, [1] * len(chosen) + [0] * len(rejected))


def checkpoint_metric(model_dir: str | Path, metric: str, problems: dict[str, Problem], *, output: str | Path = "",
                      generation=None, execution=None, pairs: str | Path | None = None, progress=False) -> float:
    """The checkpoint's value of `metric` on `problems` (see the table above). pass@k needs `output` (where the
    evaluation writes: resumable) and `generation` (a GenerationSettings; its engine's model is replaced by the
    checkpoint, an adapter merged into its base first); the pairs metrics need `pairs` (a pairs.jsonl)."""
    metric_mode(metric)
    if metric in PAIRS_METRICS:
        if not pairs:
            raise ValueError(f"{metric} needs a pairs file ({{prompt, chosen, rejected}} per line)")
        return pairs_metric(model_dir, metric, pairs)
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
