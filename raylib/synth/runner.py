"""The Ray shell of the bench: its tasks stream through an actor pool of judges on Ray Data (model loaded once per
actor), verdicts written to a resumable JSONL as batches finish.

    from raylib.synth.runner import judge_bench
    verdicts = judge_bench(tasks, BenchJudgeSettings(kind="pair-rm", model="runs/pref/model"),
                           "runs/bench/verdicts.jsonl", actors=1, batch_size=32)      # after init_cluster()
    verdicts[task.key]      # ("A" | "B" | None as stored, the same swapped)

`JudgeTasks` is the Ray Data stage: a batch of tasks in (columns key, instruction, criteria, language, choice_a,
choice_b), the verdicts of both asks out. The judging itself is raylib.synth.judges (pure over a loaded model).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Hashable, TextIO

from raylib.files import JsonlStore
from raylib.synth.bench import BenchTask, without_comments
from raylib.synth.judges import BenchJudgeSettings

__all__ = ["JudgeTasks", "VerdictsFile", "ask_rows", "decide_rows", "judge_bench"]


class VerdictsFile(JsonlStore):
    """verdicts.jsonl: {"key", "task_id", "objective", "gt_choice", "verdicts": [as given, swapped], "details"};
    a task whose judge's endpoint failed (detail "retry") is asked again on the next run."""

    def key_of_row(self, row: dict) -> Hashable:
        return row["key"]

    def is_done(self, row: dict) -> bool:
        return not any(d.get("retry") for d in row["details"])


def ask_rows(tasks: list[BenchTask], remove_comments: bool = False) -> list[dict]:
    """The plain rows a judge stage reads, one per task; `remove_comments`: programs without their comments, except
    for human-preference tasks (raylib.synth.bench.without_comments)."""
    def shown(task: BenchTask, code: str) -> str:
        return without_comments(code, task.language) if remove_comments and task.objective != "human-preference" \
            else code

    return [{"key": t.key, "instruction": t.instruction, "criteria": t.criteria, "language": t.language,
             "choice_a": shown(t, t.choices[0]), "choice_b": shown(t, t.choices[1])} for t in tasks]


def decide_rows(judge, rows: list[dict]) -> list[dict]:
    """Both asks of every row in one `judge.decide` call: [{"key", "verdicts": [given, swapped], "details"}]."""
    asks = []
    for row in rows:
        for key, (a, b) in zip(("given", "swapped"), ((row["choice_a"], row["choice_b"]),
                                                      (row["choice_b"], row["choice_a"]))):
            asks.append({"instruction": row["instruction"], "criteria": row["criteria"], "language": row["language"],
                         "code_a": a, "code_b": b, "key": f"{row['key']}:{key}"})
    decided = judge.decide(asks)
    return [{"key": row["key"], "verdicts": [decided[2 * i]["verdict"], decided[2 * i + 1]["verdict"]],
             "details": [decided[2 * i]["detail"], decided[2 * i + 1]["detail"]]} for i, row in enumerate(rows)]


class JudgeTasks:
    """Ray Data stage: builds its judge once; a batch of ask_rows in, columns key, verdicts, details (JSON) out."""

    def __init__(self, settings: dict):
        from raylib.synth.judges import make_judge

        self.judge = make_judge(BenchJudgeSettings.model_validate(settings))

    def __call__(self, batch: dict) -> dict:
        names = ("key", "instruction", "criteria", "language", "choice_a", "choice_b")
        rows = [dict(zip(names, values)) for values in zip(*(batch[n] for n in names))]
        decided = decide_rows(self.judge, [{k: str(v) for k, v in row.items()} for row in rows])
        return {"key": [d["key"] for d in decided], "decided": [json.dumps(d) for d in decided]}


def judge_bench(tasks: list[BenchTask], settings: BenchJudgeSettings, path: str | Path, *, actors: int = 1,
                batch_size: int = 32, num_cpus: float = 1, num_gpus: float | None = None,
                remove_comments: bool = False, progress: bool | TextIO = True) -> dict[str, tuple]:
    """{task key: (verdict as given, verdict swapped)} for every task, judging only those not yet in `path`.
    `num_gpus` per judge actor; None: on a cluster with GPUs one for a classifier, the engine's
    tensor_parallel_size for a local LLM, none for an endpoint."""
    from raylib.console import progress_bar

    store = VerdictsFile(path)
    by_key = {t.key: t for t in tasks}
    todo = [t for t in tasks if t.key not in store.done]
    try:
        if todo:
            import ray

            from raylib.cluster import cluster_has_gpus, engine_gpus, quiet_data_context

            quiet_data_context()
            if num_gpus is None:
                num_gpus = (engine_gpus(settings.engine) if settings.kind == "llm"
                            else float(cluster_has_gpus()))
            dataset = ray.data.from_items(ask_rows(todo, remove_comments),
                                          override_num_blocks=max(1, math.ceil(len(todo) / batch_size)))
            judged = dataset.map_batches(JudgeTasks, batch_size=batch_size, num_cpus=num_cpus, num_gpus=num_gpus,
                                         compute=ray.data.ActorPoolStrategy(size=actors),
                                         fn_constructor_kwargs={"settings": settings.model_dump(mode="json")})
            with progress_bar(len(tasks), "judging", progress, initial=len(tasks) - len(todo), unit="task") as bar:
                for batch in judged.iter_batches(batch_size=None, batch_format="numpy"):
                    rows = []
                    for text in batch["decided"]:
                        decided = json.loads(str(text))
                        task = by_key[decided["key"]]
                        rows.append({"key": task.key, "task_id": task.task_id, "objective": task.objective,
                                     "gt_choice": task.gt_choice, **{k: decided[k] for k in ("verdicts", "details")}})
                    store.append(rows)
                    bar.update(len(rows))
        store.rewrite([t.key for t in tasks if t.key in store.lines])
        rows = (json.loads(store.lines[t.key]) for t in tasks)
        return {row["key"]: tuple(row["verdicts"]) for row in rows}
    finally:
        store.close()
