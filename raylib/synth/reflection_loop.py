"""Reflection sequences end to end (ReflectionCoder): rounds of the model writing code and the sandbox running it,
until each problem's code passes or the rounds run out. The pure steps are raylib/synth/reflection_seq.py.

    from raylib.synth.reflection_loop import reflection_sequences
    made = reflection_sequences(problems, LLMSettings(model="my-model"), "runs/reflection", max_rounds=3,
                                dataset="mbpp")                                           # after init_cluster()
    made.kept, made.dropped, made.counts()     # samples; [{"task_id", "round", "reason", ...}]; the summary's counts

Round-synchronous: round r asks the engine for every unfinished problem at once (one engine actor,
raylib.generate.texts.sample_outputs; answers kept in OUTPUT/answers/round{r}.jsonl), then runs every program read
out of the answers at once in the sandbox (raylib.evaluate.pipeline.evaluate into OUTPUT/execution/, sample_id r-1);
the problems whose program failed get the next round, their chat carrying the execution block. A re-run with the same
output asks and runs only what is missing, and a larger `max_rounds` goes on where the last run stopped.

The programs run against the problem's own tests (`Problem.tests`, all of them): this builds training data, so the
execution blocks show what those tests found. Do not build sequences on problems you will evaluate on.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import TextIO

from raylib.data.problems import Problem
from raylib.data.samples import Sample
from raylib.synth.reflection_seq import (
    MAX_EXECUTION_CHARS,
    Turn,
    build_sample,
    execution_text,
    read_answer,
    round_messages,
)
from raylib.synth.synthesize import LLMSettings, ask_once

__all__ = ["DEFAULT_TEMPERATURE", "Reflected", "reflection_sequences"]

DEFAULT_TEMPERATURE = 0.2  # ours: ReflectionCoder does not publish the sampling settings of its sequences
NEVER_PASSED = "did not pass within max_rounds"
FIRST_TRY = "passed at the first try (no reflection)"


@dataclasses.dataclass
class Reflected:
    kept: list[dict]           # the samples (raylib.synth.reflection_seq.build_sample), in problem order
    dropped: list[dict]        # {"task_id", "round", "reason", "detail"?, "statuses"}
    problems: int
    max_rounds: int
    passed_by_round: Counter   # round -> problems whose program passed in it
    unanswered: list[str] = dataclasses.field(default_factory=list)  # the endpoint failed: a re-run asks again

    def counts(self) -> dict:
        return {"problems": self.problems, "max_rounds": self.max_rounds, "kept": len(self.kept),
                "dropped": len(self.dropped), "unanswered": len(self.unanswered),
                "first_try_passed": self.passed_by_round.get(1, 0),
                "dropped_by_reason": dict(Counter(d["reason"] for d in self.dropped).most_common()),
                "kept_by_rounds": {str(n): c for n, c in sorted(Counter(s["rounds"] for s in self.kept).items())},
                "passed_by_round": {str(r): c for r, c in sorted(self.passed_by_round.items())}}


def reflection_sequences(problems: dict[str, Problem], llm: LLMSettings, output: str | Path, *, max_rounds: int,
                         dataset: str, keep_first_try: bool = False, max_execution_chars: int = MAX_EXECUTION_CHARS,
                         evaluation: dict | None = None, progress: bool | TextIO = True) -> Reflected:
    """Reflection sequences for `problems` (see the module docstring).

    Args:
        llm: the model that writes the code (its prompts: raylib/synth/prompts/reflection.yaml or `llm.prompts`).
        max_rounds: most answers per problem; a problem still failing after them is dropped.
        dataset: recorded in each sample's provenance.
        keep_first_try: keep problems solved at the first try as one-code sequences (no reflection); else they are
            dropped (reason "passed at the first try").
        evaluation: keyword arguments of evaluate() (execution, time_limits, ray_address).

    Raises:
        InfrastructureError: some programs could not be run (sandbox infrastructure); what was done is kept.
    """
    from raylib.synth.prompts import load_prompts

    prompts = load_prompts("reflection", llm.prompts)
    temperature = DEFAULT_TEMPERATURE if llm.temperature is None else llm.temperature
    output = Path(output)
    order = {t: i for i, t in enumerate(problems)}
    turns: dict[str, list[Turn]] = {t: [] for t in problems}
    samples: list[Sample] = []
    kept, dropped, unanswered = [], [], []
    passed_by_round: Counter = Counter()

    def drop(task_id: str, round_: int, reason: str, detail: str = "") -> None:
        dropped.append({"task_id": task_id, "round": round_, "reason": reason, **({"detail": detail} if detail else {}),
                        "statuses": [t.status for t in turns[task_id]]})

    live = list(problems)
    for round_ in range(1, max_rounds + 1):
        if not live:
            break
        answers, refused = ask_once({t: round_messages(prompts, problems[t], turns[t]) for t in live}, llm,
                                    temperature, output / "answers" / f"round{round_}.jsonl", progress,
                                    f"round {round_}", unanswered)
        for task_id, error in refused.items():
            drop(task_id, round_, "the engine gave no answer", error)
        read = {}
        for task_id, answer in answers.items():
            prose, program = read_answer(answer, problems[task_id])
            if not program:
                drop(task_id, round_, "no code in the answer")
            elif round_ > 1 and not prose:
                drop(task_id, round_, "no reflection in the answer")
            else:
                read[task_id] = (answer, prose, program)
                samples.append(Sample(task_id, round_ - 1, program))
        rows = _run(samples, problems, output / "execution", evaluation, progress) if read else {}
        live = []
        for task_id, (answer, prose, program) in read.items():
            row = rows[(task_id, round_ - 1)]
            turns[task_id].append(Turn(answer, prose, program, execution_text(row, problems[task_id],
                                                                               max_execution_chars),
                                       bool(row["passed"]), row["status"]))
            if row["passed"]:
                passed_by_round[round_] += 1
                if round_ == 1 and not keep_first_try:
                    drop(task_id, round_, FIRST_TRY)
                else:
                    kept.append(build_sample(problems[task_id], turns[task_id], prompts, model=llm.model,
                                             dataset=dataset))
            elif round_ == max_rounds:
                drop(task_id, round_, NEVER_PASSED, f"{max_rounds} rounds")
            else:
                live.append(task_id)
    kept.sort(key=lambda s: order[s["task_id"]])
    dropped.sort(key=lambda d: order[d["task_id"]])
    return Reflected(kept, dropped, len(problems), max_rounds, passed_by_round, unanswered)


def _run(samples: list[Sample], problems: dict[str, Problem], output: Path, evaluation: dict | None,
         progress) -> dict[tuple[str, int], dict]:
    """{(task_id, sample_id): results row} of every sample, running those not yet in OUTPUT/results.jsonl. Rows on
    file of samples not given (later rounds of an earlier run) are passed along, so evaluate() keeps them."""
    from raylib.cluster import InfrastructureError
    from raylib.data.samples import program_sha
    from raylib.evaluate.pipeline import evaluate
    from raylib.evaluate.requests import INFRA_STATUS
    from raylib.files import read_records

    results = output / "results.jsonl"
    rows = {(r["task_id"], r["sample_id"]): r for _, r in read_records(results)} if results.exists() else {}
    if all((row := rows.get((s.task_id, s.sample_id))) and row["program_sha"] == s.sha
           and row["status"] != INFRA_STATUS for s in samples):
        return rows
    given = {(s.task_id, s.sample_id) for s in samples}
    on_file = [Sample(t, i, r["program"]) for (t, i), r in rows.items()
               if t in problems and (t, i) not in given and r["program_sha"] == program_sha(r["program"])]
    done = evaluate(problems, output, samples=samples + on_file, progress=progress, title="reflection rounds",
                    **(evaluation or {}))
    if not done.complete:
        raise InfrastructureError(f"{done.infra_errors} programs could not run (sandbox infrastructure); re-run with "
                                  "the same output to retry them")
    return {(row["task_id"], row["sample_id"]): row for _, row in read_records(results)}
