"""The three ways jobs/synth_prefs.py makes preference pairs, end to end: the LLM turns through one engine actor
(answers kept as they arrive, so a re-run asks only what is missing) and the sandbox runs through the evaluation
pipeline. The pure steps are in commit_instruct.py, critic_evol.py and execution_pairs.py.

    from raylib.synth.synthesize import LLMSettings, commit_instruct, critic_evol, from_execution
    made = commit_instruct(commits, LLMSettings(model="my-model"), "runs/prefs", progress=True)   # after init_cluster()
    made.pairs, made.dropped          # the pairs; [{"source", "stage", "reason"}] for every item that made none

Every dropped item is listed with the stage and the reason (a missing section, [NO], a second attempt that does
not parse or fails a test the first passed, ...); `counts()` tallies them for synth_summary.json.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import TextIO

from pydantic import Field, model_validator

from raylib.config import Section
from raylib.data.problems import Problem
from raylib.data.samples import Sample
from raylib.generate.engines.base import EngineConfig, engine_model_from

__all__ = ["ExecutionPairSettings", "LLMSettings", "Made", "commit_instruct", "critic_evol", "from_execution"]


class LLMSettings(Section):
    model: str = Field("embedded", description="The model that writes the data: 'embedded', a directory, or the name "
                       "an OpenAI-compatible server serves (engine.backend=openai).")
    engine: EngineConfig = Field(default_factory=EngineConfig, description="Its engine: vllm, hf or openai (endpoint, "
                                 "api key variable, requests in flight: engine.openai.concurrency).")
    prompts: str | None = Field(None, description="A prompt file with the same keys as the shipped one "
                                "(raylib/synth/prompts/<method>.yaml); None: the shipped one.")
    max_tokens: int = Field(1024, ge=16, description="Longest answer per turn, tokens.")
    temperature: float | None = Field(None, ge=0, le=10, description="Sampling temperature; None: CodeFavor's (0.8 "
                                      "for commit-instruct, 0.5 for critic-evol).")
    seed: int = Field(0, description="Base seed of the sampling.")
    num_cpus: float = Field(1, gt=0, description="CPUs the engine actor reserves.")
    num_gpus: float | None = Field(None, ge=0, description="GPUs the engine actor reserves; None: "
                                   "engine.tensor_parallel_size on a cluster with GPUs (none for an endpoint).")

    @model_validator(mode="before")
    @classmethod
    def _engine_model(cls, data):
        return engine_model_from(data)

    def engine_config(self) -> dict:
        return self.engine.model_copy(update={"model": self.model}).model_dump()


class ExecutionPairSettings(Section):
    correctness_per_problem: int = Field(4, ge=0, description="Most (passing, failing) pairs per problem.")
    efficiency_per_problem: int = Field(2, ge=0, description="Most (faster, slower) pairs per problem; 0: none "
                                        "(no timing runs).")
    factor: float = Field(2.0, gt=1, description="Efficiency: every run of the slower program takes at least this "
                          "many times the slowest run of the faster one.")
    min_gap_s: float = Field(0.005, ge=0, description="Efficiency: and at least this many seconds more.")
    repeats: int = Field(5, ge=2, description="Efficiency: timed runs of each passing program.")
    max_programs: int = Field(6, ge=2, description="Efficiency: most passing programs timed per problem.")


@dataclasses.dataclass
class Made:
    pairs: list[dict]
    dropped: list[dict]
    seen: int  # items the method started from
    unanswered: list[str] = dataclasses.field(default_factory=list)  # the endpoint failed: a re-run asks again

    def counts(self) -> dict:
        return {"items": self.seen, "pairs": len(self.pairs), "dropped": len(self.dropped),
                "unanswered": len(self.unanswered),
                "dropped_by_reason": dict(Counter(_reason_kind(d["reason"]) for d in self.dropped).most_common()),
                "pairs_by_objective": dict(Counter(p["objective"] for p in self.pairs))}


def _reason_kind(reason: str) -> str:
    """A reason without its particulars (a syntax error's message, test names), for counting."""
    return reason.split(" (")[0].split(": ")[0]


def ask_once(prompts: dict, llm: LLMSettings, temperature: float, path: Path, progress, desc: str,
             unanswered: list) -> tuple[dict[str, str], dict[str, str]]:
    """({key: the first answer} of every prompt answered, {key: the engine's error} of the prompts it refused); keys
    the endpoint failed to answer go to `unanswered` (a re-run asks them again). Answers are kept in `path`."""
    from raylib.generate.texts import sample_outputs

    errors: dict[str, tuple[str, bool]] = {}
    texts = sample_outputs(prompts, llm.engine_config(), n=1, temperature=temperature, max_tokens=llm.max_tokens,
                           path=path, seed=llm.seed, num_cpus=llm.num_cpus, num_gpus=llm.num_gpus,
                           progress=progress, desc=desc, errors=errors)
    refused = {}
    for key in prompts:
        if not texts.get(key):
            error, endpoint = errors.get(key, ("no answer", False))
            if endpoint:
                unanswered.append(key)
            else:
                refused[key] = error
    return {key: t[0] for key, t in texts.items() if t}, refused


def _ask(prompts: dict, llm: LLMSettings, temperature: float, path: Path, progress, desc: str, dropped: list,
         unanswered: list) -> dict[str, str]:
    """ask_once, the refused prompts going to `dropped` (stage `desc`, the engine's error)."""
    answers, refused = ask_once(prompts, llm, temperature, path, progress, desc, unanswered)
    dropped += [{"source": key, "stage": desc, "reason": f"the engine gave no answer ({error})"}
                for key, error in refused.items()]
    return answers


def commit_instruct(commits: list, llm: LLMSettings, output: str | Path, *, progress: bool | TextIO = True) -> Made:
    """Commit-Instruct over `commits` (raylib.synth.commit_instruct.read_commits): three turns; answers in
    OUTPUT/answers/{explain,decide,construct}.jsonl."""
    from raylib.synth.commit_instruct import (
        construct_messages,
        decide_messages,
        decision_of,
        explain_messages,
        pair_from_answer,
    )
    from raylib.synth.prompts import load_prompts

    prompts = load_prompts("commit_instruct", llm.prompts)
    temperature = 0.8 if llm.temperature is None else llm.temperature
    answers = Path(output) / "answers"
    by_id = {c.commit_id: c for c in commits}
    dropped: list[dict] = []
    unanswered: list[str] = []

    def turn(name: str, live: list[str], messages) -> dict[str, str]:
        return _ask({k: messages(k) for k in live}, llm, temperature, answers / f"{name}.jsonl", progress, name,
                    dropped, unanswered)

    explained = turn("explain", list(by_id), lambda k: explain_messages(prompts, by_id[k]))
    decided = turn("decide", list(explained), lambda k: decide_messages(prompts, by_id[k], explained[k]))
    go = []
    for key, answer in decided.items():
        yes, reason = decision_of(answer)
        if yes:
            go.append(key)
        else:
            dropped.append({"source": key, "stage": "decide", "reason": reason})
    built = turn("construct", go, lambda k: construct_messages(prompts, by_id[k], explained[k], decided[k]))
    pairs = []
    for key, answer in built.items():
        pair, reason = pair_from_answer(by_id[key], answer, prompts, llm.model)
        if pair:
            pairs.append(pair)
        else:
            dropped.append({"source": key, "stage": "construct", "reason": reason})
    return Made(pairs, dropped, len(commits), unanswered)


def critic_evol(attempts: list, llm: LLMSettings, output: str | Path, *, problems: dict[str, Problem] | None = None,
                evaluation: dict | None = None, progress: bool | TextIO = True) -> Made:
    """Critic-Evol over `attempts` (raylib.synth.critic_evol): one critic turn (OUTPUT/answers/critic.jsonl); second
    attempts of problems with tests run beside the first ones in the sandbox (OUTPUT/checks/, an evaluation as
    jobs/evaluate.py writes it; `evaluation`: its keyword arguments)."""
    from raylib.synth.critic_evol import critic_messages, pair_from_critique, read_critique, regressions
    from raylib.synth.prompts import load_prompts

    prompts = load_prompts("critic_evol", llm.prompts)
    temperature = 0.5 if llm.temperature is None else llm.temperature
    by_key = {a.key: a for a in attempts}
    dropped: list[dict] = []
    unanswered: list[str] = []
    answers = _ask({k: critic_messages(prompts, a) for k, a in by_key.items()}, llm, temperature,
                   Path(output) / "answers" / "critic.jsonl", progress, "critic", dropped, unanswered)
    critiques = {}
    for key, answer in answers.items():
        critique, reason = read_critique(answer, by_key[key])
        if critique:
            critiques[key] = critique
        else:
            dropped.append({"source": key, "stage": "critic", "reason": reason})
    tested = [k for k in critiques if by_key[k].has_tests]
    rows = _run_checks(tested, by_key, critiques, problems or {}, Path(output) / "checks", evaluation, progress)
    pairs = []
    for key, critique in critiques.items():
        checks = {}
        if key in rows:
            first, second = rows[key]
            lost = regressions(first["tests"], second["tests"])
            if second["status"] == "compile-error":  # other languages' parse check: their compiler
                dropped.append({"source": key, "stage": "tests", "reason": "the second attempt does not compile ("
                                + second["error"][:200] + ")"})
                continue
            if lost:
                dropped.append({"source": key, "stage": "tests", "reason": "the second attempt fails tests the first "
                                f"passed ({', '.join(lost[:5])})"})
                continue
            checks = {"first_passed": first["passed"], "second_passed": second["passed"],
                      "first_status": first["status"], "second_status": second["status"]}
        pairs.append(pair_from_critique(by_key[key], critique, prompts, llm.model, checks))
    return Made(pairs, dropped, len(attempts), unanswered)


def _run_checks(keys: list[str], by_key: dict, critiques: dict, problems: dict[str, Problem], output: Path,
                evaluation: dict | None, progress) -> dict[str, tuple[dict, dict]]:
    """{key: (results row of the first attempt, of the second)}, both run against the problem's tests."""
    if not keys:
        return {}
    from raylib.cluster import InfrastructureError
    from raylib.evaluate.pipeline import evaluate
    from raylib.files import read_records

    samples = []
    for k, key in enumerate(keys):
        attempt = by_key[key]
        samples += [Sample(attempt.task_id, 2 * k, attempt.program), Sample(attempt.task_id, 2 * k + 1,
                                                                            critiques[key]["attempt_2"])]
    done = evaluate(problems, output, samples=samples, progress=progress, title="Critic-Evol checks",
                    **(evaluation or {}))
    if not done.complete:
        raise InfrastructureError(f"{done.infra_errors} checks could not run (sandbox infrastructure); re-run with "
                                  "the same output to retry them")
    by_id = {(row["task_id"], row["sample_id"]): row for _, row in read_records(output / "results.jsonl")}
    return {key: (by_id[(by_key[key].task_id, 2 * k)], by_id[(by_key[key].task_id, 2 * k + 1)])
            for k, key in enumerate(keys)}


def from_execution(by_task: dict[str, list[dict]], problems: dict[str, Problem], settings: ExecutionPairSettings,
                   output: str | Path, *, source: str = "", seed: int = 0, evaluation: dict | None = None,
                   progress: bool | TextIO = True) -> Made:
    """Correctness pairs from the results as they are; efficiency pairs after timing each problem's passing
    programs `settings.repeats` times in the sandbox (OUTPUT/timing/, an evaluation as jobs/evaluate.py writes
    it)."""
    from raylib.files import read_records
    from raylib.synth.execution_pairs import correctness_pairs, efficiency_pairs, timing_samples

    pairs = correctness_pairs(by_task, problems, max_pairs=settings.correctness_per_problem, seed=seed, source=source)
    dropped = []
    if settings.efficiency_per_problem:
        samples, programs = timing_samples(by_task, max_programs=settings.max_programs, repeats=settings.repeats,
                                           seed=seed)
        rows = []
        if samples:
            from raylib.cluster import InfrastructureError
            from raylib.evaluate.pipeline import evaluate

            timing = Path(output) / "timing"
            done = evaluate({t: problems[t] for t in programs}, timing, samples=samples, progress=progress,
                            title="efficiency timing", **(evaluation or {}))
            if not done.complete:
                raise InfrastructureError(f"{done.infra_errors} timing runs could not run (sandbox infrastructure); "
                                          "re-run with the same output to retry them")
            rows = [row for _, row in read_records(timing / "results.jsonl")]
        faster, unstable = efficiency_pairs(programs, rows, problems, repeats=settings.repeats,
                                            factor=settings.factor, min_gap_s=settings.min_gap_s,
                                            max_pairs=settings.efficiency_per_problem, seed=seed, source=source)
        pairs += faster
        dropped += [{"source": key, "stage": "timing", "reason": "a passing program did not pass every timed run"}
                    for key in unstable]
    return Made(pairs, dropped, sum(len(rows) for rows in by_task.values()))
