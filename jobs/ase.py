"""ASE of an executor model on single-step items (LLMExecutor), plain sampling against majority, reward and RVBS.

    python jobs/ase.py --items runs/traces/sft/test.jsonl --model runs/executor/merged --output runs/ase
    python jobs/ase.py --items runs/traces/swa/test.jsonl --predictions outputs.jsonl --output runs/ase_given
    # RVBS (LLMExecutor: N=32 at temperature 0.8; the reward model on right-vs-wrong predictions, the selector on the
    # groups of its scores):
    python jobs/ase.py --items runs/traces/sft/train.jsonl --model M --n 8 --temperature 0.8 --output runs/ase_train
    python jobs/train_rm.py --data.train runs/ase_train/rm_pairs.jsonl --output runs/executor_rm
    python jobs/ase.py --items runs/traces/sft/validation.jsonl --model M --n 8 --temperature 0.8 \\
        --reward_model runs/executor_rm/model --output runs/ase_val          # writes candidates.jsonl
    python jobs/train_selector.py --data runs/ase_val/candidates.jsonl --output runs/executor_selector
    python jobs/ase.py --items runs/traces/sft/test.jsonl --model M --n 8 --temperature 0.8 \\
        --reward_model runs/executor_rm/model --selector runs/executor_selector --output runs/ase_test
    python jobs/ase.py --help        # every option

Items: what jobs/build_traces.py writes. Predictions (--predictions): JSONL of {"item_id", "output": text} or
{"item_id", "outputs": [text, ...]}. Every prediction is parsed strictly (raylib.trace.answers: exactly one `Line:`
and one well-formed answer, anything else is wrong); ASE = items whose values dict and next statement both match the
trace / all items, with sequential, branch and exception accuracy and the whole-program prefix match
(raylib.trace.ase). With N > 1 predictions per item each rule picks one: the first (plain sampling), the majority
group, the reward model's best, RVBS (the selector's likeliest group over reward-score features).

Writes OUTPUT/ase_summary.json (`ase` = plain sampling's, `rules` = every rule's metrics), report.md,
predictions.jsonl (per item: right or wrong per prediction, parse errors, each rule's pick), outputs.jsonl (the
generated texts; kept as they arrive, so a re-run resumes), rm_pairs.jsonl (N > 1), candidates.jsonl (with a reward
model), config.yaml and job.log. Exit status: 0 done; 2 bad input or config.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field, model_validator  # noqa: E402

from raylib.config import ConsoleJobConfig, load_config, log_config  # noqa: E402
from raylib.files import DataError, read_records  # noqa: E402
from raylib.generate.engines.base import EngineConfig, engine_model_from  # noqa: E402


class ASEConfig(ConsoleJobConfig):
    items: str = Field(..., description="Items JSONL (jobs/build_traces.py's sft/ or swa/ files).")
    model: str = Field("embedded", description="The executor model: 'embedded', a Hugging Face directory, or the "
                       "served name (engine.backend=openai).")
    predictions: str | None = Field(None, description="Score these outputs instead of generating: JSONL of "
                                    "{item_id, output} or {item_id, outputs}.")
    limit: int | None = Field(None, ge=1, description="The first N items only.")
    n: int = Field(1, ge=1, le=256, description="Predictions per item (LLMExecutor's RVBS: 32).")
    temperature: float = Field(0.0, ge=0, le=5, description="Sampling temperature (RVBS: 0.8); 0 is greedy.")
    max_tokens: int = Field(384, ge=16, description="Longest prediction, tokens.")
    seed: int = Field(0, description="Sampling seed.")
    engine: EngineConfig = Field(default_factory=EngineConfig, description="The engine (backend, dtype, length, "
                                 "endpoint); engine.model is taken from --model.")
    num_cpus: float = Field(1, gt=0, description="CPUs the engine actor reserves.")
    reward_model: str | None = Field(None, description="Reward model (jobs/train_rm.py's OUTPUT/model, trained on "
                                     "rm_pairs.jsonl) that scores each (item's short context, prediction).")
    selector: str | None = Field(None, description="RVBS selector (jobs/train_selector.py's output); needs "
                                 "--reward_model.")
    pairs_per_item: int = Field(4, ge=1, description="rm_pairs.jsonl: most right-vs-wrong pairs per item.")
    output: str = Field("runs/ase", description="Output directory (re-use it to resume generation).")
    ray_address: str | None = Field(None, description="Ray cluster to join; None: RAY_ADDRESS or a local one.")

    @model_validator(mode="before")
    @classmethod
    def _engine_model(cls, data):
        return engine_model_from(data)

    @model_validator(mode="after")
    def _check(self):
        if self.n > 1 and self.temperature == 0 and not self.predictions:
            raise ValueError("n > 1 predictions need sampling: set --temperature (RVBS: 0.8)")
        if self.selector and not self.reward_model:
            raise ValueError("--selector groups the reward model's scores: give --reward_model too")
        return self


def read_predictions(path: str, items: list[dict], scored: list[dict]) -> dict[str, list[str]]:
    """{item_id: texts} for the `scored` items; every row must name one of `items` (the whole file)."""
    known = {item["item_id"] for item in items}
    outputs: dict[str, list[str]] = {}
    for line, row in read_records(path):
        if not isinstance(row.get("item_id"), str):
            raise DataError(path, line, "field 'item_id' is missing or not a string")
        texts = [row["output"]] if "output" in row else row.get("outputs")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise DataError(path, line, "expected 'output' (a string) or 'outputs' (a non-empty list of strings)")
        if row["item_id"] not in known:
            raise DataError(path, line, f"item_id {row['item_id']!r} is not among the items")
        if row["item_id"] in outputs:
            raise DataError(path, line, f"item_id {row['item_id']!r} appears twice")
        outputs[row["item_id"]] = texts
    wanted = {item["item_id"] for item in scored}
    missing = len(wanted - outputs.keys())
    if missing:
        raise DataError(path, 0, f"no prediction for {missing} of the {len(wanted)} items scored")
    return {k: v for k, v in outputs.items() if k in wanted}


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(ASEConfig, argv)
    from raylib.console import job_console
    from raylib.files import write_json, write_records
    from raylib.trace.ase import choices, judge_outputs, report_markdown, reward_pairs, selector_rows, summarize
    from raylib.trace.items import read_items

    output = Path(cfg.output)
    try:
        every = read_items(cfg.items)
        items = every[:cfg.limit]
        given = read_predictions(cfg.predictions, every, items) if cfg.predictions else None
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with job_console(output, cfg.verbose) as console:
        log_config(cfg, output, file=console.out)
        outputs = given
        if outputs is None or cfg.reward_model:
            from raylib.cluster import init_cluster

            init_cluster(cfg.ray_address)
        if outputs is None:
            from raylib.generate.texts import sample_outputs

            engine = cfg.engine.model_copy(update={"model": cfg.model}).model_dump()
            outputs = sample_outputs({i["item_id"]: i["prompt"] for i in items}, engine, n=cfg.n,
                                     temperature=cfg.temperature, max_tokens=cfg.max_tokens, seed=cfg.seed,
                                     path=output / "outputs.jsonl", num_cpus=cfg.num_cpus, progress=console.err)
            refused = [i["item_id"] for i in items if not outputs.get(i["item_id"])]
            for item_id in refused:  # the engine refused the prompt (too long): no prediction, a wrong one
                outputs[item_id] = [""]
            if refused:
                print(f"note: the engine produced nothing for {len(refused)} items (prompt too long?); they count as "
                      "wrong", file=console.out)
        judged = judge_outputs(items, outputs)
        scores = selector = None
        if cfg.reward_model:
            from raylib.trace.items import reward_prompt
            from raylib.trace.runner import reward_scores

            by_item = {i["item_id"]: i for i in items}
            keys = [(item_id, k) for item_id in judged for k in range(len(outputs[item_id]))]
            values = reward_scores([(reward_prompt(by_item[i]), outputs[i][k]) for i, k in keys], cfg.reward_model)
            scores = {item_id: [] for item_id in judged}
            for (item_id, _), value in zip(keys, values):
                scores[item_id].append(value)
            write_records(output / "candidates.jsonl", selector_rows(judged, scores))
        if cfg.selector:
            from raylib.rerank.selector import load_selector
            from raylib.rerank.verifiers.rvbs import selector_file

            selector, _ = load_selector(selector_file(cfg.selector))
        picks = {item_id: choices(j["answers"], scores[item_id] if scores else None, selector)
                 for item_id, j in judged.items()}
        summary = summarize(items, judged, picks)
        write_records(output / "predictions.jsonl", [
            {"item_id": item_id, "correct": j["correct"], "parse_errors": j["errors"], "picks": picks[item_id],
             **({"scores": scores[item_id]} if scores else {})} for item_id, j in judged.items()])
        if summary["n"] > 1:
            write_records(output / "rm_pairs.jsonl", reward_pairs(items, outputs, judged, cfg.pairs_per_item,
                                                                   cfg.seed))
        write_json(output / "ase_summary.json", summary)
        report = report_markdown(summary, f"ASE of {cfg.predictions or cfg.model} on {cfg.items}")
        (output / "report.md").write_text(report)
        print("\n" + report, file=console.out)
        print(f"{output}/ ase_summary.json, report.md, predictions.jsonl (logs in {console.log_path.name})",
              file=console.out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
